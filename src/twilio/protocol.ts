/**
 * Twilio Media Streams messages (docs/twilio-protocol.md §2) and their strict parser.
 *
 * Every message is one JSON text frame. Fields are read by name (key order varies between
 * captures) and counters arrive as JSON strings ("sequenceNumber":"2"). The parser fills a
 * reusable {@link ParsedMessage} owned by the session, so a media message costs one parse and
 * no result object. Anything malformed yields a stable `reason` for protocol_errors_total.
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

  /**
   * Fast path for the message Twilio sends 50 times a second per track. When `bytes` (the text
   * frame as ws hands it over, UTF-8) is exactly
   *
   *   {"event":"media","sequenceNumber":"D","media":{"track":"T","chunk":"D","timestamp":"D","payload":"B"},"streamSid":"S"}
   *
   * (the key order of every real capture, docs/twilio-protocol.md §2.2; D 1..15 decimal digits, T
   * inbound|outbound, B non-empty standard base64, S equal to `streamSid`, no whitespace or
   * escapes), it sets the fields `read()` would set for it, decodes the payload straight into
   * `dst` and returns the byte count; `payload` is left empty, as no string is made. For
   * anything else it returns -1 and leaves the fields alone (`dst` may have been written), and
   * the caller falls back to `read()`, which decides exactly as before.
   *
   * `streamSid` must be a valid stream SID (the session's, checked at `start`): matching it
   * byte for byte is what lets this path skip the SID pattern. For every input this path either
   * declines or agrees with `read()` + {@link decodeBase64Into} (property test:
   * test/twilio/protocol-fast-path.test.ts). It saves the string copy, JSON.parse and its
   * garbage (bench/mulaw-decode.bench.ts, "per media message").
   */
  readMediaFast(bytes: Uint8Array, streamSid: string, dst: Uint8Array): number {
    const len = bytes.length;
    let p = matchAt(bytes, 0, MEDIA_HEAD);
    if (p < 0) return -1;
    const seq = digitsAt(bytes, p);
    if (seq < 0) return -1;
    p = matchAt(bytes, digitsEnd, MEDIA_TRACK);
    if (p < 0) return -1;
    let track: 'inbound' | 'outbound';
    let q = matchAt(bytes, p, LIT_INBOUND);
    if (q >= 0) track = 'inbound';
    else if ((q = matchAt(bytes, p, LIT_OUTBOUND)) >= 0) track = 'outbound';
    else return -1;
    p = matchAt(bytes, q, MEDIA_CHUNK);
    if (p < 0) return -1;
    const chunk = digitsAt(bytes, p);
    if (chunk < 0) return -1;
    p = matchAt(bytes, digitsEnd, MEDIA_TIMESTAMP);
    if (p < 0) return -1;
    const ts = digitsAt(bytes, p);
    if (ts < 0) return -1;
    const payloadStart = matchAt(bytes, digitsEnd, MEDIA_PAYLOAD);
    if (payloadStart < 0) return -1;
    // The tail must be exactly "},"streamSid":"S"}; the payload is everything before it, and the
    // base64 check below refuses any quote or other stray byte inside it.
    const sidLen = streamSid.length;
    const payloadEnd = len - MEDIA_SID.length - sidLen - 2;
    if (payloadEnd <= payloadStart || matchAt(bytes, payloadEnd, MEDIA_SID) < 0) return -1;
    for (let i = 0; i < sidLen; i++) if (bytes[payloadEnd + MEDIA_SID.length + i] !== streamSid.charCodeAt(i)) return -1;
    if (bytes[len - 2] !== 34 /* " */ || bytes[len - 1] !== 125 /* } */) return -1;
    const n = decodeBase64Bytes(bytes, payloadStart, payloadEnd, dst);
    if (n < 0) return -1;
    this.reason = null;
    this.field = null;
    this.eventName = 'media';
    this.sequenceNumber = seq;
    this.streamSid = streamSid;
    this.track = track;
    this.chunk = chunk;
    this.timestamp = ts;
    this.payload = '';
    this.kind = EVENT.MEDIA;
    return n;
  }

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

// Literal pieces of the fast-path media message (ASCII bytes).
const ascii = (t: string) => Uint8Array.from(t, (c) => c.charCodeAt(0));
const MEDIA_HEAD = ascii('{"event":"media","sequenceNumber":"');
const MEDIA_TRACK = ascii('","media":{"track":"');
const LIT_INBOUND = ascii('inbound');
const LIT_OUTBOUND = ascii('outbound');
const MEDIA_CHUNK = ascii('","chunk":"');
const MEDIA_TIMESTAMP = ascii('","timestamp":"');
const MEDIA_PAYLOAD = ascii('","payload":"');
const MEDIA_SID = ascii('"},"streamSid":"');

/** Position after `lit` if `bytes` holds it at `at`, else -1. */
function matchAt(bytes: Uint8Array, at: number, lit: Uint8Array): number {
  const n = lit.length;
  if (at + n > bytes.length) return -1;
  for (let i = 0; i < n; i++) if (bytes[at + i] !== lit[i]) return -1;
  return at + n;
}

/** Where the last {@link digitsAt} stopped (module state, so the fast path allocates nothing). */
let digitsEnd = 0;

/** 1..15 ASCII digits at `at` as {@link counter} reads them, or -1; sets `digitsEnd`. */
function digitsAt(bytes: Uint8Array, at: number): number {
  let x = 0;
  let i = at;
  const limit = Math.min(bytes.length, at + 16);
  for (; i < limit; i++) {
    const c = bytes[i]! - 48;
    if (c < 0 || c > 9) break;
    x = x * 10 + c;
  }
  const n = i - at;
  if (n === 0 || n > 15) return -1;
  digitsEnd = i;
  return x;
}

/** Standard base64 alphabet → 6-bit value; -1 for every other byte (including '=', '-', '_'). */
const B64_DECODE = (() => {
  const t = new Int8Array(256).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
})();

/**
 * Decodes bytes[start, end) as standard base64 (1 or 2 '=' of padding allowed only at the end)
 * into `dst`, the bytes Node's decoder writes for the same text; -1 for anything else, or when
 * it does not fit (the caller then takes the strict path).
 */
function decodeBase64Bytes(bytes: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  const n = end - start;
  if (n === 0 || (n & 3) !== 0) return -1;
  let pad = 0;
  if (bytes[end - 1] === 61 /* = */) pad = bytes[end - 2] === 61 ? 2 : 1;
  const out = (n >> 2) * 3 - pad;
  if (out > dst.length) return -1;
  const t = B64_DECODE;
  const full = pad === 0 ? end : end - 4;
  let o = 0;
  for (let i = start; i < full; i += 4) {
    const a = t[bytes[i]!]!;
    const b = t[bytes[i + 1]!]!;
    const c = t[bytes[i + 2]!]!;
    const d = t[bytes[i + 3]!]!;
    if ((a | b | c | d) < 0) return -1;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    dst[o++] = v >> 16;
    dst[o++] = (v >> 8) & 255;
    dst[o++] = v & 255;
  }
  if (pad > 0) {
    const a = t[bytes[full]!]!;
    const b = t[bytes[full + 1]!]!;
    if ((a | b) < 0) return -1;
    if (pad === 1) {
      const c = t[bytes[full + 2]!]!;
      if (c < 0) return -1;
      const v = (a << 18) | (b << 12) | (c << 6);
      dst[o++] = v >> 16;
      dst[o++] = (v >> 8) & 255;
    } else dst[o++] = ((a << 18) | (b << 12)) >> 16;
  }
  return o;
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

/**
 * Decodes standard base64 into `dst` and returns the byte count, or -1 when `text` is not
 * canonical base64 or does not fit. Node's decoder skips characters it does not know, so we
 * compare the bytes written with the length the text must decode to.
 */
export function decodeBase64Into(text: string, dst: Buffer): number {
  const n = text.length;
  if (n === 0) return 0;
  if ((n & 3) !== 0) return -1;
  let pad = 0;
  if (text.charCodeAt(n - 1) === 61 /* = */) pad = text.charCodeAt(n - 2) === 61 ? 2 : 1;
  const expected = (n >> 2) * 3 - pad;
  if (expected > dst.length) return -1;
  const written = dst.write(text, 0, 'base64');
  return written === expected ? written : -1;
}
