import { describe, expect, it } from 'vitest';
import { FaultPipeline, prng, Rechunker, Selector, type OutboxItem } from '../../src/emulator/frame-faults.js';

describe('Selector', () => {
  it('picks listed ordinals and a reproducible random share', () => {
    const a = new Selector({ rate: 0.25, frames: [3] }, 42);
    const b = new Selector({ rate: 0.25, frames: [3] }, 42);
    const picksA = Array.from({ length: 1000 }, (_, i) => a.picks(i + 1));
    const picksB = Array.from({ length: 1000 }, (_, i) => b.picks(i + 1));
    expect(picksA).toEqual(picksB);
    expect(picksA[2]).toBe(true);
    const share = picksA.filter(Boolean).length / 1000;
    expect(share).toBeGreaterThan(0.18);
    expect(share).toBeLessThan(0.32);
  });

  it('prng is deterministic per seed', () => {
    const r1 = prng(1);
    const r2 = prng(1);
    expect([r1(), r1(), r1()]).toEqual([r2(), r2(), r2()]);
  });
});

describe('FaultPipeline', () => {
  it('drops, duplicates and holds back messages, and marks stalls', () => {
    const p = new FaultPipeline({ drop: { frames: [2] }, duplicate: { frames: [3] }, reorder: { frames: [4], by: 1 }, delay: { frames: [5], ms: 10 } });
    const out: OutboxItem[] = [];
    for (let i = 1; i <= 6; i++) p.push(`m${i}`, i, out);
    expect(out).toEqual(['m1', 'm3', 'm3', { stallMs: 10 }, 'm5', 'm4', 'm6']);
    expect([p.dropped, p.duplicated, p.reordered]).toEqual([1, 1, 1]);
  });

  it('flushes held messages', () => {
    const p = new FaultPipeline({ reorder: { frames: [1], by: 5 } });
    const out: OutboxItem[] = [];
    p.push('m1', 1, out);
    p.push('m2', 2, out);
    p.flush(out);
    expect(out).toEqual(['m2', 'm1']);
  });
});

describe('Rechunker', () => {
  it('re-cuts a byte stream per track and flushes the remainder', () => {
    const r = new Rechunker([100, 30]);
    const got: [string, number, number][] = [];
    const emit = (track: string, chunk: Uint8Array, ts: number): void => void got.push([track, chunk.length, ts]);
    r.push('inbound', new Uint8Array(160), 99, emit);
    r.push('outbound', new Uint8Array(160), 99, emit);
    r.push('inbound', new Uint8Array(160), 119, emit);
    r.flush(emit);
    expect(got).toEqual([
      ['inbound', 100, 99],
      ['inbound', 30, 111],
      ['outbound', 100, 99],
      ['outbound', 30, 111],
      ['inbound', 100, 115],
      ['inbound', 30, 127],
      ['inbound', 60, 131],
      ['outbound', 30, 115],
    ]);
  });
});
