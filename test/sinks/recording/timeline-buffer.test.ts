/**
 * Property tests of the buffer alone, with an in-memory "file" standing in for the disk: random
 * frames (any order, duplicates, overlaps, odd sizes, two tracks) interleaved with random writer
 * steps, where a submitted range is copied out of the ring only when its write "completes", as
 * the real asynchronous write reads it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MediaFrame } from '../../../src/sinks/sink.js';
import { GAP_DROPPED, GAP_LEADING, GAP_TIMESTAMP } from '../../../src/sinks/recording/gap-list.js';
import { Outcome, Plan, TimelineBuffer } from '../../../src/sinks/recording/timeline-buffer.js';
import type { RecordingFormat } from '../../../src/sinks/recording/wav-header.js';

interface Ev {
  /** `drain`: the writer writes everything up to the horizon before the next frame. */
  kind: 'frame' | 'submit' | 'complete' | 'drain';
  track: 0 | 1;
  ts: number;
  size: number;
  variant: number;
}

/** Distinct non-silent content per track, position and copy. */
function value(format: RecordingFormat, ch: number, pos: number, variant: number): number {
  return format === 'pcm16' ? ((pos * 131 + ch * 7919 + variant * 104_729) % 32_000) + 1 : ((pos * 131 + ch * 17 + variant * 53) % 254) + 1;
}

function frameOf(format: RecordingFormat, ch: number, pos0: number, e: Ev): MediaFrame {
  const pcm = new Int16Array(e.size);
  const mulaw = new Uint8Array(e.size);
  for (let i = 0; i < e.size; i++) {
    const v = value(format, ch, pos0 + i, e.variant);
    pcm[i] = v;
    mulaw[i] = v;
  }
  return {
    track: e.track === 0 ? 'inbound' : 'outbound',
    trackIndex: e.track,
    timestampMs: e.ts,
    chunk: 0,
    sequenceNumber: 0,
    samples: e.size,
    pcm,
    mulaw,
    energy: 0,
    receivedAt: 0,
    late: false,
  };
}

interface Run {
  buf: TimelineBuffer;
  file: number[][];
  outcomes: number[];
  frames: { ch: number; s: number; size: number; variant: number }[];
}

function run(format: RecordingFormat, channels: 1 | 2, capacity: number, lag: number, events: Ev[], initial?: number): Run {
  const buf = new TimelineBuffer({
    format,
    channels,
    channelOfTrack: channels === 2 ? [0, 1] : [0, -1],
    capacityFrames: capacity,
    lagFrames: lag,
    ...(initial === undefined ? {} : { initialFrames: initial }),
  });
  const silence = format === 'pcm16' ? 0 : 0xff;
  const bytesPer = format === 'pcm16' ? 2 : 1;
  const file: number[][] = [[], []];
  let written = 0;
  // `ring` is the buffer the writer was handed: a ring that grows meanwhile leaves it intact.
  let inflight: { ring: Buffer; slot: number; n: number; pos: number; snapshot: Buffer } | null = null;
  const outcomes: number[] = [];
  const frames: Run['frames'] = [];
  let first: number | null = null;

  const complete = () => {
    if (inflight === null) return;
    // An asynchronous write reads the ring at any time until it completes: the range must not
    // have changed since it was submitted.
    const stride = channels * bytesPer;
    const ring = inflight.ring;
    const now = ring.subarray(inflight.slot * stride, (inflight.slot + inflight.n) * stride);
    if (Buffer.compare(now, inflight.snapshot) !== 0) expect('a submitted range').toBe('left untouched until release');
    for (let i = 0; i < inflight.n; i++) {
      for (let c = 0; c < channels; c++) {
        const at = ((inflight.slot + i) * channels + c) * bytesPer;
        file[c]![inflight.pos + i] = format === 'pcm16' ? ring.readInt16LE(at) : ring[at]!;
      }
    }
    buf.release(inflight.n);
    inflight = null;
  };
  const step = (final: boolean): boolean => {
    const plan = final ? buf.plan(buf.frontier, buf.finalEnd, 1000) : buf.plan(buf.horizon(), 0, 1000);
    if (plan === Plan.none) return false;
    // The writer appends: every write starts where the previous one ended.
    expect(buf.planPos).toBe(written);
    written += buf.planFrames;
    if (plan === Plan.silence) {
      for (let i = 0; i < buf.planFrames; i++) for (let c = 0; c < channels; c++) file[c]![buf.planPos + i] = silence;
      buf.submitSilence(buf.planFrames);
    } else {
      const stride = channels * bytesPer;
      const snapshot = Buffer.from(buf.bytes.subarray(buf.planSlot * stride, (buf.planSlot + buf.planFrames) * stride));
      inflight = { ring: buf.bytes, slot: buf.planSlot, n: buf.planFrames, pos: buf.planPos, snapshot };
      buf.submitData(buf.planFrames);
    }
    return true;
  };

  for (const e of events) {
    if (e.kind === 'frame') {
      first ??= e.ts;
      const s = (e.ts - first) * 8;
      if (channels === 1 && e.track === 1) {
        // A mono recording of the inbound track: outbound frames are ignored (and may not set zero).
        if (frames.length === 0) first = null;
        outcomes.push(buf.accept(frameOf(format, 0, s, e)));
        continue;
      }
      frames.push({ ch: e.track, s, size: e.size, variant: e.variant });
      outcomes.push(buf.accept(frameOf(format, e.track, s, e)));
    } else if (e.kind === 'submit') {
      if (inflight === null) step(false);
    } else if (e.kind === 'drain') {
      complete();
      while (step(false)) complete();
    } else {
      complete();
    }
  }
  complete();
  while (step(true)) complete();
  return { buf, file, outcomes, frames };
}

const evArb = fc.record({
  kind: fc.constantFrom<Ev['kind']>('frame', 'frame', 'frame', 'frame', 'submit', 'complete'),
  track: fc.constantFrom<0 | 1>(0, 1),
  ts: fc.integer({ min: 1000, max: 1400 }),
  size: fc.oneof(fc.constant(160), fc.integer({ min: 1, max: 400 })),
  variant: fc.integer({ min: 0, max: 3 }),
});

/** Mostly in order: timestamps advance by the frame length (±jitter, gaps, repeats). */
const streamArb = fc.array(
  fc.record({
    kind: fc.constantFrom<Ev['kind']>('frame', 'frame', 'frame', 'submit', 'complete'),
    track: fc.constantFrom<0 | 1>(0, 1),
    step: fc.oneof(
      { arbitrary: fc.constant(20), weight: 6 },
      { arbitrary: fc.constant(0), weight: 1 },
      { arbitrary: fc.integer({ min: -60, max: 300 }), weight: 2 },
      { arbitrary: fc.integer({ min: 300, max: 2000 }), weight: 1 },
    ),
    size: fc.oneof(fc.constant(160), fc.integer({ min: 1, max: 400 })),
    variant: fc.integer({ min: 0, max: 3 }),
  }),
  { maxLength: 200 },
).map((xs) => {
  const at = [1000, 1000];
  return xs.map((x): Ev => {
    at[x.track] = Math.max(0, at[x.track]! + x.step);
    return { kind: x.kind, track: x.track, ts: at[x.track]!, size: x.size, variant: x.variant };
  });
});

/** Both tracks together, as on a both_tracks socket: one tick, two frames a few ms apart. */
const pairedArb = fc.array(
  fc.record({
    step: fc.oneof({ arbitrary: fc.constant(20), weight: 8 }, { arbitrary: fc.integer({ min: 0, max: 400 }), weight: 1 }),
    jitter: fc.integer({ min: -5, max: 5 }),
    size: fc.oneof({ arbitrary: fc.constant(160), weight: 4 }, { arbitrary: fc.integer({ min: 1, max: 400 }), weight: 1 }),
    outFirst: fc.boolean(),
    writer: fc.array(fc.constantFrom<Ev['kind']>('submit', 'complete'), { maxLength: 3 }),
  }),
  { maxLength: 150 },
).map((ticks) => {
  let ts = 1000;
  const out: Ev[] = [];
  for (const t of ticks) {
    ts += t.step;
    const a: Ev = { kind: 'frame', track: 0, ts, size: t.size, variant: 0 };
    const b: Ev = { kind: 'frame', track: 1, ts: Math.max(0, ts + t.jitter), size: t.size, variant: 1 };
    out.push(...(t.outFirst ? [b, a] : [a, b]));
    for (const w of t.writer) out.push({ kind: w, track: 0, ts: 0, size: 0, variant: 0 });
  }
  return out;
});

const configArb = fc.record({
  format: fc.constantFrom<RecordingFormat>('pcm16', 'mulaw'),
  channels: fc.constantFrom<1 | 2>(1, 2),
  capacity: fc.integer({ min: 160, max: 4000 }),
  lag: fc.integer({ min: 0, max: 2000 }),
  /** Starting ring size as a share of capacity (1: allocated at capacity up front). */
  initialShare: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
});

const initialOf = (cfg: { capacity: number; initialShare: number }): number => Math.max(1, Math.floor(cfg.capacity * cfg.initialShare));

describe('TimelineBuffer', () => {
  it('holds every written sample at its timestamp position and every other one inside a reported gap', () => {
    fc.assert(
      fc.property(configArb, fc.oneof(fc.array(evArb, { maxLength: 200 }), streamArb, pairedArb), (cfg, events) => {
        const lag = Math.min(cfg.lag, cfg.capacity >> 1);
        const { buf, file, outcomes, frames } = run(cfg.format, cfg.channels, cfg.capacity, lag, events, initialOf(cfg));
        expect(buf.allocatedFrames).toBeLessThanOrEqual(cfg.capacity);
        const silence = cfg.format === 'pcm16' ? 0 : 0xff;
        const len = frames.length === 0 ? 0 : buf.finalEnd;
        expect(buf.filePos).toBe(len);
        expect(buf.occupied).toBe(0);
        for (let c = 0; c < cfg.channels; c++) {
          const spans = buf.gaps[c]!.spans;
          for (let i = 1; i < spans.length; i++) expect(spans[i]!.start).toBeGreaterThanOrEqual(spans[i - 1]!.end);
          const inGap = new Uint8Array(len);
          for (const g of spans) {
            expect([GAP_TIMESTAMP, GAP_DROPPED, GAP_LEADING]).toContain(g.cause);
            inGap.fill(1, g.start, g.end);
          }
          // Audio must be what some frame of this track carried for exactly that position.
          const carried = new Uint8Array(len);
          for (const f of frames) {
            if (f.ch !== c) continue;
            for (let i = 0; i < f.size; i++) {
              const p = f.s + i;
              if (p >= 0 && p < len && file[c]![p] === value(cfg.format, c, p, f.variant)) carried[p] = 1;
            }
          }
          const end = buf.trackEnd(c);
          for (let p = 0; p < len; p++) {
            const v = file[c]![p];
            if (inGap[p] === 1 || p >= end) {
              if (v !== silence) expect({ channel: c, position: p, value: v }).toBe('silence in a gap');
            } else if (carried[p] !== 1) {
              expect({ channel: c, position: p, value: v }).toBe('a sample some frame carried here');
            }
          }
        }
        const count = (o: number) => outcomes.filter((x) => x === o).length;
        expect(buf.framesReceived).toBe(outcomes.length);
        expect(buf.framesIgnored).toBe(count(Outcome.ignored));
        expect(count(Outcome.ignored)).toBe(outcomes.length - frames.length);
        expect(buf.framesDuplicate).toBe(count(Outcome.duplicate));
        expect(buf.framesDropped).toBe(count(Outcome.dropped));
        expect(buf.framesLate).toBe(count(Outcome.placedLate) + count(Outcome.lateDropped));
        expect(buf.framesLateDropped).toBe(count(Outcome.lateDropped));
      }),
      { numRuns: 1000 },
    );
  });

  it('equals a first-write-wins rendering when everything fits and nothing is flushed early', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<RecordingFormat>('pcm16', 'mulaw'),
        fc.constantFrom<1 | 2>(1, 2),
        fc.array(evArb.map((e) => ({ ...e, kind: 'frame' as const })), { maxLength: 150 }),
        (format, channels, events) => {
          const { file, frames, buf } = run(format, channels, 8 * 400 + 400, 0, events);
          const silence = format === 'pcm16' ? 0 : 0xff;
          const len = frames.length === 0 ? 0 : buf.finalEnd;
          const want = [new Array<number>(len).fill(silence), new Array<number>(len).fill(silence)];
          const done = [new Uint8Array(len), new Uint8Array(len)];
          for (const f of frames) {
            if (f.s < 0) continue; // before the stream's zero
            for (let i = 0; i < f.size; i++) {
              const p = f.s + i;
              if (done[f.ch]![p] === 1) continue;
              done[f.ch]![p] = 1;
              want[f.ch]![p] = value(format, f.ch, p, f.variant);
            }
          }
          for (let c = 0; c < channels; c++) expect(file[c]!.slice(0, len)).toEqual(want[c]);
          expect(buf.framesDropped).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('grows its ring on demand and writes exactly what a ring allocated at capacity writes', () => {
    // A smaller ring splits writes at its end more often, so with one write in flight the two
    // may hand the disk different amounts by the next frame; with a writer that drains between
    // frames (as the real one does when the disk keeps up) they must agree exactly.
    const drained = fc
      .oneof(fc.array(evArb, { maxLength: 200 }), streamArb, pairedArb)
      .map((evs) => evs.map((e): Ev => (e.kind === 'frame' ? e : { ...e, kind: 'drain' })));
    fc.assert(
      fc.property(
        configArb,
        drained,
        (cfg, events) => {
          const lag = Math.min(cfg.lag, cfg.capacity >> 1);
          const full = run(cfg.format, cfg.channels, cfg.capacity, lag, events);
          const grown = run(cfg.format, cfg.channels, cfg.capacity, lag, events, initialOf(cfg));
          expect(grown.outcomes).toEqual(full.outcomes);
          expect(grown.file).toEqual(full.file);
          expect(grown.buf.gaps[0].spans).toEqual(full.buf.gaps[0].spans);
          expect(grown.buf.gaps[1].spans).toEqual(full.buf.gaps[1].spans);
          expect(grown.buf.allocatedFrames).toBeLessThanOrEqual(cfg.capacity);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('starts small and stays small while the writer keeps up', () => {
    const events: Ev[] = [];
    for (let i = 0; i < 500; i++) {
      events.push({ kind: 'frame', track: 0, ts: 1000 + i * 20, size: 160, variant: 0 });
      events.push({ kind: 'frame', track: 1, ts: 1000 + i * 20, size: 160, variant: 1 });
      if (i % 10 === 9) events.push({ kind: 'submit', track: 0, ts: 0, size: 0, variant: 0 }, { kind: 'complete', track: 0, ts: 0, size: 0, variant: 0 });
    }
    const { buf } = run('pcm16', 2, 40_000, 4000, events, 4000);
    expect(buf.allocatedFrames).toBe(4000);
    expect(buf.framesDropped).toBe(0);
    // A writer that stalls for 4 s (32,000 sample frames, 8x the ring) makes it grow, so nothing
    // is dropped; once the writer has drained it, it is back at its starting size.
    const stalled = events.filter((e) => e.kind === 'frame');
    const { buf: big } = run('pcm16', 2, 40_000, 4000, stalled.slice(0, 400), 4000);
    expect(big.framesDropped).toBe(0);
    expect(big.framesReceived).toBe(400);
    expect(big.allocatedFrames).toBe(4000);
  });

  it('carries the audio still buffered when it shrinks back', () => {
    for (const format of ['pcm16', 'mulaw'] as const) {
      const frame = (i: number): Ev => ({ kind: 'frame', track: 0, ts: 1000 + i * 20, size: 160, variant: 0 });
      const writer = (kind: 'submit' | 'complete'): Ev => ({ kind, track: 0, ts: 0, size: 0, variant: 0 });
      // 10 frames outgrow the 800-frame ring (it doubles to 1,600); frame 10 arrives while they are
      // being written, so when they are released the ring shrinks with it still inside.
      const events = [...Array.from({ length: 10 }, (_, i) => frame(i)), writer('submit'), frame(10), writer('complete')];
      const { file, buf } = run(format, 1, 4000, 0, events, 800);
      expect(buf.allocatedFrames).toBe(800);
      expect(buf.framesDropped).toBe(0);
      for (let p = 0; p < 11 * 160; p++) expect(file[0]![p]).toBe(value(format, 0, p, 0));
    }
  });

  it('wraps the ring mid-frame and reuses released slots as silence', () => {
    for (const format of ['pcm16', 'mulaw'] as const) {
      for (const channels of [1, 2] as const) {
        const events: Ev[] = [];
        const writer = (kind: 'submit' | 'complete'): Ev => ({ kind, track: 0, ts: 0, size: 0, variant: 0 });
        for (let i = 0; i < 100; i++) {
          if (i % 7 !== 3) events.push({ kind: 'frame', track: 0, ts: 1000 + i * 20, size: 160, variant: 0 });
          events.push({ kind: 'frame', track: 1, ts: 1000 + i * 20, size: 160, variant: 1 });
          events.push(writer('submit'), writer('complete'), writer('submit'), writer('complete'));
        }
        const { file, buf } = run(format, channels, 500, 0, events); // 500: frames straddle the end
        const silence = format === 'pcm16' ? 0 : 0xff;
        expect(buf.finalEnd).toBe(100 * 160);
        for (let p = 0; p < 100 * 160; p++) {
          const i = Math.floor(p / 160);
          expect(file[0]![p]).toBe(i % 7 === 3 ? silence : value(format, 0, p, 0));
          if (channels === 2) expect(file[1]![p]).toBe(value(format, 1, p, 1));
        }
        expect(buf.framesDropped).toBe(0);
      }
    }
  });
});
