/**
 * Twilio Media Streams messages (docs/twilio-protocol.md §2) and their strict parser.
 *
 * Every message is one JSON text frame. Fields are read by name (key order varies between
 * captures) and counters arrive as JSON strings ("sequenceNumber":"2"). The parser fills a
 * reusable {@link ParsedMessage} owned by the session, so a media message costs one parse and
 * no result object. Anything malformed yields a stable `reason` for protocol_errors_total.
 * The byte-level media fast path is src/twilio/media-fast-path.ts; payload decoding is
 * src/twilio/base64.ts.
 */
import { isSid } from './sids.js';

export const EVENT = {
  INVALID: 0,
  CONNECTED: 1,
  START: 2,
  MEDIA: 3,
  DTMF: 4,
  MARK: 5,
  STOP: 6,
  /** An event name we don't know: Twilio adds events over time, so it is counted, not fatal. */
  UNKNOWN: 7,
} as const;
export type EventKind = (typeof EVENT)[keyof typeof EVENT];

/** Reasons a message is refused; labels of protocol_errors_total. */
export type ProtocolErrorReason =
  | 'invalid_json'
  | 'not_an_object'
  | 'missing_field'
  | 'invalid_field'
  | 'invalid_sid'
  | 'unsupported_media_format'
  | 'invalid_base64';

export interface StartFields {
  accountSid: string;
  callSid: string;
  streamSid: string;
  tracks: ('inbound' | 'outbound')[];
  customParameters: Record<string, string>;
  mediaFormat: { encoding: string; sampleRate: number; channels: number };
}

/** Reused by one session for every message; fields belong to the last `kind` read. */
export class ParsedMessage {
  kind: EventKind = EVENT.INVALID;
  /** Why the message is invalid (kind INVALID), and which field. */
  reason: ProtocolErrorReason | null = null;
  field: string | null = null;
  /** Event name as sent (for UNKNOWN). */
  eventName = '';
  /** -1 when the message has none (connected). */
  sequenceNumber = -1;
  streamSid = '';
  // connected
  version = '';
  // media
  track: 'inbound' | 'outbound' = 'inbound';
  chunk = 0;
  timestamp = 0;
  payload = '';
  // dtmf
  digit = '';
  // mark
  markName = '';
  // start
  start: StartFields | null = null;
  // stop
  stopAccountSid = '';
  stopCallSid = '';

  #fail(reason: ProtocolErrorReason, field: string | null): EventKind {
    this.kind = EVENT.INVALID;
    this.reason = reason;
    this.field = field;
    return EVENT.INVALID;
  }

  /** Parses one text message; returns its kind (EVENT.INVALID with `reason` set on error). */
  read(text: string): EventKind {
    this.reason = null;
    this.field = null;
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return this.#fail('invalid_json', null);
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return this.#fail('not_an_object', null);
    return this.readObject(msg as Record<string, unknown>);
  }

  /** Validates an already parsed message object. */
  readObject(m: Record<string, unknown>): EventKind {
    const event = m.event;
    if (event === undefined) return this.#fail('missing_field', 'event');
    if (typeof event !== 'string') return this.#fail('invalid_field', 'event');
    this.eventName = event;
    switch (event) {
      case 'media':
        return this.#media(m);
      case 'connected':
        return this.#connected(m);
      case 'start':
        return this.#start(m);
      case 'stop':
        return this.#stop(m);
      case 'dtmf':
        return this.#dtmf(m);
      case 'mark':
        return this.#mark(m);
      default:
        this.kind = EVENT.UNKNOWN;
        return EVENT.UNKNOWN;
    }
  }

  #numbered(m: Record<string, unknown>): boolean {
    const seq = counter(m.sequenceNumber);
    if (seq < 0) {
      this.#fail(m.sequenceNumber === undefined ? 'missing_field' : 'invalid_field', 'sequenceNumber');
      return false;
    }
    this.sequenceNumber = seq;
    const sid = m.streamSid;
    if (sid === undefined) {
      this.#fail('missing_field', 'streamSid');
      return false;
    }
    if (!isSid('stream', sid)) {
      this.#fail('invalid_sid', 'streamSid');
      return false;
    }
    this.streamSid = sid;
    return true;
  }

  #media(m: Record<string, unknown>): EventKind {
    if (!this.#numbered(m)) return EVENT.INVALID;
    const media = m.media;
    if (typeof media !== 'object' || media === null) return this.#fail(media === undefined ? 'missing_field' : 'invalid_field', 'media');
    const o = media as Record<string, unknown>;
    const track = o.track;
    if (track === 'inbound' || track === 'outbound') this.track = track;
    else return this.#fail(track === undefined ? 'missing_field' : 'invalid_field', 'media.track');
    const chunk = counter(o.chunk);
    if (chunk < 0) return this.#fail(o.chunk === undefined ? 'missing_field' : 'invalid_field', 'media.chunk');
    const ts = counter(o.timestamp);
    if (ts < 0) return this.#fail(o.timestamp === undefined ? 'missing_field' : 'invalid_field', 'media.timestamp');
    const payload = o.payload;
    if (typeof payload !== 'string') return this.#fail(payload === undefined ? 'missing_field' : 'invalid_field', 'media.payload');
    this.chunk = chunk;
    this.timestamp = ts;
    this.payload = payload;
    this.kind = EVENT.MEDIA;
    return EVENT.MEDIA;
  }

  #connected(m: Record<string, unknown>): EventKind {
    // Versions seen: "0.2.0" in real captures, "1.0.0" in the docs; neither is refused.
    const version = m.version;
    if (version !== undefined && typeof version !== 'string') return this.#fail('invalid_field', 'version');
    if (m.protocol !== undefined && typeof m.protocol !== 'string') return this.#fail('invalid_field', 'protocol');
    this.version = version ?? '';
    this.sequenceNumber = -1;
    this.kind = EVENT.CONNECTED;
    return EVENT.CONNECTED;
  }

  #start(m: Record<string, unknown>): EventKind {
    if (!this.#numbered(m)) return EVENT.INVALID;
    const s = m.start;
    if (typeof s !== 'object' || s === null) return this.#fail(s === undefined ? 'missing_field' : 'invalid_field', 'start');
    const o = s as Record<string, unknown>;
    for (const [field, kind] of [['accountSid', 'account'], ['callSid', 'call'], ['streamSid', 'stream']] as const) {
      if (o[field] === undefined) return this.#fail('missing_field', `start.${field}`);
      if (!isSid(kind, o[field])) return this.#fail('invalid_sid', `start.${field}`);
    }
    if (o.streamSid !== this.streamSid) return this.#fail('invalid_field', 'start.streamSid');
    const tracks = o.tracks;
    if (!Array.isArray(tracks) || tracks.length === 0 || tracks.length > 2) return this.#fail(tracks === undefined ? 'missing_field' : 'invalid_field', 'start.tracks');
    const seen: ('inbound' | 'outbound')[] = [];
    for (const t of tracks) {
      if ((t !== 'inbound' && t !== 'outbound') || seen.includes(t)) return this.#fail('invalid_field', 'start.tracks');
      seen.push(t);
    }
    const params = o.customParameters ?? {};
    if (typeof params !== 'object' || params === null || Array.isArray(params)) return this.#fail('invalid_field', 'start.customParameters');
    const customParameters: Record<string, string> = {};
    for (const [k, v] of Object.entries(params as Record<string, unknown>)) {
      if (typeof v !== 'string') return this.#fail('invalid_field', 'start.customParameters');
      customParameters[k] = v;
    }
    const f = o.mediaFormat;
    if (typeof f !== 'object' || f === null) return this.#fail(f === undefined ? 'missing_field' : 'invalid_field', 'start.mediaFormat');
    const fmt = f as Record<string, unknown>;
    // Twilio sends only 8 kHz mono mu-law; anything else would be decoded wrongly, so refuse it.
    if (fmt.encoding !== 'audio/x-mulaw' || Number(fmt.sampleRate) !== 8000 || Number(fmt.channels) !== 1) {
      return this.#fail('unsupported_media_format', 'start.mediaFormat');
    }
    this.start = {
      accountSid: o.accountSid as string,
      callSid: o.callSid as string,
      streamSid: o.streamSid as string,
      tracks: seen,
      customParameters,
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    };
    this.kind = EVENT.START;
    return EVENT.START;
  }

  #stop(m: Record<string, unknown>): EventKind {
    if (!this.#numbered(m)) return EVENT.INVALID;
    const s = m.stop;
    // `stop.accountSid`/`callSid` are informative; a stop without them still ends the stream.
    if (s !== undefined && (typeof s !== 'object' || s === null)) return this.#fail('invalid_field', 'stop');
    const o = (s ?? {}) as Record<string, unknown>;
    this.stopAccountSid = typeof o.accountSid === 'string' ? o.accountSid : '';
    this.stopCallSid = typeof o.callSid === 'string' ? o.callSid : '';
    this.kind = EVENT.STOP;
    return EVENT.STOP;
  }

  #dtmf(m: Record<string, unknown>): EventKind {
    if (!this.#numbered(m)) return EVENT.INVALID;
    const d = m.dtmf;
    if (typeof d !== 'object' || d === null) return this.#fail(d === undefined ? 'missing_field' : 'invalid_field', 'dtmf');
    const digit = (d as Record<string, unknown>).digit;
    if (typeof digit !== 'string' || !/^[0-9A-D*#]$/.test(digit)) return this.#fail('invalid_field', 'dtmf.digit');
    this.digit = digit;
    this.kind = EVENT.DTMF;
    return EVENT.DTMF;
  }

  #mark(m: Record<string, unknown>): EventKind {
    if (!this.#numbered(m)) return EVENT.INVALID;
    const k = m.mark;
    if (typeof k !== 'object' || k === null) return this.#fail(k === undefined ? 'missing_field' : 'invalid_field', 'mark');
    const name = (k as Record<string, unknown>).name;
    if (typeof name !== 'string') return this.#fail('invalid_field', 'mark.name');
    this.markName = name;
    this.kind = EVENT.MARK;
    return EVENT.MARK;
  }
}

/**
 * A Twilio counter: a decimal string (what Twilio sends) or a non-negative integer (what some
 * SDKs and simulators send). Returns -1 when it is neither.
 */
export function counter(v: unknown): number {
  if (typeof v === 'string') {
    const n = v.length;
    if (n === 0 || n > 15) return -1;
    let x = 0;
    for (let i = 0; i < n; i++) {
      const c = v.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return -1;
      x = x * 10 + c;
    }
    return x;
  }
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  return -1;
}
