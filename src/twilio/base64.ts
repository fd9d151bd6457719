/**
 * Standard base64 decoding of Media Streams payloads into a caller's buffer, without a new
 * Buffer per message: from the JSON string the strict parser returns (`decodeBase64Into`), and
 * from the raw UTF-8 bytes of a message for the media fast path (`decodeBase64Bytes`,
 * src/twilio/media-fast-path.ts). Both accept exactly the canonical text and agree byte for
 * byte with Node's decoder (test/twilio/protocol-fast-path.test.ts).
 */

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
 * it does not fit (the media fast path then declines and the caller takes the strict path).
 */
export function decodeBase64Bytes(bytes: Uint8Array, start: number, end: number, dst: Uint8Array): number {
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
