import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WASM_TS_PATH, WAT_PATH, assembleWat, renderWasmTs } from '../../scripts/build-mulaw-wasm.js';
import { MULAW_TO_PCM, decodeMulaw } from '../../src/twilio/mulaw.js';
import { createDecodeScratch, decodeScratch, wasmSimdSupported, type DecodeScratch } from '../../src/twilio/mulaw-simd.js';
import { MULAW_SIMD_WASM_BASE64 } from '../../src/twilio/mulaw-simd.wasm.js';
import { g711Decode } from '../helpers/capture.js';

/** xorshift32: the same frames on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const SENTINEL = 0x5a5a;

/** Decodes raw[0, n) with the scratch and checks it against decodeMulaw, sample for sample. */
function checkAgainstTable(s: DecodeScratch, n: number): void {
  const ref = new Int16Array(n);
  const want = decodeMulaw(s.raw, n, ref);
  s.pcm.fill(SENTINEL, 0, Math.min(s.capacity, n + 48));
  const got = s.decode(n);
  expect(got, `energy, length ${n}`).toBe(want);
  const pcm = s.pcm;
  for (let i = 0; i < n; i++) if (pcm[i] !== ref[i]) expect(pcm[i], `sample ${i} of ${n} (code ${s.raw[i]})`).toBe(ref[i]);
  // Nothing written past the frame.
  for (let i = n; i < Math.min(s.capacity, n + 48); i++) if (pcm[i] !== SENTINEL) expect(pcm[i], `pcm[${i}] past length ${n}`).toBe(SENTINEL);
}

for (const simd of [true, false]) {
  describe(`decode scratch (${simd ? 'wasm-simd' : 'js-table fallback'})`, () => {
    const make = (capacity?: number) => createDecodeScratch({ simd, ...(capacity === undefined ? {} : { capacity }) });

    it('is the kind asked for', () => {
      expect(make().kind).toBe(simd ? 'wasm-simd' : 'js-table');
    });

    it('decodes all 256 codes to MULAW_TO_PCM, at every lane position', () => {
      const s = make();
      for (let shift = 0; shift < 16; shift++) {
        for (let i = 0; i < 256 + 16; i++) s.raw[i] = (i + shift) & 255;
        s.decode(256 + 16);
        for (let i = 0; i < 256 + 16; i++) {
          const code = (i + shift) & 255;
          if (s.pcm[i] !== MULAW_TO_PCM[code]) expect(s.pcm[i], `code ${code} at ${i}`).toBe(MULAW_TO_PCM[code]);
          if (s.pcm[i] !== g711Decode(code)) expect(s.pcm[i], `code ${code} (ITU formula)`).toBe(g711Decode(code));
        }
      }
      // Every code alone, so the scalar tail sees each of them too.
      for (let code = 0; code < 256; code++) {
        s.raw[0] = code;
        expect(s.decode(1), `energy of code ${code}`).toBe(MULAW_TO_PCM[code]! * MULAW_TO_PCM[code]!);
        expect(s.pcm[0], `code ${code} (tail)`).toBe(MULAW_TO_PCM[code]);
      }
    });

    it('equals decodeMulaw on random frames of every length 0..2000, energy exactly', () => {
      const s = make(2048);
      const next = rng(0x6d756c61);
      for (let n = 0; n <= 2000; n++) {
        for (let i = 0; i < n; i++) s.raw[i] = next() & 255;
        checkAgainstTable(s, n);
      }
    });

    it('sums the energy of full-scale frames without overflow', () => {
      const s = make();
      const n = s.capacity;
      for (const code of [0x00, 0x80]) {
        s.raw.fill(code, 0, n);
        // 21 840 × 32124² ≈ 2.3e13: far past i32 and u32, still exact in a double.
        expect(s.decode(n)).toBe(n * 32124 * 32124);
        checkAgainstTable(s, n - 7);
      }
    });

    it('grows on reserve, with new views, and keeps decoding', () => {
      const s = make();
      const before = s.capacity;
      const raw = s.raw;
      s.reserve(before);
      expect(s.raw).toBe(raw);
      s.reserve(before + 1);
      expect(s.capacity).toBeGreaterThan(before);
      expect(s.capacity % 16).toBe(0);
      expect(s.raw.length).toBe(s.capacity);
      expect(s.pcm.length).toBe(s.capacity);
      const next = rng(7);
      for (const n of [before + 1, s.capacity, 160, 0]) {
        for (let i = 0; i < n; i++) s.raw[i] = next() & 255;
        checkAgainstTable(s, n);
      }
      s.reserve(5 * s.capacity + 3);
      expect(s.capacity).toBeGreaterThanOrEqual(5 * before);
      for (let i = 0; i < s.capacity; i++) s.raw[i] = next() & 255;
      checkAgainstTable(s, s.capacity);
      checkAgainstTable(s, s.capacity - 9);
    });

    it('refuses a length past its capacity', () => {
      const s = make();
      expect(() => s.decode(s.capacity + 1)).toThrow(RangeError);
      expect(() => s.decode(-1)).toThrow(RangeError);
    });
  });
}

describe('decodeScratch (the shared one)', () => {
  it('runs the SIMD decoder on this Node', () => {
    expect(wasmSimdSupported()).toBe(true);
    expect(decodeScratch.kind).toBe('wasm-simd');
    expect(decodeScratch.capacity).toBeGreaterThanOrEqual(1024);
  });
});

describe('mulaw-simd.wasm.ts', () => {
  it('holds exactly what mulaw-simd.wat assembles to', async () => {
    const bytes = await assembleWat(readFileSync(WAT_PATH, 'utf8'));
    expect(Buffer.from(MULAW_SIMD_WASM_BASE64, 'base64').equals(Buffer.from(bytes))).toBe(true);
    expect(readFileSync(WASM_TS_PATH, 'utf8'), 'run: npx tsx scripts/build-mulaw-wasm.ts').toBe(renderWasmTs(bytes));
  });
});
