/**
 * The send-time stamp a bench media frame carries in its audio.
 *
 * Twilio messages have no send-time field, and adding a JSON key would change the message the
 * servers parse. So the load generator writes its send time (shared monotonic clock, ms, as a
 * float64) into the first 8 mu-law bytes of the payload, followed by a marker byte. 9 bytes are
 * exactly 12 base64 characters, so the stamp patches a fixed-width prefix of the base64 text and
 * the rest of the payload's base64 can be computed once per stream:
 *
 *   payload bytes  [ f64 LE send time | 0xA5 | 151 bytes of audio ]
 *   payload base64 [ 12 chars (patched per send) | 204 chars (fixed)  ]   = 216 chars
 *
 * Each server reads the stamp at the point it counts as "written to its sink": the decoded bytes
 * (streamgate's bench sink, the naive server), or the base64 text (the discard server decodes
 * nothing, so it reads these 12 characters itself).
 */

export const STAMP_BYTES = 9;
export const STAMP_B64_CHARS = 12;
export const STAMP_MARKER = 0xa5;

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ENC = new Uint8Array(64);
const DEC = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) {
  ENC[i] = B64.charCodeAt(i);
  DEC[B64.charCodeAt(i)] = i;
}

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

/** Writes the 12 base64 characters of the stamp for `sentMs` into `dst` at `offset`. */
export function writeStampBase64(sentMs: number, dst: Uint8Array, offset: number): void {
  f64[0] = sentMs;
  const b = f64Bytes;
  let o = offset;
  for (let i = 0; i < 9; i += 3) {
    const b0 = b[i]!;
    const b1 = b[i + 1]!;
    const b2 = i + 2 < 8 ? b[i + 2]! : STAMP_MARKER;
    dst[o++] = ENC[b0 >> 2]!;
    dst[o++] = ENC[((b0 & 3) << 4) | (b1 >> 4)]!;
    dst[o++] = ENC[((b1 & 15) << 2) | (b2 >> 6)]!;
    dst[o++] = ENC[b2 & 63]!;
  }
}

/** The stamp in decoded payload bytes, or NaN when the frame carries none. */
export function readStampBytes(bytes: Uint8Array, offset = 0): number {
  if (bytes.length - offset < STAMP_BYTES || bytes[offset + 8] !== STAMP_MARKER) return NaN;
  for (let i = 0; i < 8; i++) f64Bytes[i] = bytes[offset + i]!;
  return f64[0]!;
}

/** The stamp from the first 12 base64 characters at `offset` of an ASCII buffer, or NaN. */
export function readStampBase64(text: Uint8Array, offset: number): number {
  if (text.length - offset < STAMP_B64_CHARS) return NaN;
  let o = offset;
  let k = 0;
  let last = 0;
  for (let g = 0; g < 3; g++) {
    const c0 = DEC[text[o++]!]!;
    const c1 = DEC[text[o++]!]!;
    const c2 = DEC[text[o++]!]!;
    const c3 = DEC[text[o++]!]!;
    if ((c0 | c1 | c2 | c3) < 0) return NaN;
    const v = (c0 << 18) | (c1 << 12) | (c2 << 6) | c3;
    const x0 = (v >> 16) & 255;
    const x1 = (v >> 8) & 255;
    const x2 = v & 255;
    f64Bytes[k++] = x0;
    f64Bytes[k++] = x1;
    if (k < 8) f64Bytes[k++] = x2;
    else last = x2;
  }
  return last === STAMP_MARKER ? f64[0]! : NaN;
}
