/**
 * The media fast path: one Media Streams media message of Twilio's usual byte layout, read
 * straight from the UTF-8 bytes ws delivers into the session's reused {@link ParsedMessage},
 * its payload decoded into the session's buffer. The strict parser (src/twilio/protocol.ts)
 * stays the authority: this path only ever declines or agrees with it.
 */
import { decodeBase64Bytes } from './base64.js';
import { EVENT, type ParsedMessage } from './protocol.js';

/**
 * Reads the message Twilio sends 50 times a second per track into `msg`. When `bytes[start,
 * end)` (the text frame's payload as the socket delivered it, UTF-8) is exactly
 *
 *   {"event":"media","sequenceNumber":"D","media":{"track":"T","chunk":"D","timestamp":"D","payload":"B"},"streamSid":"S"}
 *
 * (the key order of every real capture, docs/twilio-protocol.md §2.2; D 1..15 decimal digits, T
 * inbound|outbound, B non-empty standard base64, S equal to `streamSid`, no whitespace or
 * escapes), it sets the fields `msg.read()` would set for it, decodes the payload straight into
 * `dst` and returns the byte count; `payload` is left empty, as no string is made. For
 * anything else it returns -1 and leaves the fields alone (`dst` may have been written), and
 * the caller falls back to `msg.read()`, which decides exactly as before.
 *
 * `streamSid` must be a valid stream SID (the session's, checked at `start`): matching it
 * byte for byte is what lets this path skip the SID pattern. For every input this path either
 * declines or agrees with `ParsedMessage.read()` + `decodeBase64Into` (property test:
 * test/twilio/protocol-fast-path.test.ts). It saves the string copy, JSON.parse and its
 * garbage (bench/mulaw-decode.bench.ts, "per media message").
 */
export function readMediaFast(msg: ParsedMessage, bytes: Uint8Array, streamSid: string, dst: Uint8Array, start = 0, end = bytes.length): number {
  let p = matchAt(bytes, start, MEDIA_HEAD, end);
  if (p < 0) return -1;
  const seq = digitsAt(bytes, p, end);
  if (seq < 0) return -1;
  p = matchAt(bytes, digitsEnd, MEDIA_TRACK, end);
  if (p < 0) return -1;
  let track: 'inbound' | 'outbound';
  let q = matchAt(bytes, p, LIT_INBOUND, end);
  if (q >= 0) track = 'inbound';
  else if ((q = matchAt(bytes, p, LIT_OUTBOUND, end)) >= 0) track = 'outbound';
  else return -1;
  p = matchAt(bytes, q, MEDIA_CHUNK, end);
  if (p < 0) return -1;
  const chunk = digitsAt(bytes, p, end);
  if (chunk < 0) return -1;
  p = matchAt(bytes, digitsEnd, MEDIA_TIMESTAMP, end);
  if (p < 0) return -1;
  const ts = digitsAt(bytes, p, end);
  if (ts < 0) return -1;
  const payloadStart = matchAt(bytes, digitsEnd, MEDIA_PAYLOAD, end);
  if (payloadStart < 0) return -1;
  // The tail must be exactly "},"streamSid":"S"}; the payload is everything before it, and the
  // base64 check below refuses any quote or other stray byte inside it.
  const sidLen = streamSid.length;
  const payloadEnd = end - MEDIA_SID.length - sidLen - 2;
  if (payloadEnd <= payloadStart || matchAt(bytes, payloadEnd, MEDIA_SID, end) < 0) return -1;
  for (let i = 0; i < sidLen; i++) if (bytes[payloadEnd + MEDIA_SID.length + i] !== streamSid.charCodeAt(i)) return -1;
  if (bytes[end - 2] !== 34 /* " */ || bytes[end - 1] !== 125 /* } */) return -1;
  const n = decodeBase64Bytes(bytes, payloadStart, payloadEnd, dst);
  if (n < 0) return -1;
  msg.reason = null;
  msg.field = null;
  msg.eventName = 'media';
  msg.sequenceNumber = seq;
  msg.streamSid = streamSid;
  msg.track = track;
  msg.chunk = chunk;
  msg.timestamp = ts;
  msg.payload = '';
  msg.kind = EVENT.MEDIA;
  return n;
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

/** Position after `lit` if `bytes` holds it at `at` (all of it before `end`), else -1. */
function matchAt(bytes: Uint8Array, at: number, lit: Uint8Array, end: number): number {
  const n = lit.length;
  if (at + n > end) return -1;
  for (let i = 0; i < n; i++) if (bytes[at + i] !== lit[i]) return -1;
  return at + n;
}

/** Where the last {@link digitsAt} stopped (module state, so the fast path allocates nothing). */
let digitsEnd = 0;

/** 1..15 ASCII digits at `at` (before `end`) as `counter` (src/twilio/protocol.ts) reads them, or -1; sets `digitsEnd`. */
function digitsAt(bytes: Uint8Array, at: number, end: number): number {
  let x = 0;
  let i = at;
  const limit = Math.min(end, at + 16);
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
