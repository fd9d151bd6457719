/**
 * REST handlers for conferences and participants: FetchConference, UpdateConference,
 * ListConference, ListParticipant, FetchParticipant and CreateParticipant (docs/twilio-protocol.md §6).
 */
import { isSid } from '../twilio/sids.js';
import type { SimEngine } from './engine.js';
import { newParticipant, type ConferenceRecord } from './records.js';
import type { RestAnswer } from './rest-calls.js';
import { accountPath, conferenceJson, page, participantJson } from './resources.js';
import { badRequest, notFound, TWILIO_CODES } from './rest-errors.js';
import { absoluteUrl, bool, oneOf, optional, paging, required, type Params } from './rest-params.js';
import type { ParticipantOptions } from './types.js';

const METHODS = ['GET', 'POST'] as const;

function findConference(engine: SimEngine, sid: string, path: string): ConferenceRecord {
  const conf = isSid('conference', sid) ? engine.conferences.conferences.get(sid) : undefined;
  if (conf === undefined) throw notFound(path);
  return conf;
}

export function fetchConference(engine: SimEngine, [sid]: string[], _p: Params, path: string): RestAnswer {
  return { status: 200, body: conferenceJson(findConference(engine, sid!, path)) };
}

/**
 * Status=completed ends the conference; AnnounceUrl is recorded. A completed conference
 * answers 400 with 16022 ("does not exist or is completed"): users report "Bad request" for
 * ending a conference twice (docs/twilio-protocol.md §6.1).
 */
export function updateConference(engine: SimEngine, [sid]: string[], params: Params, path: string): RestAnswer {
  const conf = findConference(engine, sid!, path);
  const status = oneOf(params, 'Status', ['completed'] as const);
  const announce = optional(params, 'AnnounceUrl');
  const announceMethod = oneOf(params, 'AnnounceMethod', METHODS, 'POST');
  if (announce !== undefined) absoluteUrl(announce, 'AnnounceUrl', ['http:', 'https:']);
  if (conf.status === 'completed' && (status !== undefined || announce !== undefined)) {
    throw badRequest(TWILIO_CODES.conferenceCompleted, `Conference ${conf.sid} does not exist or is completed`);
  }
  if (announce !== undefined) engine.conferences.announce(conf, announce, announceMethod);
  if (status === 'completed') engine.conferences.end(conf, 'conference-ended-via-api', null);
  return { status: 200, body: conferenceJson(conf) };
}

export function listConferences(engine: SimEngine, _m: string[], params: Params): RestAnswer {
  const { page: n, pageSize } = paging(params);
  const status = optional(params, 'Status');
  const name = optional(params, 'FriendlyName');
  const list = [...engine.conferences.conferences.values()]
    .filter((c) => (status === undefined || c.status === status) && (name === undefined || c.friendlyName === name))
    .sort((a, b) => b.dateCreated.getTime() - a.dateCreated.getTime());
  const query: Record<string, string> = {};
  if (status !== undefined) query.Status = status;
  if (name !== undefined) query.FriendlyName = name;
  const path = `${accountPath(engine.opts.accountSid)}/Conferences.json`;
  return { status: 200, body: page(path, 'conferences', list.map((c) => conferenceJson(c)), n, pageSize, query) };
}

/** Participants are listed while they are in the conference (as Twilio does). */
export function listParticipants(engine: SimEngine, [sid]: string[], params: Params, path: string): RestAnswer {
  const conf = findConference(engine, sid!, path);
  const { page: n, pageSize } = paging(params);
  const muted = bool(params, 'Muted');
  const hold = bool(params, 'Hold');
  const coaching = bool(params, 'Coaching');
  const list = engine.conferences
    .connected(conf)
    .filter((p) => (muted === undefined || p.muted === muted) && (hold === undefined || p.hold === hold) && (coaching === undefined || p.coaching === coaching));
  const query: Record<string, string> = {};
  if (muted !== undefined) query.Muted = String(muted);
  if (hold !== undefined) query.Hold = String(hold);
  if (coaching !== undefined) query.Coaching = String(coaching);
  const listPath = `${accountPath(conf.accountSid)}/Conferences/${conf.sid}/Participants.json`;
  return { status: 200, body: page(listPath, 'participants', list.map((p) => participantJson(p)), n, pageSize, query) };
}

/** By CallSid or label. */
export function fetchParticipant(engine: SimEngine, [sid, callSidOrLabel]: string[], _p: Params, path: string): RestAnswer {
  const conf = findConference(engine, sid!, path);
  const p = engine.conferences.connected(conf).find((x) => x.callSid === callSidOrLabel || x.label === callSidOrLabel);
  if (p === undefined) throw notFound(path);
  return { status: 200, body: participantJson(p) };
}

/**
 * Dials a new (silent) participant into a conference given by SID or by FriendlyName; a name
 * with no running conference creates one, as Twilio does. The answer is 201 with status
 * `queued`; the participant joins on the next turn of the event loop.
 */
export async function createParticipant(engine: SimEngine, [sidOrName]: string[], params: Params, path: string): Promise<RestAnswer> {
  const from = required(params, 'From');
  const to = required(params, 'To');
  const opts: ParticipantOptions = { from, to };
  const label = optional(params, 'Label');
  if (label !== undefined) opts.label = label;
  for (const [field, name] of [
    ['muted', 'Muted'],
    ['hold', 'Hold'],
    ['coaching', 'Coaching'],
    ['endConferenceOnExit', 'EndConferenceOnExit'],
    ['startConferenceOnEnter', 'StartConferenceOnEnter'],
  ] as const) {
    const v = bool(params, name);
    if (v !== undefined) opts[field] = v;
  }
  const callback = optional(params, 'ConferenceStatusCallback');
  if (callback !== undefined) absoluteUrl(callback, 'ConferenceStatusCallback', ['http:', 'https:']);
  const callbackMethod = oneOf(params, 'ConferenceStatusCallbackMethod', METHODS, 'POST');
  const events = params.ConferenceStatusCallbackEvent ?? null;
  let conf: ConferenceRecord;
  if (isSid('conference', sidOrName)) {
    conf = findConference(engine, sidOrName, path);
    if (conf.status === 'completed') throw badRequest(TWILIO_CODES.conferenceCompleted, `Conference ${conf.sid} does not exist or is completed`);
  } else {
    conf = engine.conferences.byName(sidOrName!, callback === undefined ? null : { url: callback, method: callbackMethod, events });
  }
  const call = await engine.createCall(opts, 'outbound-api');
  const target = conf;
  const pending = newParticipant(target, call.sid, opts);
  setImmediate(() => {
    if (target.status !== 'completed' && call.status === 'in-progress') engine.conferences.join(target, call, opts);
  });
  return { status: 201, body: participantJson(pending, 'queued') };
}
