/**
 * The recording sink's steady-state cost at high N, in one process, without sockets: N streams
 * fed one 20 ms frame per track per stream on a 20 ms timer (real time, so the factory's flush
 * ticker, the I/O thread and its replies run as in the gateway), against the same feeder with a
 * sink that only counts. What it reports per case:
 *
 * - main-thread CPU per frame (from /proc/self/task/<pid>/schedstat: CPU time actually run, so a
 *   busy neighbour does not inflate it the way wall-clock time would), and the rest of the
 *   process (the recording I/O thread, V8's helper threads, libuv's pool) per frame;
 * - event-loop delay p99 and max while streaming (wall clock: only meaningful on a quiet host);
 * - frames the recording dropped (must be 0) and manifests written at the end.
 *
 *   node dist/bench/recording-steady.bench.js [--streams 1000] [--seconds 8] [--channels 1|2|both] [--rounds 2]
 *
 * Cases run in rotating order per round (ratios within one run, bench/lib/timing.ts's idea).
 * Run it under `flock /tmp/sg-bench.lock` like every perf bench.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import type { StreamInfo, Track } from '../src/core/stream.js';
import { createRecordingSinkFactory } from '../src/sinks/recording/index.js';
import type { MediaFrame, Sink, SinkContext } from '../src/sinks/sink.js';
import { fmt, mdTable } from './lib/stats.js';

const FRAME = 160;

export interface SteadyCase {
  recording: boolean;
  channels: 1 | 2;
}

export interface SteadyResult extends SteadyCase {
  streams: number;
  frames: number;
  seconds: number;
  mainUsPerFrame: number;
  otherUsPerFrame: number;
  loopP99Ms: number;
  loopMaxMs: number;
  dropped: number;
  manifests: number;
}

/** CPU time run (ns) of this process's threads: the main thread, and all of them. */
function threadCpuNs(): { main: number; all: number } {
  const read = (tid: string) => Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  let all = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      all += read(tid);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return { main: read(String(process.pid)), all };
}

function sid(prefix: string, n: number): string {
  return prefix + n.toString(16).padStart(32, '0');
}

function countManifests(dir: string): number {
  let n = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.json') && !name.endsWith('.partial.json')) n++;
    }
  };
  walk(join(dir, 'recordings'));
  return n;
}

async function runCase(c: SteadyCase, streams: number, seconds: number, warmupS: number): Promise<SteadyResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'streamgate-rec-steady-'));
  const log = pino({ level: 'silent' });
  const stats = { dropped: 0, errors: 0, queued: 0 };
  const ctx: SinkContext = { log, stats } as SinkContext;
  // BENCH_RECORDING_FLUSH_MS: a what-if flush interval (as bench/gateway-server.ts takes it).
  const flushMs = Number(process.env.BENCH_RECORDING_FLUSH_MS ?? 0);
  const factory = c.recording ? createRecordingSinkFactory({ dataDir, ...(flushMs > 0 ? { flushIntervalMs: flushMs } : {}) }) : null;
  let counted = 0;
  const tracks: Track[] = c.channels === 2 ? ['inbound', 'outbound'] : ['inbound'];
  const sinks: Sink[] = [];
  for (let i = 0; i < streams; i++) {
    const info: StreamInfo = { accountSid: sid('AC', 1), callSid: sid('CA', i), streamSid: sid('MZ', i), tracks, customParameters: {}, conferenceSid: null, startedAtMs: Date.now() };
    const sink: Sink | null = factory !== null ? factory.open(info, ctx) : { name: 'count', accept: () => void counted++, close: () => Promise.resolve() };
    if (sink === null) throw new Error('recording refused a stream');
    sinks.push(sink);
  }
  const pcm = new Int16Array(FRAME).map((_, i) => ((i * 977) % 20_000) - 10_000);
  const frame: MediaFrame = { track: 'inbound', trackIndex: 0, timestampMs: 0, chunk: 0, sequenceNumber: 0, samples: FRAME, pcm, mulaw: new Uint8Array(FRAME), energy: 0, receivedAt: 0, late: false };
  let t = 0;
  let frames = 0;
  const feed = () => {
    frame.timestampMs = 1000 + t * 20;
    frame.chunk = t + 1;
    for (let s = 0; s < streams; s++) {
      const sink = sinks[s]!;
      frame.track = 'inbound';
      frame.trackIndex = 0;
      sink.accept(frame);
      if (c.channels === 2) {
        frame.track = 'outbound';
        frame.trackIndex = 1;
        sink.accept(frame);
      }
    }
    frames += streams * c.channels;
    t++;
  };
  // Warm up (opens, JIT, first flushes), then measure.
  const warmup = setInterval(feed, 20);
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  const rings = () => sinks.reduce((a, s) => a + ((s as { ringFrames?: number }).ringFrames ?? 0), 0) / streams;
  const ringStart = rings();
  let ringMax = ringStart;
  const ringWatch = setInterval(() => (ringMax = Math.max(ringMax, rings())), 100);
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const mono0 = Number(process.hrtime.bigint() / 1000n) / 1000;
  const cpu0 = threadCpuNs();
  const f0 = frames;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu1 = threadCpuNs();
  const wall = (performance.now() - t0) / 1000;
  h.disable();
  clearInterval(warmup);
  clearInterval(ringWatch);
  if (process.env.BENCH_PRINT_WINDOW) process.stderr.write(`window ${mono0} ${Number(process.hrtime.bigint() / 1000n) / 1000}\n`);
  if (c.recording) process.stderr.write(`ring frames per stream: start ${ringStart}, max ${ringMax}, end ${rings()}\n`);
  const measured = frames - f0;
  const dropped = stats.dropped;
  await Promise.all(sinks.map((s) => s.close('stopped')));
  await factory?.shutdown();
  const manifests = c.recording ? countManifests(dataDir) : 0;
  rmSync(dataDir, { recursive: true, force: true });
  void counted;
  return {
    ...c,
    streams,
    frames: measured,
    seconds: wall,
    mainUsPerFrame: (cpu1.main - cpu0.main) / 1000 / measured,
    otherUsPerFrame: (cpu1.all - cpu0.all - (cpu1.main - cpu0.main)) / 1000 / measured,
    loopP99Ms: h.percentile(99) / 1e6,
    loopMaxMs: h.max / 1e6,
    dropped,
    manifests,
  };
}

export async function runRecordingSteady(opts: { streams: number; seconds: number; channels: (1 | 2)[]; rounds: number; warmupSeconds?: number; log?: (l: string) => void }): Promise<SteadyResult[]> {
  const cases: SteadyCase[] = [];
  for (const channels of opts.channels) cases.push({ recording: true, channels }, { recording: false, channels });
  const out: SteadyResult[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (let i = 0; i < cases.length; i++) {
      const res = await runCase(cases[(i + r) % cases.length]!, opts.streams, opts.seconds, opts.warmupSeconds ?? 4);
      opts.log?.(`recording-steady: ${res.recording ? 'recording' : 'count only'} ${res.channels} ch N=${res.streams}: main ${fmt(res.mainUsPerFrame, 3)} µs/frame, other threads ${fmt(res.otherUsPerFrame, 3)}, loop p99/max ${fmt(res.loopP99Ms, 1)}/${fmt(res.loopMaxMs, 1)} ms, dropped ${res.dropped}, manifests ${res.manifests}`);
      out.push(res);
    }
  }
  return out;
}

export function steadyMarkdown(results: readonly SteadyResult[]): string {
  const rows = results.map((r) => [r.recording ? 'recording' : 'count only', String(r.channels), String(r.streams), fmt(r.mainUsPerFrame, 3), fmt(r.otherUsPerFrame, 3), fmt(r.loopP99Ms, 1), fmt(r.loopMaxMs, 1), String(r.dropped), String(r.manifests)]);
  return mdTable(['sink', 'channels', 'streams', 'main thread µs/frame', 'other threads µs/frame', 'loop p99 ms', 'loop max ms', 'dropped', 'manifests'], rows);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const val = (f: string, d: string) => (argv.includes(f) ? argv[argv.indexOf(f) + 1]! : d);
  const ch = val('--channels', 'both');
  const results = await runRecordingSteady({
    streams: Number(val('--streams', '1000')),
    seconds: Number(val('--seconds', '8')),
    channels: ch === 'both' ? [1, 2] : [Number(ch) as 1 | 2],
    rounds: Number(val('--rounds', '2')),
    warmupSeconds: Number(val('--warmup', '4')),
    log: (l) => process.stderr.write(l + '\n'),
  });
  process.stdout.write(steadyMarkdown(results) + '\n');
}
