/**
 * What Twilio answers to the REST calls of src/twilio/rest-client.ts, checked before the client
 * hands it on: the Stream and Conference resources a 2xx carries (every field the gateway reads
 * has the type and SID pattern it relies on, and names the resource addressed), and the error
 * body of any other status, bounded so a proxy's page cannot flood a log line.
 */
import type { TwilioErrorBody } from './errors.js';
import { isSid, type SidKind } from './sids.js';

/** The Stream resource (OpenAPI `api.v2010.account.call.stream`). */
export interface StreamResource {
  sid: string;
  account_sid: string | null;
  call_sid: string | null;
  name: string | null;
  status: 'in-progress' | 'stopped';
  /** RFC 2822, e.g. `Thu, 30 Jul 2015 20:00:00 +0000`. */
  date_updated: string | null;
  uri: string | null;
}

/** The Conference resource (OpenAPI `api.v2010.account.conference`). */
export interface ConferenceResource {
  sid: string;
  account_sid: string | null;
  friendly_name: string | null;
  api_version: string | null;
  /** `us1`, `us2`, `ie1`, `de1`, `sg1`, `br1`, `au1` or `jp1`. */
  region: string | null;
  status: 'init' | 'in-progress' | 'completed';
  date_created: string | null;
  date_updated: string | null;
  uri: string | null;
  subresource_uris: Record<string, string> | null;
  /**
   * Null while running; then `conference-ended-via-api`, `participant-with-end-conference-on-exit-left`,
   * `participant-with-end-conference-on-exit-kicked`, `last-participant-kicked` or `last-participant-left`.
   * Kept a plain string so that a reason Twilio adds later does not fail a completed request.
   */
  reason_conference_ended: string | null;
  call_sid_ending_conference: string | null;
}

const STREAM_STATUSES = ['in-progress', 'stopped'] as const;
const CONFERENCE_STATUSES = ['init', 'in-progress', 'completed'] as const;
/** Long enough for any Twilio message, short enough that a proxy's page cannot flood a log line. */
const MAX_MESSAGE_CHARS = 500;

/** A 2xx body that does not match the resource schema. */
export class ShapeError extends Error {}

/** A CreateStream/UpdateStream 2xx body for `callSid`; throws ShapeError when it is not one. */
export function parseStream(body: unknown, callSid: string): StreamResource {
  const o = asObject(body);
  const resource: StreamResource = {
    sid: sid(o, 'sid', 'stream', false)!,
    account_sid: sid(o, 'account_sid', 'account', true),
    call_sid: sid(o, 'call_sid', 'call', true),
    name: text(o, 'name'),
    status: member(o, 'status', STREAM_STATUSES),
    date_updated: text(o, 'date_updated'),
    uri: text(o, 'uri'),
  };
  if (resource.call_sid !== null && resource.call_sid.toLowerCase() !== callSid.toLowerCase()) {
    throw new ShapeError(`call_sid ${resource.call_sid} is not the call addressed`);
  }
  return resource;
}

/** An UpdateConference/FetchConference 2xx body for `conferenceSid`; throws ShapeError when it is not one. */
export function parseConference(body: unknown, conferenceSid: string): ConferenceResource {
  const o = asObject(body);
  const resource: ConferenceResource = {
    sid: sid(o, 'sid', 'conference', false)!,
    account_sid: sid(o, 'account_sid', 'account', true),
    friendly_name: text(o, 'friendly_name'),
    api_version: text(o, 'api_version'),
    region: text(o, 'region'),
    status: member(o, 'status', CONFERENCE_STATUSES),
    date_created: text(o, 'date_created'),
    date_updated: text(o, 'date_updated'),
    uri: text(o, 'uri'),
    subresource_uris: uriMap(o, 'subresource_uris'),
    reason_conference_ended: text(o, 'reason_conference_ended'),
    call_sid_ending_conference: sid(o, 'call_sid_ending_conference', 'call', true),
  };
  if (resource.sid.toLowerCase() !== conferenceSid.toLowerCase()) {
    throw new ShapeError(`sid ${resource.sid} is not the conference addressed`);
  }
  return resource;
}

function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ShapeError('body is not a JSON object');
  return body as Record<string, unknown>;
}

function sid(o: Record<string, unknown>, key: string, kind: SidKind, nullable: boolean): string | null {
  const v = o[key];
  if (nullable && (v === null || v === undefined)) return null;
  if (!isSid(kind, v)) throw new ShapeError(`${key} is not a ${kind} SID`);
  return v;
}

/** Nullable string fields; an absent field reads as null (the emulator may omit some). */
function text(o: Record<string, unknown>, key: string): string | null {
  const v = o[key];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') throw new ShapeError(`${key} is not a string`);
  return v;
}

function member<T extends string>(o: Record<string, unknown>, key: string, values: readonly T[]): T {
  const v = o[key];
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw new ShapeError(`${key} is not one of ${values.join(', ')}`);
  return v as T;
}

function uriMap(o: Record<string, unknown>, key: string): Record<string, string> | null {
  const v = o[key];
  if (v === null || v === undefined) return null;
  const map = asObject(v);
  const out: Record<string, string> = {};
  for (const [k, uri] of Object.entries(map)) {
    if (typeof uri !== 'string') throw new ShapeError(`${key}.${k} is not a string`);
    out[k] = uri;
  }
  return out;
}

/** Reads `{code,message,more_info,status}` (or RFC 9457 fields); tolerates any other body. */
export function parseErrorBody(status: number, text: string, contentType: string | null): TwilioErrorBody {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    // The body itself may be a proxy's page: describe it rather than quote it.
    const kind = contentType === null ? 'no content type' : contentType.split(';')[0]!.trim();
    return { twilioCode: null, message: `HTTP ${status} with a non-JSON body (${kind})`, moreInfo: null };
  }
  const o = json as Record<string, unknown>;
  let twilioCode: number | null = null;
  if (typeof o.code === 'number' && Number.isInteger(o.code)) twilioCode = o.code;
  else if (typeof o.code === 'string' && /^\d{1,9}$/.test(o.code)) twilioCode = Number(o.code);
  const message = firstText(o.message, o.detail, o.title) ?? `HTTP ${status}`;
  return { twilioCode, message: message.slice(0, MAX_MESSAGE_CHARS), moreInfo: firstText(o.more_info, o.type) };
}

function firstText(...values: unknown[]): string | null {
  for (const v of values) if (typeof v === 'string' && v !== '') return v;
  return null;
}
