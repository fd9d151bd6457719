/**
 * REST handlers for calls and their streams: CreateCall, FetchCall, UpdateCall, ListCall,
 * CreateStream and UpdateStream (docs/twilio-protocol.md §4).
 */
import { isSid } from '../twilio/sids.js';
import { MAX_TRACKS_PER_CALL, type SimEngine } from './engine.js';
import type { CallRecord, StreamRequest } from './records.js';
import { accountPath, callJson, page, streamJson } from './resources.js';
import { badRequest, notFound, TWILIO_CODES } from './rest-errors.js';
import { absoluteUrl, customParameters, oneOf, optional, paging, required, type Params } from './rest-params.js';
import { MAX_INLINE_TWIML } from './twiml.js';
import type { CreateCallOptions, StreamTrack } from './types.js';

export interface RestAnswer {
  status: number;
  body: unknown;
}

const TRACKS: readonly StreamTrack[] = ['inbound_track', 'outbound_track', 'both_tracks'];
const METHODS = ['GET', 'POST'] as const;
const TRACK_COST: Record<StreamTrack, number> = { inbound_track: 1, outbound_track: 1, both_tracks: 2 };

export function findCall(engine: SimEngine, callSid: string, path: string): CallRecord {
  const call = isSid('call', callSid) ? engine.calls.get(callSid) : undefined;
  if (call === undefined) throw notFound(path);
  return call;
}

export function fetchCall(engine: SimEngine, [callSid]: string[], _params: Params, path: string): RestAnswer {
  return { status: 200, body: callJson(findCall(engine, callSid!, path)) };
}

/** Calls that can still be updated (Twilio answers 21220 for the others). */
const LIVE: readonly string[] = ['queued', 'ringing', 'in-progress'];

/**
 * CreateCall: an outbound call whose far end answers at once (silent unless scripted through
 * the control API) and runs the TwiML at `Url` or in `Twiml`. Answers 201 `queued`; progress
 * (initiated, ringing, answered) follows after the answer.
 */
export async function createCall(engine: SimEngine, _m: string[], params: Params): Promise<RestAnswer> {
  const opts: CreateCallOptions = { from: required(params, 'From'), to: required(params, 'To'), status: 'queued', hangupOnAudioEnd: false };
  Object.assign(opts, twimlParams(params), progressParams(params));
  if (opts.url === undefined && opts.twiml === undefined) {
    throw badRequest(TWILIO_CODES.invalidUrl, 'Either Url or Twiml is required (ApplicationSid is not emulated)');
  }
  const call = await engine.createCall(opts, 'outbound-api');
  setImmediate(() => engine.place(call));
  return { status: 201, body: callJson(call) };
}

/**
 * UpdateCall: Status=completed hangs up (canceled: only a call not yet answered), Url or Twiml
 * replaces what the call is doing. A call that has ended answers 21220.
 */
export function updateCall(engine: SimEngine, [callSid]: string[], params: Params, path: string): RestAnswer {
  const call = findCall(engine, callSid!, path);
  const status = oneOf(params, 'Status', ['completed', 'canceled'] as const);
  const twiml = twimlParams(params);
  if (!LIVE.includes(call.status) && (status !== undefined || twiml.url !== undefined || twiml.twiml !== undefined)) {
    throw badRequest(TWILIO_CODES.invalidCallState, 'Call is not in-progress. Cannot redirect.');
  }
  if (status === 'completed' || (status === 'canceled' && call.status !== 'in-progress')) engine.hangup(call, 'api');
  else if (twiml.twiml !== undefined) engine.runTwiml(call, { twiml: twiml.twiml });
  else if (twiml.url !== undefined) engine.runTwiml(call, { url: twiml.url, method: twiml.method ?? 'POST' });
  return { status: 200, body: callJson(call) };
}

/** `Url` + `Method`, or `Twiml` (at most 4000 characters: 32018). */
function twimlParams(params: Params): Pick<CreateCallOptions, 'url' | 'method' | 'twiml'> {
  const out: Pick<CreateCallOptions, 'url' | 'method' | 'twiml'> = {};
  const url = optional(params, 'Url');
  if (url !== undefined) out.url = absoluteUrl(url, 'Url', ['http:', 'https:']);
  const method = oneOf(params, 'Method', METHODS);
  if (method !== undefined) out.method = method;
  const twiml = optional(params, 'Twiml');
  if (twiml !== undefined) {
    if (twiml.length > MAX_INLINE_TWIML) throw badRequest(TWILIO_CODES.twimlTooLarge, `Twiml size exceeded maximum allowed value of ${MAX_INLINE_TWIML} characters`);
    out.twiml = twiml;
  }
  return out;
}

function progressParams(params: Params): Pick<CreateCallOptions, 'statusCallback' | 'statusCallbackMethod' | 'statusCallbackEvent'> {
  const out: Pick<CreateCallOptions, 'statusCallback' | 'statusCallbackMethod' | 'statusCallbackEvent'> = {};
  const cb = optional(params, 'StatusCallback');
  if (cb === undefined) return out;
  out.statusCallback = absoluteUrl(cb, 'StatusCallback', ['http:', 'https:']);
  out.statusCallbackMethod = oneOf(params, 'StatusCallbackMethod', METHODS, 'POST');
  // twilio-node sends a list as repeated parameters; a space-separated string works too.
  const events = params.StatusCallbackEvent;
  if (events !== undefined) out.statusCallbackEvent = events;
  return out;
}

export function listCalls(engine: SimEngine, _m: string[], params: Params): RestAnswer {
  const { page: n, pageSize } = paging(params);
  const status = optional(params, 'Status');
  const calls = [...engine.calls.values()]
    .filter((c) => status === undefined || c.status === status)
    .sort((a, b) => b.dateCreated.getTime() - a.dateCreated.getTime());
  const query: Record<string, string> = status === undefined ? {} : { Status: status };
  return { status: 200, body: page(`${accountPath(engine.opts.accountSid)}/Calls.json`, 'calls', calls.map(callJson), n, pageSize, query) };
}

export function createStream(engine: SimEngine, [callSid]: string[], params: Params, path: string): RestAnswer {
  const call = findCall(engine, callSid!, path);
  const req: StreamRequest = {
    url: absoluteUrl(required(params, 'Url'), 'Url', ['ws:', 'wss:', 'http:', 'https:']),
    name: optional(params, 'Name') ?? null,
    track: oneOf(params, 'Track', TRACKS, 'inbound_track'),
    statusCallback: null,
    statusCallbackMethod: oneOf(params, 'StatusCallbackMethod', METHODS, 'POST'),
    parameters: customParameters(params),
  };
  const cb = optional(params, 'StatusCallback');
  if (cb !== undefined) req.statusCallback = absoluteUrl(cb, 'StatusCallback', ['http:', 'https:']);
  if (call.status !== 'in-progress') {
    throw badRequest(TWILIO_CODES.invalidCallState, `Call is not in-progress (status ${call.status}). Cannot create a stream.`);
  }
  if (engine.tracksInUse(call) + TRACK_COST[req.track] > MAX_TRACKS_PER_CALL) {
    throw badRequest(TWILIO_CODES.invalidCallState, `Max number of streamed tracks (${MAX_TRACKS_PER_CALL}) reached for call ${call.sid}`);
  }
  if (req.name !== null && engine.liveStreams(call).some((s) => s.name === req.name)) {
    throw badRequest(TWILIO_CODES.invalidCallState, `A stream named ${req.name} is already running on call ${call.sid}`);
  }
  return { status: 200, body: streamJson(engine.createStream(call, req)) };
}

/**
 * Status=stopped stops a live stream found by SID or Name. A stream that already stopped
 * answers 404 (undocumented; our choice: it is no longer a live resource), as does an
 * unknown one; a gateway should treat 404 on stop as "already stopped".
 */
export function updateStream(engine: SimEngine, [callSid, sidOrName]: string[], params: Params, path: string): RestAnswer {
  const call = findCall(engine, callSid!, path);
  const status = oneOf(params, 'Status', ['stopped'] as const);
  if (status === undefined) throw badRequest(TWILIO_CODES.invalidParameter, 'Missing required parameter Status in the post body');
  const stream = engine.findStream(call, sidOrName!);
  if (stream === undefined || stream.status !== 'in-progress') throw notFound(path);
  engine.stopStream(stream, 'api');
  return { status: 200, body: streamJson(stream) };
}

