/**
 * The child side of every server under test (streamgate, discard, naive): the same IPC protocol,
 * the same measurements, so the three are compared like for like.
 *
 *   parent ── window-start ──► child   resets lag, event-loop delay, CPU and frame counters
 *   parent ── window-end ────► child   replies 'window': CPU µs, frames, RSS, lag, loop delay
 *   parent ── totals ────────► child   replies 'totals': frames over the whole run (+ extras)
 *   parent ── shutdown ──────► child   closes the server and exits (flushes --cpu-prof)
 *
 * CPU comes from process.cpuUsage() (getrusage: every thread of the process, user + system),
 * so libuv's thread pool and V8's GC helpers are counted. The child also exits when the parent
 * goes away and after a hard time limit, so a crashed bench leaves nothing running.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { monoNowMs } from './clock.js';
import { LagRecorder, type LagSnapshot } from './lag.js';
import { threadCpuMs, threadCpuSplit } from './thread-cpu.js';

export interface BenchServer {
  port: number;
  /** Media frames received and handed to the sink, since start. */
  frames(): number;
  close(): Promise<void>;
  /** Extra figures for the report (sink stats, gateway metrics). */
  extra?(): Record<string, number> | Promise<Record<string, number>>;
}

export interface WindowReport {
  type: 'window';
  wallMs: number;
  /** Window bounds on CLOCK_MONOTONIC, ms (V8 profiles use the same clock, in µs). */
  startMonoMs: number;
  endMonoMs: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  /** CPU over the window of the event loop's thread and of every other thread (bench/lib/thread-cpu.ts), ms. */
  mainCpuMs: number;
  otherCpuMs: number;
  frames: number;
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  lag: LagSnapshot;
  loopDelay: { p50Ms: number; p99Ms: number; maxMs: number };
}

export interface TotalsReport {
  type: 'totals';
  frames: number;
  extra: Record<string, number>;
}

export interface ReadyReport {
  type: 'ready';
  port: number;
  pid: number;
  rssBytes: number;
  heapUsedBytes: number;
  info: Record<string, string | number | boolean>;
}

/** Event-loop delay since the previous mark (1 ms resolution), for the burst bench's phases. */
export interface LoopMarkReport {
  type: 'loop';
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export type ParentMessage = { type: 'window-start' } | { type: 'window-end' } | { type: 'loop-mark' } | { type: 'totals' } | { type: 'shutdown' };

const LOOP_RESOLUTION_MS = 10;
const delayMs = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);

/** Hard limit on a server child's life, whatever the parent does. */
const MAX_LIFE_MS = 15 * 60_000;

export function runServerChild(start: (lag: LagRecorder) => Promise<{ server: BenchServer; info?: Record<string, string | number | boolean> }>): void {
  const send = (m: object) => process.send?.(m);
  const lag = new LagRecorder();
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  // A finer monitor for short phases (a burst of opens or closes lasts about a second).
  const fine = monitorEventLoopDelay({ resolution: 1 });
  fine.enable();
  const fineMs = (ns: number) => Math.max(0, ns / 1e6 - 1);
  setTimeout(() => process.exit(3), MAX_LIFE_MS).unref();
  process.on('disconnect', () => process.exit(0));

  void (async () => {
    const { server, info } = await start(lag);
    let cpu0 = process.cpuUsage();
    let threads0 = threadCpuMs(process.pid);
    let t0 = performance.now();
    let mono0 = monoNowMs();
    let f0 = server.frames();
    // Let start-up garbage settle before the idle baseline is read.
    await new Promise((r) => setTimeout(r, 300));
    const mem = process.memoryUsage();
    send({ type: 'ready', port: server.port, pid: process.pid, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, info: info ?? {} } satisfies ReadyReport);

    process.on('message', (m: ParentMessage) => {
      switch (m.type) {
        case 'window-start':
          lag.reset();
          loop.reset();
          cpu0 = process.cpuUsage();
          threads0 = threadCpuMs(process.pid);
          t0 = performance.now();
          mono0 = monoNowMs();
          f0 = server.frames();
          return;
        case 'window-end': {
          const cpu = process.cpuUsage(cpu0);
          const split = threadCpuSplit(process.pid, threads0, threadCpuMs(process.pid));
          const mu = process.memoryUsage();
          send({
            type: 'window',
            wallMs: performance.now() - t0,
            startMonoMs: mono0,
            endMonoMs: monoNowMs(),
            cpuUserUs: cpu.user,
            cpuSystemUs: cpu.system,
            mainCpuMs: split.mainMs,
            otherCpuMs: split.otherMs,
            frames: server.frames() - f0,
            rssBytes: mu.rss,
            heapUsedBytes: mu.heapUsed,
            externalBytes: mu.external,
            arrayBuffersBytes: mu.arrayBuffers,
            lag: lag.snapshot(),
            // The histogram holds whole intervals between the monitor's timer runs; the delay is
            // what exceeds the resolution.
            loopDelay: { p50Ms: delayMs(loop.percentile(50)), p99Ms: delayMs(loop.percentile(99)), maxMs: delayMs(loop.max) },
          } satisfies WindowReport);
          return;
        }
        case 'loop-mark':
          send({ type: 'loop', p50Ms: fineMs(fine.percentile(50)), p99Ms: fineMs(fine.percentile(99)), maxMs: fineMs(fine.max) } satisfies LoopMarkReport);
          fine.reset();
          return;
        case 'totals':
          void Promise.resolve(server.extra?.() ?? {}).then((extra) => send({ type: 'totals', frames: server.frames(), extra } satisfies TotalsReport));
          return;
        case 'shutdown':
          void server.close().finally(() => process.exit(0));
          setTimeout(() => process.exit(0), 5000).unref();
          return;
      }
    });
  })().catch((err: unknown) => {
    process.stderr.write(`bench server failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  });
}
