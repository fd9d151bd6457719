/**
 * Per-frame sink bench: ns per 20 ms frame for what the production sinks do with each frame,
 * with many streams' state in play (STREAMS of each, frames handed round-robin as the gateway
 * sees them), so cache misses on per-stream objects count as they do in the gateway.
 *
 * - recording: TimelineBuffer.accept (placement + copy into the ring, src/sinks/recording/
 *   timeline-buffer.ts and sample-ring.ts), pcm16, mono (a whole frame is one TypedArray.set)
 *   and two-channel (interleaved: a strided loop); the writer's plan/submit/release runs every
 *   10 frames per stream as the flush would, and is included.
 * - level: LevelSink.accept (src/sinks/level/level-sink.ts), one track.
 * - the ring copy alone, both ways, to show what the mono case saves.
 *
 *   npx tsx bench/frame-sinks.bench.ts [--quick]      (or node dist/bench/frame-sinks.bench.js)
 */
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { EventBus } from '../src/core/events.js';
import type { StreamInfo } from '../src/core/stream.js';
import { LevelSink } from '../src/sinks/level/level-sink.js';
import { Plan, TimelineBuffer } from '../src/sinks/recording/timeline-buffer.js';
import type { MediaFrame } from '../src/sinks/sink.js';
import { fmt, mdTable } from './lib/stats.js';
import { timeCases, type CaseResult, type TimedCase } from './lib/timing.js';

/** Streams whose state is in play (the quick run, a CI smoke test, uses a few). */
let STREAMS = 750;
const FRAME = 160;

function newFrame(): MediaFrame {
  const pcm = new Int16Array(FRAME).map((_, i) => ((i * 977) % 20_000) - 10_000);
  return { track: 'inbound', trackIndex: 0, timestampMs: 0, chunk: 0, sequenceNumber: 0, samples: FRAME, pcm, mulaw: new Uint8Array(FRAME), energy: 0, receivedAt: 0, late: false };
}

/** Timelines as the recording factory sizes them (5 s bound, 1 s ring, 500 ms lag). */
function timelines(channels: 1 | 2): TimelineBuffer[] {
  return Array.from(
    { length: STREAMS },
    () =>
      new TimelineBuffer({
        format: 'pcm16',
        channels,
        channelOfTrack: channels === 1 ? [0, -1] : [0, 1],
        capacityFrames: 40_000,
        initialFrames: 8000 + (channels === 2 ? 4000 : 0),
        lagFrames: 4000,
        maxGapFrames: 480_000,
      }),
  );
}

/** What the writer does with a flush, without the I/O: hand everything up to the horizon over and release it. */
function drain(tl: TimelineBuffer): void {
  let n = 0;
  while (tl.plan(tl.horizon(), 0, 32_768) === Plan.data) {
    tl.submitData(tl.planFrames);
    n += tl.planFrames;
  }
  if (n > 0) tl.release(n);
}

function recordingCase(channels: 1 | 2): TimedCase {
  const tls = timelines(channels);
  const frame = newFrame();
  let t = 0;
  let s = 0;
  return {
    name: `recording: TimelineBuffer.accept, pcm16, ${channels === 1 ? 'mono (TypedArray.set)' : 'two channels (strided copy; per pair of frames)'}, ${STREAMS} streams`,
    run(n) {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const tl = tls[s]!;
        frame.timestampMs = 100 + t * 20;
        acc += tl.accept(frame);
        if (channels === 2) {
          // The other track's frame too (counted as one more frame below), so the horizon moves.
          frame.trackIndex = 1;
          frame.track = 'outbound';
          tl.accept(frame);
          frame.trackIndex = 0;
          frame.track = 'inbound';
        }
        if (t % 10 === 9) drain(tl);
        if (++s === STREAMS) {
          s = 0;
          t++;
        }
      }
      return acc;
    },
  };
}

function levelCase(): TimedCase {
  const bus = new EventBus(pino({ level: 'silent' }));
  bus.on('media-progress', () => undefined);
  const info: StreamInfo = { accountSid: 'AC', callSid: 'CA', streamSid: 'MZ', tracks: ['inbound'], customParameters: {}, conferenceSid: null, startedAtMs: 0 };
  const sinks = Array.from({ length: STREAMS }, () => new LevelSink(info, bus, {}, 250));
  const frame = newFrame();
  let t = 0;
  let s = 0;
  return {
    name: `level: LevelSink.accept, ${STREAMS} streams`,
    run(n) {
      for (let i = 0; i < n; i++) {
        frame.timestampMs = t * 20;
        frame.energy = ((s * 7919 + t * 31) % 1000) * 1e6;
        sinks[s]!.accept(frame);
        if (++s === STREAMS) {
          s = 0;
          t++;
        }
      }
      return t;
    },
  };
}

function copyCases(): TimedCase[] {
  const ring = new Int16Array(new SharedArrayBuffer(16_000 * 2));
  const src = newFrame().pcm;
  return [
    {
      name: 'ring copy alone: TypedArray.set of 160 samples (mono)',
      run(n) {
        for (let i = 0; i < n; i++) ring.set(src, (i % 99) * FRAME);
        return ring[7]!;
      },
    },
    {
      name: 'ring copy alone: JS loop of 160 samples (what mono did before; the interleaved path strides it)',
      run(n) {
        for (let i = 0; i < n; i++) {
          let o = (i % 99) * FRAME;
          for (let k = 0; k < FRAME; k++, o++) ring[o] = src[k]!;
        }
        return ring[7]!;
      },
    },
  ];
}

export function runFrameSinksBench(opts: { quick: boolean }): CaseResult[] {
  STREAMS = opts.quick ? 50 : 750;
  const timing = opts.quick ? { rounds: 3, roundMs: 5, warmupMs: 30 } : { rounds: 15, roundMs: 60, warmupMs: 400 };
  return timeCases([recordingCase(1), recordingCase(2), levelCase(), ...copyCases()], timing);
}

export function frameSinksMarkdown(r: CaseResult[]): string {
  return mdTable(
    ['per frame', 'ns/frame', '±'],
    r.map((c) => [c.name, fmt(c.ns.mean, 0), `${fmt(c.ns.tolerancePct, 1)} %`]),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(frameSinksMarkdown(runFrameSinksBench({ quick: process.argv.includes('--quick') })) + '\n');
}
