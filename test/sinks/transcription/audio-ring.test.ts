import { describe, expect, it } from 'vitest';
import { AudioRing, TimeMap } from '../../../src/sinks/transcription/engines/audio-ring.js';

/** 16 kHz samples whose values encode their own media time (ms × 16 + offset), for checks. */
function frame(startMs: number, ms = 20): Int16Array {
  const n = ms * 16;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = (startMs * 16 + i) % 30000;
  return out;
}

/** Drains the ring the way the recogniser pump does, recording the time map. */
function drain(ring: AudioRing, map: TimeMap, enginePos: { v: number }, max = 4096): Int16Array[] {
  const chunks: Int16Array[] = [];
  while (ring.available > 0) {
    const dst = new Int16Array(max);
    const ringPos = ring.readPos;
    const ms = ring.mediaMsAt(ringPos);
    const n = ring.read(dst, max);
    map.append(enginePos.v, ms, ringPos);
    enginePos.v += n;
    chunks.push(dst.subarray(0, n));
  }
  return chunks;
}

describe('AudioRing + TimeMap', () => {
  it('maps recogniser positions to media time for continuous audio', () => {
    const ring = new AudioRing(16384);
    const map = new TimeMap();
    for (let t = 1000; t < 2000; t += 20) ring.push(frame(t), 320, t);
    const pos = { v: 5000 }; // a primer took the first 5000 samples
    drain(ring, map, pos);
    expect(map.size).toBe(1);
    expect(map.toMediaMs(4999)).toBeNaN();
    expect(map.toMediaMs(5000)).toBe(1000);
    expect(map.toMediaMs(5000 + 16 * 500)).toBe(1500);
  });

  it('starts a segment where media timestamps jump, and never reads across it', () => {
    const ring = new AudioRing(16384);
    const map = new TimeMap();
    ring.push(frame(0), 320, 0);
    ring.push(frame(20), 320, 20);
    ring.push(frame(500), 320, 500); // 460 ms lost on the wire
    ring.push(frame(520), 320, 520);
    const pos = { v: 0 };
    const chunks = drain(ring, map, pos);
    expect(chunks.map((c) => c.length)).toEqual([640, 640]);
    expect(map.size).toBe(2);
    expect(map.toMediaMs(639)).toBeCloseTo(39.94, 2);
    expect(map.toMediaMs(640)).toBe(500);
    expect(map.toMediaMs(640 + 320)).toBe(520);
  });

  it('drops the oldest audio when full, and keeps later times right', () => {
    const ring = new AudioRing(16384); // 1.024 s
    const map = new TimeMap();
    let dropped = 0;
    for (let t = 0; t < 3000; t += 20) dropped += ring.push(frame(t), 320, t);
    expect(dropped).toBeGreaterThan(0);
    expect(ring.droppedSamples).toBe(dropped);
    expect(dropped + ring.available).toBe(3000 * 16);
    expect(ring.available).toBeLessThanOrEqual(ring.capacity);
    const pos = { v: 0 };
    const chunks = drain(ring, map, pos);
    // The first sample the recogniser gets is the oldest one kept, at its own media time.
    const firstMs = 3000 - ring.capacity / 16 + (ring.capacity - pos.v) / 16;
    expect(map.toMediaMs(0)).toBeCloseTo(firstMs, 6);
    expect(chunks[0]![0]).toBe((firstMs * 16) % 30000);
    expect(map.toMediaMs(pos.v - 16)).toBeCloseTo(2999, 6);
  });

  it('keeps the mapping when the reader catches up between drops', () => {
    const ring = new AudioRing(2048);
    const map = new TimeMap();
    const pos = { v: 0 };
    for (let t = 0; t < 200; t += 20) ring.push(frame(t), 320, t); // 3200 > 2048: drops
    drain(ring, map, pos);
    const before = pos.v;
    ring.push(frame(1000), 320, 1000);
    drain(ring, map, pos);
    expect(map.toMediaMs(before)).toBe(1000);
    expect(map.toMediaMs(before - 1)).toBeCloseTo(199.94, 2);
  });

  it('keeps only the newest part of a write larger than the ring', () => {
    const ring = new AudioRing(1024);
    const dropped = ring.push(frame(0, 100), 1600, 0);
    expect(dropped).toBe(576);
    expect(ring.available).toBe(1024);
    expect(ring.mediaMsAt(ring.readPos)).toBe(36);
  });

  it('prunes entries wholly before a position', () => {
    const map = new TimeMap();
    map.append(0, 0, 0);
    map.append(1600, 500, 8000);
    map.append(3200, 2000, 40000);
    map.pruneBefore(2000);
    expect(map.size).toBe(2);
    expect(map.toMediaMs(2000)).toBe(525);
    map.reset();
    expect(map.toMediaMs(2000)).toBeNaN();
  });

  it('replays sent audio that was not committed, with its media times', () => {
    const ring = new AudioRing(16384);
    const map = new TimeMap();
    for (let t = 0; t < 400; t += 20) ring.push(frame(t), 320, t);
    const pos = { v: 0 };
    drain(ring, map, pos);
    // The recogniser reported up to 150 ms, then died.
    ring.commit(map.toRingPos(150 * 16));
    expect(ring.rewind()).toBe(250 * 16);
    expect(ring.available).toBe(250 * 16);
    const fresh = new TimeMap();
    const chunks = drain(ring, fresh, { v: 0 });
    expect(fresh.toMediaMs(0)).toBe(150);
    expect(chunks[0]![0]).toBe(150 * 16);
  });

  it('forgets sent audio before dropping unsent audio when full', () => {
    const ring = new AudioRing(16384);
    for (let t = 0; t < 1000; t += 20) ring.push(frame(t), 320, t);
    ring.read(new Int16Array(16000), 16000); // sent, never committed
    let dropped = 0;
    for (let t = 1000; t < 1500; t += 20) dropped += ring.push(frame(t), 320, t);
    expect(dropped).toBe(0);
    expect(ring.available).toBe(500 * 16);
    expect(ring.rewind()).toBe(16384 - 500 * 16);
  });
});
