import { describe, expect, it } from 'vitest';
import { Upsampler8kTo16k, upsample8kTo16k } from '../../../src/sinks/dsp/resample.js';

/** Amplitude of the `freq` component of `x` (sampled at `rate`), by a single DFT bin. */
function amplitude(x: Int16Array, from: number, rate: number, freq: number): number {
  let re = 0;
  let im = 0;
  const n = x.length - from;
  for (let i = from; i < x.length; i++) {
    const a = (2 * Math.PI * freq * i) / rate;
    re += x[i]! * Math.cos(a);
    im -= x[i]! * Math.sin(a);
  }
  return (2 * Math.hypot(re, im)) / n;
}

function sine(freq: number, samples: number, amp: number): Int16Array {
  const x = new Int16Array(samples);
  for (let i = 0; i < samples; i++) x[i] = Math.round(amp * Math.sin((2 * Math.PI * freq * i) / 8000));
  return x;
}

function db(ratio: number): number {
  return 20 * Math.log10(ratio);
}

describe('upsample8kTo16k (linear)', () => {
  it('puts the midpoint before every input sample', () => {
    const dst = new Int16Array(6);
    const last = upsample8kTo16k(Int16Array.of(100, 200, -100), 3, dst, 0);
    expect(Array.from(dst)).toEqual([50, 100, 150, 200, 50, -100]);
    expect(last).toBe(-100);
  });

  it('is seamless across frames when given the previous sample', () => {
    const src = sine(440, 480, 12000);
    const whole = new Int16Array(960);
    upsample8kTo16k(src, 480, whole, 0);
    const parts = new Int16Array(960);
    const frame = new Int16Array(160);
    const out = new Int16Array(320);
    let prev = 0;
    for (let f = 0; f < 3; f++) {
      frame.set(src.subarray(f * 160, f * 160 + 160));
      prev = upsample8kTo16k(frame, 160, out, prev);
      parts.set(out, f * 320);
    }
    expect(parts).toEqual(whole);
  });
});

describe('Upsampler8kTo16k (32-tap low-pass)', () => {
  it('gives the same output whether fed at once or in 20 ms frames', () => {
    const src = sine(700, 1600, 9000);
    const whole = new Int16Array(3200);
    new Upsampler8kTo16k().process(src, 1600, whole);
    const up = new Upsampler8kTo16k();
    const parts = new Int16Array(3200);
    const out = new Int16Array(320);
    const frame = new Int16Array(160);
    for (let f = 0; f < 10; f++) {
      frame.set(src.subarray(f * 160, f * 160 + 160));
      expect(up.process(frame, 160, out)).toBe(320);
      parts.set(out, f * 320);
    }
    expect(parts).toEqual(whole);
  });

  it('keeps a constant input constant on both phases', () => {
    const out = new Int16Array(640);
    new Upsampler8kTo16k().process(new Int16Array(320).fill(1000), 320, out);
    for (let i = 64; i < 640; i++) expect(Math.abs(out[i]! - 1000)).toBeLessThanOrEqual(1);
  });

  it('passes 1 kHz within 0.5 dB and suppresses its 7 kHz image by more than 40 dB', () => {
    const src = sine(1000, 8000, 10000);
    const out = new Int16Array(16000);
    new Upsampler8kTo16k().process(src, 8000, out);
    const pass = amplitude(out, 64, 16000, 1000);
    const image = amplitude(out, 64, 16000, 7000);
    expect(Math.abs(db(pass / 10000))).toBeLessThan(0.5);
    expect(db(image / pass)).toBeLessThan(-40);

  });

  it('suppresses the 5 kHz image of a 3 kHz tone far better than linear interpolation', () => {
    // Images of the upper speech band are why the engines do not use linear interpolation.
    const src = sine(3000, 8000, 10000);
    const fir = new Int16Array(16000);
    new Upsampler8kTo16k().process(src, 8000, fir);
    const lin = new Int16Array(16000);
    upsample8kTo16k(src, 8000, lin, 0);
    const firImage = db(amplitude(fir, 64, 16000, 5000) / amplitude(fir, 64, 16000, 3000));
    const linImage = db(amplitude(lin, 64, 16000, 5000) / amplitude(lin, 64, 16000, 3000));
    expect(firImage).toBeLessThan(-20);
    expect(linImage).toBeGreaterThan(-10);
  });

  it('clamps overshoot to the 16-bit range', () => {
    const src = new Int16Array(64);
    for (let i = 0; i < 64; i++) src[i] = i % 2 === 0 ? 32767 : -32768;
    const out = new Int16Array(128);
    new Upsampler8kTo16k().process(src, 64, out);
    for (const v of out) expect(v >= -32768 && v <= 32767).toBe(true);
  });

  it('forgets its history on reset', () => {
    const up = new Upsampler8kTo16k();
    const a = new Int16Array(320);
    const b = new Int16Array(320);
    const src = sine(300, 160, 8000);
    up.process(src, 160, a);
    up.process(src, 160, b);
    expect(b).not.toEqual(a);
    up.reset();
    up.process(src, 160, b);
    expect(b).toEqual(a);
  });
});
