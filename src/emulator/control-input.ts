/**
 * Checks the JSON bodies of the control API (/sim/…) and turns them into typed options.
 * Unknown fields are refused so a typo fails loudly instead of being ignored.
 */
import { InvalidInputError } from '../errors.js';
import { checkStreamFaults } from './faults.js';
import { MAX_INLINE_TWIML } from './twiml.js';
import type { AudioSpec, CreateCallOptions, CreateConferenceOptions, HttpMethod, ParticipantOptions } from './types.js';

function fail(message: string): never {
  throw new InvalidInputError(message);
}

function object(x: unknown, field: string): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(`${field} must be a JSON object`);
  return x as Record<string, unknown>;
}

function onlyKeys(x: Record<string, unknown>, allowed: readonly string[], field: string): void {
  for (const key of Object.keys(x)) if (!allowed.includes(key)) fail(`${field}.${key} is not a known field`);
}

function str(x: unknown, field: string): string | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'string') fail(`${field} must be a string`);
  return x;
}

function flag(x: unknown, field: string): boolean | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'boolean') fail(`${field} must be a boolean`);
  return x;
}

function num(x: unknown, field: string): number | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) fail(`${field} must be a non-negative number`);
  return x;
}

function method(x: unknown, field: string): HttpMethod | undefined {
  if (x === undefined) return undefined;
  if (x !== 'GET' && x !== 'POST') fail(`${field} must be GET or POST`);
  return x;
}

export function audioSpec(x: unknown, field: string): AudioSpec | undefined {
  if (x === undefined || typeof x === 'string') return x;
  const o = object(x, field);
  switch (o.type) {
    case 'file':
      onlyKeys(o, ['type', 'path'], field);
      return { type: 'file', path: str(o.path, `${field}.path`) ?? fail(`${field}.path is required`) };
    case 'silence': {
      onlyKeys(o, ['type', 'ms'], field);
      const ms = num(o.ms, `${field}.ms`);
      return ms === undefined ? { type: 'silence' } : { type: 'silence', ms };
    }
    case 'tone': {
      onlyKeys(o, ['type', 'hz', 'ms', 'amplitude'], field);
      const hz = num(o.hz, `${field}.hz`) ?? fail(`${field}.hz is required`);
      const ms = num(o.ms, `${field}.ms`) ?? fail(`${field}.ms is required`);
      const amplitude = num(o.amplitude, `${field}.amplitude`);
      return amplitude === undefined ? { type: 'tone', hz, ms } : { type: 'tone', hz, ms, amplitude };
    }
    case 'mulaw':
      onlyKeys(o, ['type', 'data'], field);
      return { type: 'mulaw', data: str(o.data, `${field}.data`) ?? fail(`${field}.data (base64) is required`) };
    default:
      return fail(`${field}.type must be file, silence, tone or mulaw`);
  }
}

const CALL_KEYS = [
  'audio',
  'hears',
  'loop',
  'hangupOnAudioEnd',
  'audioStartsAt',
  'status',
  'from',
  'to',
  'streamFaults',
  'url',
  'method',
  'twiml',
  'statusCallback',
  'statusCallbackMethod',
  'statusCallbackEvent',
] as const;
const PARTICIPANT_KEYS = [
  ...CALL_KEYS,
  'callSid',
  'label',
  'muted',
  'hold',
  'coaching',
  'endConferenceOnExit',
  'startConferenceOnEnter',
] as const;

function callFields(o: Record<string, unknown>, field: string): CreateCallOptions {
  const out: CreateCallOptions = {};
  const audio = audioSpec(o.audio, `${field}.audio`);
  if (audio !== undefined) out.audio = audio;
  const hears = audioSpec(o.hears, `${field}.hears`);
  if (hears !== undefined) out.hears = hears;
  const loop = flag(o.loop, `${field}.loop`);
  if (loop !== undefined) out.loop = loop;
  const hang = flag(o.hangupOnAudioEnd, `${field}.hangupOnAudioEnd`);
  if (hang !== undefined) out.hangupOnAudioEnd = hang;
  if (o.audioStartsAt !== undefined) {
    if (o.audioStartsAt !== 'first-use' && o.audioStartsAt !== 'create') fail(`${field}.audioStartsAt must be first-use or create`);
    out.audioStartsAt = o.audioStartsAt;
  }
  if (o.status !== undefined) {
    if (o.status !== 'queued' && o.status !== 'ringing' && o.status !== 'in-progress') fail(`${field}.status must be queued, ringing or in-progress`);
    out.status = o.status;
  }
  const from = str(o.from, `${field}.from`);
  if (from !== undefined) out.from = from;
  const to = str(o.to, `${field}.to`);
  if (to !== undefined) out.to = to;
  if (o.streamFaults !== undefined) out.streamFaults = checkStreamFaults(o.streamFaults, `${field}.streamFaults`);
  const url = absolute(o.url, `${field}.url`);
  if (url !== undefined) out.url = url;
  const m = method(o.method, `${field}.method`);
  if (m !== undefined) out.method = m;
  const twiml = str(o.twiml, `${field}.twiml`);
  if (twiml !== undefined) {
    if (twiml.length > MAX_INLINE_TWIML) fail(`${field}.twiml is longer than ${MAX_INLINE_TWIML} characters`);
    out.twiml = twiml;
  }
  if (url !== undefined && twiml !== undefined) fail(`${field}: give url or twiml, not both`);
  const cb = absolute(o.statusCallback, `${field}.statusCallback`);
  if (cb !== undefined) out.statusCallback = cb;
  const cbm = method(o.statusCallbackMethod, `${field}.statusCallbackMethod`);
  if (cbm !== undefined) out.statusCallbackMethod = cbm;
  const ev = events(o.statusCallbackEvent, `${field}.statusCallbackEvent`);
  if (ev !== undefined) out.statusCallbackEvent = ev;
  return out;
}

function absolute(x: unknown, field: string): string | undefined {
  const v = str(x, field);
  if (v === undefined) return undefined;
  try {
    new URL(v);
  } catch {
    fail(`${field} must be an absolute URL`);
  }
  return v;
}

function events(x: unknown, field: string): string | string[] | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'string' && !(Array.isArray(x) && x.every((e) => typeof e === 'string'))) fail(`${field} must be a string or a list of strings`);
  return x as string | string[];
}

export function callOptions(x: unknown, field = 'body'): CreateCallOptions {
  const o = object(x ?? {}, field);
  onlyKeys(o, CALL_KEYS, field);
  return callFields(o, field);
}

export function participantOptions(x: unknown, field = 'body'): ParticipantOptions {
  const o = object(x ?? {}, field);
  onlyKeys(o, PARTICIPANT_KEYS, field);
  const out: ParticipantOptions = callFields(o, field);
  const callSid = str(o.callSid, `${field}.callSid`);
  if (callSid !== undefined) out.callSid = callSid;
  const label = str(o.label, `${field}.label`);
  if (label !== undefined) out.label = label;
  for (const key of ['muted', 'hold', 'coaching', 'endConferenceOnExit', 'startConferenceOnEnter'] as const) {
    const v = flag(o[key], `${field}.${key}`);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

export function conferenceOptions(x: unknown, field = 'body'): CreateConferenceOptions {
  const o = object(x ?? {}, field);
  onlyKeys(o, ['friendlyName', 'statusCallback', 'statusCallbackMethod', 'statusCallbackEvent', 'participants'], field);
  const out: CreateConferenceOptions = {};
  const name = str(o.friendlyName, `${field}.friendlyName`);
  if (name !== undefined) out.friendlyName = name;
  const cb = absolute(o.statusCallback, `${field}.statusCallback`);
  if (cb !== undefined) out.statusCallback = cb;
  const m = method(o.statusCallbackMethod, `${field}.statusCallbackMethod`);
  if (m !== undefined) out.statusCallbackMethod = m;
  const ev = events(o.statusCallbackEvent, `${field}.statusCallbackEvent`);
  if (ev !== undefined) out.statusCallbackEvent = ev;
  if (o.participants !== undefined) {
    if (!Array.isArray(o.participants)) fail(`${field}.participants must be a list`);
    out.participants = o.participants.map((p, i) => participantOptions(p, `${field}.participants[${i}]`));
  }
  return out;
}
