/**
 * Burst bench: N streams open within about a second, stream for a while, and stop within about
 * a second, the way a conference starting (or a process taking over another's streams) does.
 * For each server the run is cut into three phases, and each reports the server's event-loop
 * delay (1 ms monitor), the frames' ingest lag, and two HTTP probes' latency (GET /healthz every
 * 20 ms from this process, one at a time each), made the same way against every server:
 *
 *   kept-alive:     one connection, opened and used once before the burst (a scraper's), so a
 *                   probe waits only for the server's loop to read and answer it;
 *   new connection: a connection per probe (`Connection: close`, a balancer's health check), so
 *                   a probe also waits in the listen socket's accept queue. Node (libuv >= 1.45)
 *                   accepts one connection per loop iteration, so behind a burst of connects a
 *                   probe waits about (connections queued ahead) x (the server's iteration time).
 *
 *   start:  generator connects all N at once (connectConcurrency = N) … 1 s after the last start
 *   steady: the generator's measured window
 *   stop:   every stream sends `stop` and closes … the server has every frame, + 1.5 s
 *           (streamgate finalises N recordings here: header, fsync, rename, hash, manifest)
 *
 *   node dist/bench/burst.bench.js [--streams 500] [--servers streamgate,tcp-floor,discard] [--steady-ms 5000]
 *                                  [--profile]   (streamgate under `--cpu-prof`: self time per phase)
 *
 * The probe's latency against streamgate is compared with the same probe against the floor
 * servers in the same run (the brief's target: within 10 ms of the floor's, loop p99 < 10 ms).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GeneratorConfig, GeneratorEvent } from './load-generator.js';
import { SERVER_ENV, SERVER_SCRIPT, childArgs, childScript, gatewayArgs, generatorArgs, type ServerKind } from './ingest.bench.js';
import { LagRecorder, type LagSnapshot } from './lib/lag.js';
import { spawnPinned, type PinnedChild } from './lib/procs.js';
import type { LoopMarkReport, ReadyReport, TotalsReport, WindowReport } from './lib/server-harness.js';
import { fmt, fmtInt, mdTable } from './lib/stats.js';
import { summarizeCpuProfile, type ProfileSummary } from './lib/cpuprofile.js';
import { threadCpuMs, threadCpuSplit, type ThreadCpuSplit } from './lib/thread-cpu.js';

const PHASES = ['start', 'steady', 'stop'] as const;
type Phase = (typeof PHASES)[number];

export interface PhaseResult {
  loop: LoopMarkReport;
  lag: LagSnapshot;
  /** GET /healthz on one kept-alive connection (opened before the burst). */
  probe: LagSnapshot;
  /** GET /healthz on a new connection each time (through the accept queue); absent in runs saved before it. */
  probeNew?: LagSnapshot;
  cpuUsPerMsg: number;
  /** The server's CPU in the phase, event-loop thread and the others (I/O thread, libuv pool, GC helpers). */
  threads: ThreadCpuSplit;
  /** The phase on CLOCK_MONOTONIC (to cut a --cpu-prof profile to it). */
  monoMs: { from: number; to: number };
  /** With --profile: the gateway's self time in this phase. */
  profile?: ProfileSummary;
}

export interface BurstResult {
  server: ServerKind;
  streams: number;
  connectMs: number;
  connected: number;
  sent: number;
  received: number;
  /** The recording sink's counters at the end (streamgate): frames it dropped, write errors. */
  recording: { dropped: number; errors: number } | null;
  /**
   * Recordings finished (manifests written) by the end of the run, and when the last one was
   * written, in ms after the generator's stops began (file mtimes; absent in runs saved before it).
   */
  finished?: { manifests: number; lastMs: number } | null;
  phases: Record<Phase, PhaseResult>;
}

/** One GET /healthz; resolves with its latency in ms (5000 on an error or after 5 s). */
function probeOnce(port: number, agent: Agent | false): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let done = false;
    const finish = (ms: number) => {
      if (done) return;
      done = true;
      resolve(ms);
    };
    // agent false: Node's client sends `Connection: close` and the server closes after answering.
    const req = request({ host: '127.0.0.1', port, path: '/healthz', agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => finish(performance.now() - t0));
      res.on('error', () => finish(5000));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => finish(5000));
    req.end();
  });
}

/** One probe at a time, every `everyMs`, each latency recorded in the current phase's histogram. */
function startProbe(port: number, agent: Agent | false, everyMs: number, current: () => LagRecorder): () => Promise<void> {
  let running = true;
  const done = (async () => {
    while (running) {
      const rec = current();
      const t0 = performance.now();
      rec.record(await probeOnce(port, agent));
      const wait = everyMs - (performance.now() - t0);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return async () => {
    running = false;
    await done;
  };
}

async function runOne(server: ServerKind, streams: number, steadyMs: number, outDir: string, profileDir: string | null): Promise<BurstResult> {
  const dataDir = mkdtempSync(join(tmpdir(), `streamgate-burst-${server}-`));
  const logFile = join(outDir, `burst-${server}-${streams}.log`);
  let srv: PinnedChild | null = null;
  let gen: PinnedChild | null = null;
  try {
    const nodeArgs = [...childArgs, ...gatewayArgs(server), ...(profileDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`])];
    srv = spawnPinned(childScript(SERVER_SCRIPT[server]), 0, { env: { BENCH_DATA_DIR: dataDir, ...SERVER_ENV[server] }, nodeArgs, logFile });
    const ready = await srv.next<ReadyReport>('ready', 30_000);
    gen = spawnPinned(childScript('load-generator'), 1, { nodeArgs: generatorArgs(), logFile });

    const probes: Record<Phase, LagRecorder> = { start: new LagRecorder(), steady: new LagRecorder(), stop: new LagRecorder() };
    const probesNew: Record<Phase, LagRecorder> = { start: new LagRecorder(), steady: new LagRecorder(), stop: new LagRecorder() };
    let phase: Phase = 'start';
    const results: Partial<Record<Phase, PhaseResult>> = {};
    const s = srv;
    let threadsAt = threadCpuMs(ready.pid);
    /** Closes the current phase: window (CPU, lag) and the fine loop monitor, then opens the next. */
    const endPhase = async (next: Phase | null): Promise<void> => {
      const win = await s.request<WindowReport>({ type: 'window-end' }, 'window', 30_000);
      const loop = await s.request<LoopMarkReport>({ type: 'loop-mark' }, 'loop', 30_000);
      const threadsNow = threadCpuMs(ready.pid);
      const threads = threadCpuSplit(ready.pid, threadsAt, threadsNow);
      threadsAt = threadsNow;
      const ended = phase;
      if (next !== null) {
        s.send({ type: 'window-start' });
        phase = next;
      }
      results[ended] = {
        loop,
        lag: win.lag,
        probe: probes[ended].snapshot(),
        probeNew: probesNew[ended].snapshot(),
        cpuUsPerMsg: win.frames > 0 ? (win.cpuUserUs + win.cpuSystemUs) / win.frames : NaN,
        threads,
        monoMs: { from: win.startMonoMs, to: win.endMonoMs },
      };
    };

    // Both probes' first request is made (and the kept-alive connection opened) before the
    // burst, for every server alike: a first connection racing the N connects would wait in the
    // accept queue behind them, and only in the runs where the generator started first.
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    await probeOnce(ready.port, keepAlive);
    await probeOnce(ready.port, false);
    await s.request<LoopMarkReport>({ type: 'loop-mark' }, 'loop', 10_000);
    threadsAt = threadCpuMs(ready.pid);
    s.send({ type: 'window-start' });
    const stopProbe = startProbe(ready.port, keepAlive, 20, () => probes[phase]);
    const stopProbeNew = startProbe(ready.port, false, 20, () => probesNew[phase]);

    const g = gen;
    const connectedP = g.next<Extract<GeneratorEvent, { type: 'connected' }>>('connected', 120_000);
    const measureStartP = g.next('measure-start', 180_000);
    const measureEndP = g.next('measure-end', 180_000 + steadyMs);
    const doneP = g.next<Extract<GeneratorEvent, { type: 'done' }>>('done', 200_000 + steadyMs);
    const cfg: GeneratorConfig = { port: ready.port, streams, bothTracks: false, warmupMs: 1000, measureMs: steadyMs, connectConcurrency: streams };
    g.send(cfg);
    const connected = await connectedP;
    await measureStartP; // 300 ms for the starts + the 1 s warm-up after the last connect
    await endPhase('steady');
    await measureEndP;
    const stopsAt = Date.now();
    await endPhase('stop');
    const done = (await doneP).report;
    let totals = await s.request<TotalsReport>({ type: 'totals' }, 'totals', 10_000);
    for (let i = 0; i < 100 && totals.frames < done.sent; i++) {
      await new Promise((r) => setTimeout(r, 100));
      totals = await s.request<TotalsReport>({ type: 'totals' }, 'totals', 10_000);
    }
    await new Promise((r) => setTimeout(r, 1500));
    await endPhase(null);
    await stopProbe();
    await stopProbeNew();
    keepAlive.destroy();
    s.send({ type: 'shutdown' });
    await s.stop(60_000);
    await g.stop(2000);
    if (profileDir !== null) addProfile(profileDir, results as Record<Phase, PhaseResult>);
    const recording = totals.extra.recordingErrors === undefined ? null : { dropped: totals.extra.recordingDropped ?? 0, errors: totals.extra.recordingErrors };
    const finished = recording === null ? null : manifestsWritten(dataDir, stopsAt);
    return { server, streams, connectMs: connected.ms, connected: connected.ok, sent: done.sent, received: totals.frames, recording, finished, phases: results as Record<Phase, PhaseResult> };
  } finally {
    await srv?.stop(0);
    await gen?.stop(0);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The recordings' manifests under `dataDir` ({StreamSid}.json) and the last one's mtime after `sinceMs`. */
function manifestsWritten(dataDir: string, sinceMs: number): { manifests: number; lastMs: number } {
  let manifests = 0;
  let last = sinceMs;
  for (const f of readdirSync(dataDir, { recursive: true, encoding: 'utf8' })) {
    if (!f.endsWith('.json') || f.endsWith('.partial.json')) continue;
    manifests++;
    last = Math.max(last, statSync(join(dataDir, f)).mtimeMs);
  }
  return { manifests, lastMs: last - sinceMs };
}

/** Cuts the gateway's one .cpuprofile into the phases (each phase's self time, busiest first). */
function addProfile(dir: string, phases: Record<Phase, PhaseResult>): void {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) return;
  for (const p of PHASES) {
    phases[p].profile = summarizeCpuProfile(join(dir, file), [], 25, { fromMs: phases[p].monoMs.from, toMs: phases[p].monoMs.to });
  }
}

export async function runBurst(opts: { servers: ServerKind[]; streams: number; steadyMs: number; outDir: string; profile?: boolean; log?: (l: string) => void }): Promise<BurstResult[]> {
  const out: BurstResult[] = [];
  for (const server of opts.servers) {
    let profileDir: string | null = null;
    if (opts.profile === true && server.startsWith('streamgate')) {
      profileDir = join(opts.outDir, `profile-${server}`);
      rmSync(profileDir, { recursive: true, force: true });
      mkdirSync(profileDir, { recursive: true });
    }
    const r = await runOne(server, opts.streams, opts.steadyMs, opts.outDir, profileDir);
    out.push(r);
    opts.log?.(
      `burst ${server.padEnd(10)} N=${r.streams} connected ${r.connected} in ${fmtInt(r.connectMs)} ms, lost ${r.sent - r.received}${lostInRecording(r)}; ` +
        PHASES.map((p) => {
          const x = r.phases[p];
          return `${p}: loop p99/max ${fmt(x.loop.p99Ms, 1)}/${fmt(x.loop.maxMs, 1)} ms, probe p99 kept/new ${fmt(x.probe.p99Ms, 1)}/${fmt(x.probeNew?.p99Ms ?? NaN, 1)} ms, CPU main/other ${fmtInt(x.threads.mainMs)}/${fmtInt(x.threads.otherMs)} ms, faults main/other ${fmtInt(x.threads.mainFaults ?? NaN)}/${fmtInt(x.threads.otherFaults ?? NaN)}`;
        }).join('; '),
    );
  }
  return out;
}

/** What the recording sink dropped or failed to write (a frame the sink dropped is lost from the file). */
function lostInRecording(r: BurstResult): string {
  if (r.recording === null) return '';
  const f = r.finished == null ? '' : `, ${r.finished.manifests} finished, the last ${fmtInt(r.finished.lastMs)} ms after the stops began`;
  return ` (recording: ${r.recording.dropped} dropped, ${r.recording.errors} errors${f})`;
}

export function burstMarkdown(results: readonly BurstResult[]): string {
  const rows: (string | number)[][] = [];
  for (const r of results) {
    for (const p of PHASES) {
      const x = r.phases[p];
      rows.push([
        r.server,
        p,
        fmtInt(r.streams),
        `${fmt(x.loop.p99Ms, 1)} / ${fmt(x.loop.maxMs, 1)}`,
        `${fmt(x.probe.p50Ms, 1)} / ${fmt(x.probe.p99Ms, 1)} / ${fmt(x.probe.maxMs, 1)} (${x.probe.count})`,
        x.probeNew === undefined ? '–' : `${fmt(x.probeNew.p50Ms, 1)} / ${fmt(x.probeNew.p99Ms, 1)} / ${fmt(x.probeNew.maxMs, 1)} (${x.probeNew.count})`,
        `${fmt(x.lag.p99Ms, 2)} / ${fmt(x.lag.maxMs, 1)}`,
        p === 'steady' ? fmt(x.cpuUsPerMsg, 2) : '–',
        `${fmtInt(x.threads.mainMs)} / ${fmtInt(x.threads.otherMs)} (${x.threads.others.map((ms) => fmtInt(ms)).join(', ')})`,
        p === 'start' ? `${fmtInt(r.connectMs)} ms` : p === 'stop' ? `${r.sent - r.received} lost${lostInRecording(r)}` : '',
      ]);
    }
  }
  return mdTable(['server', 'phase', 'streams', 'loop delay p99 / max ms', 'probe kept-alive p50 / p99 / max ms (n)', 'probe new connection p50 / p99 / max ms (n)', 'ingest lag p99 / max ms', 'CPU µs/msg', 'CPU ms: main / other threads (busiest)', 'connect / lost'], rows);
}

/** The profiled phases' top functions by self time (ms of CPU in the phase, and share of busy time). */
export function burstProfileMarkdown(results: readonly BurstResult[], top = 15): string {
  const parts: string[] = [];
  for (const r of results) {
    for (const p of PHASES) {
      const prof = r.phases[p].profile;
      if (prof === undefined) continue;
      parts.push(
        `${r.server}, ${p} phase: ${fmt(prof.totalMs, 0)} ms, busy ${fmt(prof.busyPct, 0)} %\n\n` +
          mdTable(['function', 'where', 'self ms', 'self %'], prof.top.slice(0, top).map((x) => [`\`${x.fn}\``, `\`${x.where}\``, fmt(x.selfMs, 1), fmt(x.selfPct, 1)])),
      );
    }
  }
  return parts.join('\n\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const val = (f: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const outDir = resolve(val('--out') ?? 'bench/out/burst');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const servers = (val('--servers') ?? 'streamgate,tcp-floor,discard').split(',') as ServerKind[];
  const profile = argv.includes('--profile');
  const results = await runBurst({ servers, streams: Number(val('--streams') ?? 500), steadyMs: Number(val('--steady-ms') ?? 5000), outDir, profile, log: (l) => process.stderr.write(l + '\n') });
  process.stdout.write(`Run: \`node dist/bench/burst.bench.js ${argv.join(' ')}\`\n\n${burstMarkdown(results)}\n`);
  if (profile) process.stdout.write(`\n${burstProfileMarkdown(results)}\n`);
  process.exit(0);
}
