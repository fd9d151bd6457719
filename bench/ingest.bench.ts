/**
 * Ingest bench: streamgate, a raw-TCP floor (no WebSocket library), a ws discard server and a
 * naive server under the same
 * Twilio-shaped load, stepping the number of concurrent streams up until a server misses
 * p99 ingest lag < 10 ms with 0 frames lost.
 *
 *   core 0: server under test (child process, taskset -c 0)
 *   core 1: load generator     (child process, taskset -c 1), N raw WebSocket streams
 *   this process: orchestration only (IPC, one /metrics scrape per level)
 *
 * Per level: start the server, connect N streams, warm up, measure a window (CPU from
 * getrusage in the server, frames counted by the server's sink, lag and event-loop delay in
 * the server), stop the streams, wait for the server to have every frame, compare with the
 * generator's count. Then stop the server and check what it wrote.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GeneratorConfig, GeneratorEvent, GeneratorReport } from './load-generator.js';
import { summarizeCpuProfile, type ProfileSummary } from './lib/cpuprofile.js';
import { coreShares, readCores, runQueueWaitNs, waitForQuiet, type CoreTimes } from './lib/host-load.js';
import type { LagSnapshot } from './lib/lag.js';
import { canPin, spawnPinned, type PinnedChild } from './lib/procs.js';
import type { ReadyReport, TotalsReport, WindowReport } from './lib/server-harness.js';
import { fmt, fmtInt, mdTable } from './lib/stats.js';
import { GATEWAY_NODE_FLAGS } from '../src/gateway/node-flags.js';

/**
 * `streamgate-norec`: the same gateway without its recording sink, to price recording;
 * `streamgate-flush1s`: the recording sink flushing every 1000 ms instead of its default 200.
 */
export type ServerKind = 'streamgate' | 'streamgate-norec' | 'streamgate-flush1s' | 'tcp-floor' | 'discard' | 'naive';
export type Variant = 'inbound' | 'both_tracks';

export const SERVER_SCRIPT: Record<ServerKind, string> = {
  streamgate: 'gateway-server',
  'streamgate-norec': 'gateway-server',
  'streamgate-flush1s': 'gateway-server',
  'tcp-floor': 'peers/tcp-floor-server',
  discard: 'peers/discard-server',
  naive: 'peers/naive-server',
};

/** What-if variants of the gateway (same entry, different environment). */
export const SERVER_ENV: Record<ServerKind, Record<string, string>> = {
  streamgate: {},
  'streamgate-norec': { BENCH_NO_RECORDING: '1' },
  'streamgate-flush1s': { BENCH_RECORDING_FLUSH_MS: '1000' },
  'tcp-floor': {},
  discard: {},
  naive: {},
};

// Built (dist/bench/*.js) the children are plain node; run from source (vitest, tsx) they are
// started through tsx too.
const fromSource = import.meta.url.endsWith('.ts');
export const childScript = (name: string) => join(fileURLToPath(new URL('.', import.meta.url)), fromSource ? `${name}.ts` : `${name}.js`);
export const childArgs = fromSource ? ['--import', 'tsx'] : [];

/** The generator's node flags; BENCH_GENERATOR_PROF_DIR=<dir> profiles it (`--cpu-prof`) to see what a send costs. */
export const generatorArgs = (): string[] => {
  const dir = process.env.BENCH_GENERATOR_PROF_DIR;
  return dir ? [...childArgs, '--cpu-prof', `--cpu-prof-dir=${dir}`] : childArgs;
};

/**
 * A server child's node flags: the gateway runs with its own (GATEWAY_NODE_FLAGS, as `npm start`
 * gives it), peers with none; then BENCH_GATEWAY_NODE_ARGS='--trace-gc' (space-separated), for
 * every server, to see its collections in the level's log (a flag given there again wins).
 */
export const gatewayArgs = (server: ServerKind): string[] => [
  ...(SERVER_SCRIPT[server] === 'gateway-server' ? GATEWAY_NODE_FLAGS : []),
  ...(process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
];

/** Pass criteria (the brief's): p99 ingest lag under this, and no frame lost. */
export const P99_LIMIT_MS = 10;
/** A generator later than this at p99 cannot offer the load; the level is not the server's fault. */
const GENERATOR_SLIP_LIMIT_MS = 10;

export interface IngestOptions {
  servers: ServerKind[];
  variants: Variant[];
  /** Stream counts to step through, ascending; stepping stops at the first failure. */
  levels: number[];
  /** Per-variant levels (overrides `levels`). */
  levelsByVariant?: Partial<Record<Variant, number[]>>;
  /** Per-variant servers (overrides `servers`). */
  serversByVariant?: Partial<Record<Variant, ServerKind[]>>;
  /** Runs of a level that failed under other load (default 3). */
  maxAttempts?: number;
  warmupMs: number;
  measureMs: number;
  /**
   * Also run one profiled streamgate level (`node --cpu-prof`), not counted in the tables.
   * streams 0: the first level streamgate failed in that variant (else its highest, at least 500).
   */
  profile?: { streams: number; variant: Variant; measureMs: number } | null;
  /** Where logs and profiles go (kept); recordings go to a temp dir (removed). */
  outDir: string;
  /** Before each level, wait up to this long for the host to be idle (0: don't wait). */
  quietWaitMs?: number;
  log?: (line: string) => void;
}

/** Other work on the cores during the window (see bench/lib/host-load.ts). */
export interface HostLoad {
  /** Busy share of core 0 not used by the server process (other tasks), %. */
  otherCore0Pct: number;
  otherCore1Pct: number;
  /** softirq share (the loopback TCP path), %. */
  softirqCore0Pct: number;
  softirqCore1Pct: number;
  /** Time the server's main thread was runnable but not running, % of the window. */
  serverRunQueueWaitPct: number;
}

/** A failed level is run again when other tasks held a core this much (% of the window). */
const CONTENDED_PCT = 8;
const MAX_ATTEMPTS = 3;

/**
 * Other tasks held a core. The server's run-queue wait is not used: a server's own threads
 * (libuv's pool doing its file writes) queue behind its main thread on the same core too.
 */
export function contended(h: HostLoad): boolean {
  return h.otherCore0Pct > CONTENDED_PCT || h.otherCore1Pct > CONTENDED_PCT;
}

export interface LevelResult {
  server: ServerKind;
  variant: Variant;
  streams: number;
  connected: number;
  rejected: Record<string, number>;
  connectMs: number;
  framesPerSec: number;
  cpuUsPerMsg: number;
  /** The same split by thread: the event loop's, and every other (recording I/O, pool, V8 helpers). */
  mainUsPerMsg: number;
  otherUsPerMsg: number;
  cpuUtilPct: number;
  rssBaselineMiB: number;
  rssMiB: number;
  rssPerStreamKiB: number;
  heapPerStreamKiB: number;
  arrayBuffersPerStreamKiB: number;
  lag: LagSnapshot;
  loopDelay: WindowReport['loopDelay'];
  sent: number;
  received: number;
  lost: number;
  generator: GeneratorReport;
  generatorCpuPct: number;
  generatorLimited: boolean;
  host: HostLoad;
  /** 1, or 2..3 when earlier attempts failed while other work held the cores. */
  attempt: number;
  /** streamgate only: /metrics streamgate_media_frames_total (both tracks) and checks. */
  metricsFrames: number | null;
  metricsLost: number | null;
  recordingDropped: number | null;
  /** The measured window on CLOCK_MONOTONIC (to cut a --cpu-prof profile to it). */
  window: { fromMs: number; toMs: number };
  /** Manifests found after shutdown and the frames they say they received. */
  manifests: { count: number; framesReceived: number; framesDropped: number } | null;
  info: ReadyReport['info'];
  pass: boolean;
  failures: string[];
}

export interface IngestResult {
  options: IngestOptions;
  pinned: boolean;
  levels: LevelResult[];
  profile: { streams: number; variant: Variant; path: string; summary: ProfileSummary; level: LevelResult } | null;
  /** Alternated rounds at one level per variant ({@link runAlternated}); absent in runs saved before them. */
  alternated?: AlternatedRounds[];
}

/** Servers run at one level again and again, in turn: each round holds one run of each. */
export interface AlternatedRounds {
  variant: Variant;
  streams: number;
  servers: ServerKind[];
  /** Round by round; each round's runs in the order they ran. */
  rounds: LevelResult[][];
}


function metricSum(text: string, name: string, labelFilter = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name || (labelFilter !== '' && !(m[2] ?? '').includes(labelFilter))) continue;
    sum += Number(m[3]);
  }
  return sum;
}

function readManifests(dir: string): { count: number; framesReceived: number; framesDropped: number } {
  const out = { count: 0, framesReceived: 0, framesDropped: 0 };
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.json') && !name.endsWith('.partial.json')) {
        try {
          const m = JSON.parse(readFileSync(p, 'utf8')) as { framesReceived?: number | null; framesDropped?: number | null };
          out.count++;
          out.framesReceived += m.framesReceived ?? 0;
          out.framesDropped += m.framesDropped ?? 0;
        } catch {
          // a manifest being written as we read; not counted
        }
      }
    }
  };
  walk(join(dir, 'recordings'));
  return out;
}

async function runLevel(server: ServerKind, variant: Variant, streams: number, opts: IngestOptions, profileDir: string | null): Promise<LevelResult> {
  if ((opts.quietWaitMs ?? 0) > 0) {
    let waited = false;
    await waitForQuiet(opts.quietWaitMs!, 12, (busy) => {
      if (!waited) opts.log?.(`ingest: host ${fmt(busy, 0)} % busy with other work; waiting for it to settle`);
      waited = true;
    });
  }
  const dataDir = mkdtempSync(join(tmpdir(), `streamgate-bench-${server}-`));
  const logFile = join(opts.outDir, `${server}-${variant}-${streams}${profileDir ? '-profile' : ''}.log`);
  let srv: PinnedChild | null = null;
  let gen: PinnedChild | null = null;
  try {
    srv = spawnPinned(childScript(SERVER_SCRIPT[server]), 0, {
      env: { BENCH_DATA_DIR: dataDir, ...SERVER_ENV[server] },
      nodeArgs: [...childArgs, ...gatewayArgs(server), ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])],
      logFile,
    });
    const ready = await srv.next<ReadyReport>('ready', 30_000);
    gen = spawnPinned(childScript('load-generator'), 1, { nodeArgs: generatorArgs(), logFile });
    let cores0: CoreTimes[] = [];
    let cores1: CoreTimes[] = [];
    let wait0 = NaN;
    let wait1 = NaN;
    const windowP = new Promise<WindowReport>((resolve, reject) => {
      gen!.onMessage((m) => {
        const e = m as GeneratorEvent;
        if (e.type === 'measure-start') {
          srv!.send({ type: 'window-start' });
          cores0 = readCores();
          wait0 = runQueueWaitNs(ready.pid);
        } else if (e.type === 'measure-end') {
          cores1 = readCores();
          wait1 = runQueueWaitNs(ready.pid);
          srv!.request<WindowReport>({ type: 'window-end' }, 'window', 30_000).then(resolve, reject);
        }
      });
    });
    const cfg: GeneratorConfig = { port: ready.port, streams, bothTracks: variant === 'both_tracks', warmupMs: opts.warmupMs, measureMs: opts.measureMs };
    const connectedP = gen.next<Extract<GeneratorEvent, { type: 'connected' }>>('connected', 120_000);
    const doneP = gen.next<Extract<GeneratorEvent, { type: 'done' }>>('done', 120_000 + opts.warmupMs + opts.measureMs);
    gen.send(cfg);
    const connected = await connectedP;
    const win = await windowP;
    const done = (await doneP).report;

    // Wait until the server has handed every frame to its sink (or give up after 5 s).
    let totals = await srv.request<TotalsReport>({ type: 'totals' }, 'totals', 10_000);
    for (let i = 0; i < 50 && totals.frames < done.sent; i++) {
      await new Promise((r) => setTimeout(r, 100));
      totals = await srv.request<TotalsReport>({ type: 'totals' }, 'totals', 10_000);
    }
    let metricsFrames: number | null = null;
    let metricsLost: number | null = null;
    let recordingDropped: number | null = null;
    if (server.startsWith('streamgate')) {
      try {
        const text = await (await fetch(`http://127.0.0.1:${ready.port}/metrics`)).text();
        metricsFrames = metricSum(text, 'streamgate_media_frames_total');
        metricsLost = metricSum(text, 'streamgate_media_frames_lost_total');
        recordingDropped = metricSum(text, 'streamgate_sink_dropped_frames_total', 'sink="recording"');
      } catch {
        // reported as missing
      }
    }
    // Shut down: streamgate finalises every recording (fsync, rename, manifest) before it exits.
    srv.send({ type: 'shutdown' });
    await srv.stop(profileDir ? 60_000 : 30_000);
    const manifests = server.startsWith('streamgate') && ready.info.sinks !== undefined && String(ready.info.sinks).includes('recording') ? readManifests(dataDir) : null;
    await gen.stop(2000);

    const frames = win.frames;
    const cpuUs = win.cpuUserUs + win.cpuSystemUs;
    const lost = done.sent - totals.frames;
    const generatorLimited = done.slip.p99Ms > GENERATOR_SLIP_LIMIT_MS;
    const shares = coreShares(cores0, cores1);
    const serverCpuPct = (cpuUs / (win.wallMs * 1000)) * 100;
    const genCpuPct = (done.cpuUs / (done.windowMs * 1000)) * 100;
    const host: HostLoad = {
      otherCore0Pct: shares[0] ? Math.max(0, shares[0].busyPct - serverCpuPct) : NaN,
      otherCore1Pct: shares[1] ? Math.max(0, shares[1].busyPct - genCpuPct) : NaN,
      softirqCore0Pct: shares[0]?.softirqPct ?? NaN,
      softirqCore1Pct: shares[1]?.softirqPct ?? NaN,
      serverRunQueueWaitPct: ((wait1 - wait0) / 1e6 / win.wallMs) * 100,
    };
    const failures: string[] = [];
    if (connected.failed > 0) failures.push(`${connected.failed} streams not connected (${JSON.stringify(connected.rejected)})`);
    if (lost !== 0) failures.push(`${lost} frames lost`);
    if (!(win.lag.p99Ms < P99_LIMIT_MS)) failures.push(`p99 lag ${fmt(win.lag.p99Ms, 2)} ms`);
    if (done.closedEarly > 0) failures.push(`${done.closedEarly} streams closed by the server`);
    if (generatorLimited) failures.push(`generator behind schedule (slip p99 ${fmt(done.slip.p99Ms, 2)} ms)`);
    if (manifests !== null && manifests.count !== connected.ok) failures.push(`${manifests.count}/${connected.ok} manifests`);
    if (recordingDropped !== null && recordingDropped > 0) failures.push(`recording dropped ${recordingDropped}`);
    const perStream = (bytes: number) => bytes / streams / 1024;
    return {
      server,
      variant,
      streams,
      connected: connected.ok,
      rejected: connected.rejected,
      connectMs: connected.ms,
      framesPerSec: frames / (win.wallMs / 1000),
      cpuUsPerMsg: frames > 0 ? cpuUs / frames : NaN,
      mainUsPerMsg: frames > 0 ? (win.mainCpuMs * 1000) / frames : NaN,
      otherUsPerMsg: frames > 0 ? (win.otherCpuMs * 1000) / frames : NaN,
      cpuUtilPct: serverCpuPct,
      rssBaselineMiB: ready.rssBytes / 2 ** 20,
      rssMiB: win.rssBytes / 2 ** 20,
      rssPerStreamKiB: perStream(win.rssBytes - ready.rssBytes),
      heapPerStreamKiB: perStream(win.heapUsedBytes - ready.heapUsedBytes),
      arrayBuffersPerStreamKiB: perStream(win.arrayBuffersBytes),
      lag: win.lag,
      loopDelay: win.loopDelay,
      sent: done.sent,
      received: totals.frames,
      lost,
      generator: done,
      generatorCpuPct: genCpuPct,
      generatorLimited,
      host,
      attempt: 1,
      metricsFrames,
      metricsLost,
      recordingDropped,
      manifests,
      info: ready.info,
      window: { fromMs: win.startMonoMs, toMs: win.endMonoMs },
      pass: failures.length === 0,
      failures,
    };
  } finally {
    await srv?.stop(0);
    await gen?.stop(0);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function runIngest(opts: IngestOptions): Promise<IngestResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const levels: LevelResult[] = [];
  for (const variant of opts.variants) {
    for (const server of opts.serversByVariant?.[variant] ?? opts.servers) {
      for (const n of opts.levelsByVariant?.[variant] ?? opts.levels) {
        let r = await runLevel(server, variant, n, opts, null);
        // A failure while neighbours held the cores says nothing about the server: try again.
        for (let attempt = 2; !r.pass && contended(r.host) && attempt <= (opts.maxAttempts ?? MAX_ATTEMPTS); attempt++) {
          log(`ingest ${server} ${variant} N=${n}: failed under other load (core0 ${fmt(r.host.otherCore0Pct, 0)} %, core1 ${fmt(r.host.otherCore1Pct, 0)} %, run-queue wait ${fmt(r.host.serverRunQueueWaitPct, 0)} %); retrying`);
          await new Promise((res) => setTimeout(res, 3000));
          r = { ...(await runLevel(server, variant, n, opts, null)), attempt };
        }
        levels.push(r);
        log(
          `ingest ${server.padEnd(10)} ${variant.padEnd(11)} N=${String(n).padStart(5)}  ${fmt(r.cpuUsPerMsg, 2)} µs/msg (main ${fmt(r.mainUsPerMsg, 2)}, other ${fmt(r.otherUsPerMsg, 2)})  cpu ${fmt(r.cpuUtilPct, 0)}%  ` +
            `lag p50/p99/max ${fmt(r.lag.p50Ms, 2)}/${fmt(r.lag.p99Ms, 2)}/${fmt(r.lag.maxMs, 1)} ms  lost ${r.lost}  rss/stream ${fmt(r.rssPerStreamKiB, 0)} KiB  ` +
            `gen slip p99 ${fmt(r.generator.slip.p99Ms, 2)} ms cpu ${fmt(r.generatorCpuPct, 0)}%  other ${fmt(r.host.otherCore0Pct, 0)}/${fmt(r.host.otherCore1Pct, 0)}% rqwait ${fmt(r.host.serverRunQueueWaitPct, 0)}%  ${r.pass ? 'PASS' : 'FAIL: ' + r.failures.join('; ')}`,
        );
        if (!r.pass) break;
      }
    }
  }
  let profile: IngestResult['profile'] = null;
  if (opts.profile) {
    const dir = join(opts.outDir, 'profile');
    rmSync(dir, { recursive: true, force: true });
    let streams = opts.profile.streams;
    // Default: where streamgate first failed (or its highest level): a busy process, many samples.
    if (streams <= 0) {
      const h = highestN(levels, 'streamgate', opts.profile.variant);
      streams = h.failedAt?.streams ?? Math.max(500, h.n);
    }
    const level = await runLevel('streamgate', opts.profile.variant, streams, { ...opts, measureMs: opts.profile.measureMs }, dir);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (file !== undefined) {
      const path = join(dir, file);
      const summary = summarizeCpuProfile(
        path,
        // The receive path: the media socket's frame reader (frame-reader.ts), and ws's only for
        // streams it handed over (a ping, a fragment: none in the bench's traffic).
        ['#read@frame-reader', 'onTextBytes@stream-session', 'socketOnData@ws/', 'onMessage@media-socket', 'readMediaFast', 'onText@stream-session', '#onMediaDecoded', 'accept@fan-out', 'accept@recording-sink', 'accept@level-sink', 'accept@lag-sink', 'flushTick', 'writeBuffer', '(garbage collector)'],
        25,
        level.window,
      );
      profile = { streams, variant: opts.profile.variant, path, summary, level };
      log(`profile written to ${path}`);
    } else log('profile: no .cpuprofile was written');
  }
  return { options: opts, pinned: canPin(), levels, profile };
}

/**
 * Runs `servers` at one level `rounds` times in turn, the order rotated each round (A B C, B C A,
 * C A B): a ratio within a round compares runs a minute apart, not the stepping passes' runs
 * several minutes apart, and this host's per-core speed drifts ±30 % in minutes
 * (bench/RESULTS.md). What the targets are checked against is the median of the rounds' ratios.
 */
export async function runAlternated(opts: IngestOptions, variant: Variant, streams: number, servers: ServerKind[], rounds: number): Promise<AlternatedRounds> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const out: AlternatedRounds = { variant, streams, servers, rounds: [] };
  for (let i = 0; i < rounds; i++) {
    const round: LevelResult[] = [];
    for (let k = 0; k < servers.length; k++) {
      const server = servers[(i + k) % servers.length]!;
      const r = await runLevel(server, variant, streams, opts, null);
      round.push(r);
      log(`alternated ${i + 1}/${rounds} ${server.padEnd(10)} ${variant.padEnd(11)} N=${String(streams).padStart(5)}  ${fmt(r.cpuUsPerMsg, 2)} µs/msg  other ${fmt(r.host.otherCore0Pct, 0)}/${fmt(r.host.otherCore1Pct, 0)}%`);
    }
    out.rounds.push(round);
  }
  return out;
}

/** Per round, `a`'s CPU per message over `b`'s (rounds missing either are left out). */
export function roundRatios(alt: AlternatedRounds, a: ServerKind, b: ServerKind): number[] {
  const ratios: number[] = [];
  for (const round of alt.rounds) {
    const x = round.find((r) => r.server === a);
    const y = round.find((r) => r.server === b);
    if (x !== undefined && y !== undefined && y.cpuUsPerMsg > 0) ratios.push(x.cpuUsPerMsg / y.cpuUsPerMsg);
  }
  return ratios;
}

/** Highest passing N per (server, variant), and whether stepping stopped on a failure. */
export function highestN(levels: readonly LevelResult[], server: ServerKind, variant: Variant): { n: number; failedAt: LevelResult | null; lastRow: LevelResult | null } {
  let n = 0;
  let failedAt: LevelResult | null = null;
  let lastRow: LevelResult | null = null;
  for (const r of levels) {
    if (r.server !== server || r.variant !== variant) continue;
    if (r.pass) {
      n = Math.max(n, r.streams);
      lastRow = r;
    } else failedAt ??= r;
  }
  return { n, failedAt, lastRow };
}

export function ingestMarkdown(res: IngestResult): string {
  const out: string[] = [];
  const rows = res.levels.map((r) => [
    r.server,
    r.variant,
    fmtInt(r.streams),
    fmtInt(r.framesPerSec),
    fmt(r.cpuUsPerMsg, 2),
    `${fmt(r.cpuUtilPct, 0)} %`,
    fmt(r.rssPerStreamKiB, 0),
    `${fmt(r.lag.p50Ms, 2)} / ${fmt(r.lag.p99Ms, 2)} / ${fmt(r.lag.maxMs, 1)}`,
    `${fmt(r.loopDelay.p50Ms, 1)} / ${fmt(r.loopDelay.p99Ms, 1)} / ${fmt(r.loopDelay.maxMs, 1)}`,
    `${fmtInt(r.sent)} / ${fmtInt(r.received)}`,
    String(r.lost),
    `${fmt(r.generator.slip.p99Ms, 2)} ms, ${fmt(r.generatorCpuPct, 0)} %`,
    r.pass ? 'pass' : `**fail**: ${r.failures.join('; ')}`,
  ]);
  out.push(
    mdTable(
      ['server', 'tracks', 'streams', 'frames/s', 'CPU µs/msg', 'server CPU', 'RSS/stream KiB', 'lag p50 / p99 / max ms', 'loop delay p50 / p99 / max ms', 'sent / received', 'lost', 'generator slip p99, CPU', 'result'],
      rows,
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  const checks = res.levels.filter((r) => r.server.startsWith('streamgate'));
  if (checks.length > 0) {
    out.push('');
    out.push('streamgate cross-checks (frames the generator sent vs what the gateway says it got):');
    out.push('');
    out.push(
      mdTable(
        ['server', 'tracks', 'streams', 'sent', 'bench sink', '/metrics media_frames_total', '/metrics frames_lost_total', 'recording dropped', 'manifests: files, framesReceived, framesDropped', 'heap/stream KiB', 'ArrayBuffers/stream KiB'],
        checks.map((r) => [
          r.server,
          r.variant,
          fmtInt(r.streams),
          fmtInt(r.sent),
          fmtInt(r.received),
          r.metricsFrames === null ? '–' : fmtInt(r.metricsFrames),
          r.metricsLost === null ? '–' : fmtInt(r.metricsLost),
          r.recordingDropped === null ? '–' : fmtInt(r.recordingDropped),
          r.manifests === null ? 'no recording sink' : `${fmtInt(r.manifests.count)}, ${fmtInt(r.manifests.framesReceived)}, ${fmtInt(r.manifests.framesDropped)}`,
          fmt(r.heapPerStreamKiB, 1),
          fmt(r.arrayBuffersPerStreamKiB, 1),
        ]),
      ),
    );
  }
  return out.join('\n');
}
