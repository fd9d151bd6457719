import mulaw from 'mulaw-js';
import { describe, expect, it } from 'vitest';
import { MULAW_TO_PCM, decodeMulaw, encodeMulaw } from '../../src/twilio/mulaw.js';
import { g711Decode } from '../helpers/capture.js';

describe('mu-law decode table', () => {
  it('decodes all 256 codes exactly as mulaw-js and the ITU G.711 formula do', () => {
    for (let code = 0; code < 256; code++) {
      expect(MULAW_TO_PCM[code], `code ${code}`).toBe(mulaw.decodeSample(code));
      expect(MULAW_TO_PCM[code], `code ${code}`).toBe(g711Decode(code));
    }
    expect(MULAW_TO_PCM[0x00]).toBe(-32124);
    expect(MULAW_TO_PCM[0x80]).toBe(32124);
    expect(MULAW_TO_PCM[0xff]).toBe(0);
  });

  it('decodes into the caller buffer and returns the frame energy', () => {
    const src = Uint8Array.from([0xff, 0x80, 0x00, 0x7f]);
    const dst = new Int16Array(8).fill(99);
    const energy = decodeMulaw(src, 3, dst);
    expect(Array.from(dst.subarray(0, 4))).toEqual([0, 32124, -32124, 99]);
    expect(energy).toBe(2 * 32124 * 32124);
  });

  it('round-trips every code through encode (up to the two zeros)', () => {
    const pcm = Int16Array.from(MULAW_TO_PCM);
    const codes = encodeMulaw(pcm);
    for (let code = 0; code < 256; code++) expect(MULAW_TO_PCM[codes[code]!]).toBe(MULAW_TO_PCM[code]);
  });
});
