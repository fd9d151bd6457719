/**
 * G.711 mu-law decoding for the hot path.
 *
 * mulaw-js defines the codec; at load we ask it for all 256 codes once and keep the answers
 * in an Int16Array, so decoding a frame is one table lookup per byte into a buffer the caller
 * owns (no allocation per frame). test/twilio/mulaw.test.ts proves the table equals mulaw-js
 * and the ITU G.711 formula for every code; bench/mulaw-decode.bench.ts measures the speed.
 */
import mulaw from 'mulaw-js';

/** The 256-entry decode table: MULAW_TO_PCM[code] is the linear 16-bit sample. */
export const MULAW_TO_PCM: Int16Array = (() => {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) table[code] = mulaw.decodeSample(code);
  return table;
})();

/**
 * Decodes `length` mu-law bytes from `src` into `dst` and returns the sum of squared samples,
 * which the level meter turns into an RMS level without a second pass over the frame.
 */
export function decodeMulaw(src: Uint8Array, length: number, dst: Int16Array): number {
  const table = MULAW_TO_PCM;
  let energy = 0;
  for (let i = 0; i < length; i++) {
    const s = table[src[i]!]!;
    dst[i] = s;
    energy += s * s;
  }
  return energy;
}

/** Encodes linear 16-bit PCM into mu-law (used by the emulator and tests, not the hot path). */
export function encodeMulaw(src: Int16Array, dst: Uint8Array = new Uint8Array(src.length)): Uint8Array {
  for (let i = 0; i < src.length; i++) dst[i] = mulaw.encodeSample(src[i]!);
  return dst;
}
