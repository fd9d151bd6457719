/**
 * Soak: N Twilio-shaped streams against the gateway for a long time, watching for slow leaks and
 * slow degradation rather than peak throughput (issue "[reliability]" item 6).
 *
 *   core 0: the gateway (bench/gateway-server.ts: createAppGateway, recording sink on,
 *           TRANSCRIPTION=none, LOG_LEVEL=warn, temp data dir), child process, taskset -c 0
 *   core 1: the load generator (bench/load-generator.ts), child process, taskset -c 1
 *   this process: orchestration; scrapes the gateway's /metrics every `sampleEveryMs`
 *
 * Each sample reads, from the gateway's own Prometheus text: RSS
 * (streamgate_process_resident_memory_bytes), event-loop p99 (streamgate_nodejs_eventloop_lag_p99_seconds;
 * prom-client resets its histogram on every scrape, so each sample covers the interval since the
 * previous one) and media frames received (streamgate_media_frames_total, both tracks).
 *
 * At the end the generator sends `stop` on every stream; we wait until the gateway has counted
 * every frame sent (bounded), then check:
 *   - lost = sent − received (bench sink count) must be 0, and /metrics frames_lost_total 0;
 *   - sink drops (streamgate_sink_dropped_frames_total, every sink) must be 0;
 *   - RSS over the steady window (after a warm-up, default 10 % of the run): max/min − 1 ≤ 10 %;
 *   - event-loop p99: median of the first half of the steady samples vs the second half.
 *
 *   npm run build && node dist/bench/soak.js --streams 500 --seconds 600 [--results bench/RESULTS.md]
 *
 * Run from source (vitest, tsx) the children are started through tsx too.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GeneratorConfig, GeneratorEvent } from './load-generator.js';
import { canPin, spawnPinned, type PinnedChild } from './lib/procs.js';
import type { ReadyReport, TotalsReport } from './lib/server-harness.js';
import { fmt, fmtInt, machineLine, mdTable, median } from './lib/stats.js';
import { gatewayArgs } from './ingest.bench.js';

export interface SoakOptions {
  streams: number;
  seconds: number;
  sampleEveryMs: number;
  /** Recordings go here; a temp dir (removed afterwards) when not given. */
  dataDir?: string;
  /** Share of the run before the steady window (RSS and loop figures), default 0.1. */
  warmupFraction?: number;
  /** Child process output (gateway + generator stderr); default a file in the temp dir. */
  logFile?: string;
  log?: (line: string) => void;
}

export interface SoakSample {
  /** Seconds since media started. */
  t: number;
  rssBytes: number;
  loopP99Ms: number;
  framesReceived: number;
  streamsActive: number;
}

export interface SoakResult {
  streams: number;
  /** Requested seconds, and seconds of media actually scheduled (see GENERATOR_LIFE_MS). */
  seconds: number;
  mediaSeconds: number;
  warmupSeconds: number;
  pinned: boolean;
  sinks: string;
  connected: number;
  rejected: Record<string, number>;
  sent: number;
  /** Frames the gateway handed to its sinks (the bench sink's count). */
  received: number;
  lost: number;
  metricsFrames: number;
  metricsLost: number;
  sinkDropped: number;
  closedEarly: number;
  generatorSlipP99Ms: number;
  generatorBlockedWrites: number;
  samples: SoakSample[];
  rss: { startMiB: number; minMiB: number; maxMiB: number; endMiB: number; growthPct: number };
  loop: { firstHalfMedianMs: number; secondHalfMedianMs: number; maxMs: number };
  streamsActiveAfterStop: number;
  logFile: string;
  failures: string[];
  pass: boolean;
}

/** RSS max/min over the steady window must stay within this. */
export const RSS_LIMIT_PCT = 10;
/**
 * load-generator.ts exits on its own after 10 minutes of life (its safety limit). Media time
 * is capped below that, leaving room for connecting and stopping; a 600 s request runs ~585 s.
 */
const GENERATOR_LIFE_MS = 10 * 60_000;
const GENERATOR_MARGIN_MS = 15_000;

const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');
const script = (name: string) => join(here, fromSource ? `${name}.ts` : `${name}.js`);
const nodeArgs = fromSource ? ['--import', 'tsx'] : [];

/** Sum of every sample of `name` whose label set includes `labelFilter`. NaN when absent. */
export function metricSum(text: string, name: string, labelFilter = ''): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (!m || m[1] !== name || (labelFilter !== '' && !(m[2] ?? '').includes(labelFilter))) continue;
    sum += Number(m[3]);
    found = true;
  }
  return found ? sum : NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  return res.text();
}

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'streamgate-soak-'));
  const logFile = opts.logFile ?? join(tmpdir(), `streamgate-soak-${process.pid}-${Date.now()}.log`);
  const warmupFraction = opts.warmupFraction ?? 0.1;
  const mediaMs = Math.min(opts.seconds * 1000, GENERATOR_LIFE_MS - GENERATOR_MARGIN_MS);
  if (mediaMs < opts.seconds * 1000) log(`soak: media capped at ${mediaMs / 1000} s (the load generator's own 10-minute life limit)`);
  const warmupMs = Math.round((mediaMs * warmupFraction) / 20) * 20;
  const measureMs = mediaMs - warmupMs;

  let srv: PinnedChild | null = null;
  let gen: PinnedChild | null = null;
  // Bounded: connect + media + stop + drain + shutdown.
  const deadline = setTimeout(() => {
    log('soak: overall time limit reached; killing children');
    void srv?.stop(0);
    void gen?.stop(0);
  }, mediaMs + 180_000);
  try {
    srv = spawnPinned(script('gateway-server'), 0, { env: { BENCH_DATA_DIR: dataDir }, nodeArgs: [...nodeArgs, ...gatewayArgs('streamgate')], logFile });
    const ready = await srv.next<ReadyReport>('ready', 60_000);
    gen = spawnPinned(script('load-generator'), 1, { nodeArgs, logFile });
    const port = ready.port;

    const cfg: GeneratorConfig = { port, streams: opts.streams, bothTracks: false, warmupMs, measureMs };
    const connectedP = gen.next<Extract<GeneratorEvent, { type: 'connected' }>>('connected', 120_000);
    const doneP = gen.next<Extract<GeneratorEvent, { type: 'done' }>>('done', 150_000 + mediaMs);
    doneP.catch(() => undefined);
    gen.send(cfg);
    const connected = await connectedP;
    log(`soak: ${connected.ok}/${opts.streams} streams connected in ${fmt(connected.ms, 0)} ms; ${mediaMs / 1000} s of media, warm-up ${warmupMs / 1000} s`);

    // Sample until the generator reports done.
    const samples: SoakSample[] = [];
    const t0 = performance.now();
    const state: { done: boolean; failed: unknown } = { done: false, failed: null };
    const ended = doneP.then(
      () => void (state.done = true),
      (err: unknown) => void (state.failed = err ?? new Error('load generator failed')),
    );
    let nextAt = t0 + opts.sampleEveryMs;
    while (!state.done) {
      // Wake for the sample or the end of the run, whichever is first.
      await Promise.race([sleep(Math.max(0, nextAt - performance.now())), ended]);
      if (state.failed !== null) throw state.failed;
      if (state.done) break;
      nextAt += opts.sampleEveryMs;
      try {
        const text = await scrape(port);
        const s: SoakSample = {
          t: (performance.now() - t0) / 1000,
          rssBytes: metricSum(text, 'streamgate_process_resident_memory_bytes'),
          loopP99Ms: metricSum(text, 'streamgate_nodejs_eventloop_lag_p99_seconds') * 1000,
          framesReceived: metricSum(text, 'streamgate_media_frames_total'),
          streamsActive: metricSum(text, 'streamgate_streams_active'),
        };
        samples.push(s);
        if (samples.length % Math.max(1, Math.round(60_000 / opts.sampleEveryMs)) === 0) {
          log(`soak: t=${fmt(s.t, 0)} s rss ${fmt(s.rssBytes / 2 ** 20, 1)} MiB loop p99 ${fmt(s.loopP99Ms, 1)} ms frames ${fmtInt(s.framesReceived)} active ${s.streamsActive}`);
        }
      } catch (err) {
        log(`soak: scrape failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const report = (await doneP).report;

    // Wait (bounded) for the gateway to have handed every sent frame to its sinks.
    let totals = await srv.request<TotalsReport>({ type: 'totals' }, 'totals', 10_000);
    for (let i = 0; i < 100 && totals.frames < report.sent; i++) {
      await sleep(100);
      totals = await srv.request<TotalsReport>({ type: 'totals' }, 'totals', 10_000);
    }
    // Streams close after `stop`; give the gauge a moment.
    let text = await scrape(port);
    for (let i = 0; i < 50 && metricSum(text, 'streamgate_streams_active') > 0; i++) {
      await sleep(100);
      text = await scrape(port);
    }
    const metricsFrames = metricSum(text, 'streamgate_media_frames_total');
    const metricsLost = metricSum(text, 'streamgate_media_frames_lost_total') || 0;
    const sinkDropped = metricSum(text, 'streamgate_sink_dropped_frames_total') || 0;
    const streamsActiveAfterStop = metricSum(text, 'streamgate_streams_active');

    srv.send({ type: 'shutdown' });
    await srv.stop(30_000);
    await gen.stop(2000);

    const warmupS = warmupMs / 1000;
    const steady = samples.filter((s) => s.t >= warmupS && Number.isFinite(s.rssBytes));
    const rssSteady = steady.map((s) => s.rssBytes);
    const minRss = rssSteady.length ? Math.min(...rssSteady) : NaN;
    const maxRss = rssSteady.length ? Math.max(...rssSteady) : NaN;
    const half = steady.length >> 1;
    const loops = steady.map((s) => s.loopP99Ms);
    const mib = (b: number | undefined) => (b === undefined ? NaN : b / 2 ** 20);
    const lost = report.sent - totals.frames;
    const growthPct = (maxRss / minRss - 1) * 100;

    const failures: string[] = [];
    if (connected.failed > 0) failures.push(`${connected.failed} streams not connected (${JSON.stringify(connected.rejected)})`);
    if (lost !== 0) failures.push(`${lost} frames lost (sent ${report.sent}, received ${totals.frames})`);
    if (metricsLost !== 0) failures.push(`streamgate_media_frames_lost_total ${metricsLost}`);
    if (sinkDropped !== 0) failures.push(`sink dropped ${sinkDropped} frames`);
    if (report.closedEarly > 0) failures.push(`${report.closedEarly} streams closed by the gateway`);
    if (rssSteady.length < 2) failures.push(`only ${rssSteady.length} steady RSS samples`);
    else if (!(growthPct <= RSS_LIMIT_PCT)) failures.push(`RSS grew ${fmt(growthPct, 1)} % over the steady window`);

    return {
      streams: opts.streams,
      seconds: opts.seconds,
      mediaSeconds: mediaMs / 1000,
      warmupSeconds: warmupS,
      pinned: canPin(),
      sinks: String(ready.info.sinks ?? ''),
      connected: connected.ok,
      rejected: connected.rejected,
      sent: report.sent,
      received: totals.frames,
      lost,
      metricsFrames,
      metricsLost,
      sinkDropped,
      closedEarly: report.closedEarly,
      generatorSlipP99Ms: report.slip.p99Ms,
      generatorBlockedWrites: report.blockedWrites,
      samples,
      rss: { startMiB: mib(steady[0]?.rssBytes), minMiB: mib(minRss), maxMiB: mib(maxRss), endMiB: mib(steady.at(-1)?.rssBytes), growthPct },
      loop: { firstHalfMedianMs: median(loops.slice(0, half)), secondHalfMedianMs: median(loops.slice(half)), maxMs: loops.length ? Math.max(...loops) : NaN },
      streamsActiveAfterStop,
      logFile,
      failures,
      pass: failures.length === 0,
    };
  } finally {
    clearTimeout(deadline);
    await srv?.stop(0);
    await gen?.stop(0);
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

export function soakMarkdown(r: SoakResult, command: string): string {
  const out: string[] = [];
  out.push('## Soak');
  out.push('');
  out.push(`\`${command}\` — ${machineLine()}; gateway and load generator ${r.pinned ? 'pinned to cores 0 and 1 (taskset)' : 'not pinned (no taskset)'}; sinks: ${r.sinks}.`);
  out.push('');
  out.push(
    mdTable(
      ['streams', 'media s (warm-up)', 'sent / received', 'lost', 'sink drops', 'RSS steady min → max MiB', 'RSS growth', 'loop p99 median 1st / 2nd half ms', 'loop p99 max ms', 'generator slip p99', 'result'],
      [
        [
          `${r.connected}/${r.streams}`,
          `${fmt(r.mediaSeconds, 0)} (${fmt(r.warmupSeconds, 0)})`,
          `${fmtInt(r.sent)} / ${fmtInt(r.received)}`,
          String(r.lost),
          String(r.sinkDropped),
          `${fmt(r.rss.minMiB, 1)} → ${fmt(r.rss.maxMiB, 1)}`,
          `${fmt(r.rss.growthPct, 1)} %`,
          `${fmt(r.loop.firstHalfMedianMs, 1)} / ${fmt(r.loop.secondHalfMedianMs, 1)}`,
          fmt(r.loop.maxMs, 1),
          `${fmt(r.generatorSlipP99Ms, 2)} ms`,
          r.pass ? 'pass' : `**fail**: ${r.failures.join('; ')}`,
        ],
      ],
      ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  out.push('');
  out.push(
    'RSS and event-loop p99 are the gateway\'s own /metrics (`streamgate_process_resident_memory_bytes`, `streamgate_nodejs_eventloop_lag_p99_seconds`, ' +
      'prom-client\'s histogram at 10 ms resolution, reset on every scrape, so each sample covers one interval). "received" is what the gateway handed to its sinks; ' +
      `/metrics \`streamgate_media_frames_total\` ${fmtInt(r.metricsFrames)}, \`streamgate_media_frames_lost_total\` ${fmtInt(r.metricsLost)}, streams active after stop ${r.streamsActiveAfterStop}.`,
  );
  out.push('');
  // A compact RSS / loop trace, about 12 points.
  const step = Math.max(1, Math.ceil(r.samples.length / 12));
  const trace = r.samples.filter((_, i) => i % step === 0 || i === r.samples.length - 1);
  out.push(mdTable(['t s', 'RSS MiB', 'loop p99 ms', 'frames'], trace.map((s) => [fmt(s.t, 0), fmt(s.rssBytes / 2 ** 20, 1), fmt(s.loopP99Ms, 1), fmtInt(s.framesReceived)]), ['r', 'r', 'r', 'r']));
  return out.join('\n') + '\n';
}

/** Replaces the "## Soak" section of a Markdown file (up to the next "## "), or appends one. */
export function writeSoakSection(path: string, section: string): void {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const start = text.search(/^## Soak\s*$/m);
  let next: string;
  if (start < 0) next = (text === '' ? '' : text.replace(/\n*$/, '\n\n')) + section;
  else {
    const rest = text.slice(start + 1);
    const endRel = rest.search(/^## /m);
    next = text.slice(0, start) + section + (endRel < 0 ? '' : '\n' + rest.slice(endRel));
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, next);
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const streams = Number(arg(argv, 'streams') ?? 500);
  const seconds = Number(arg(argv, 'seconds') ?? 600);
  const sampleEveryMs = Number(arg(argv, 'sample-every-ms') ?? 5000);
  const results = arg(argv, 'results');
  const json = arg(argv, 'json');
  const dataDir = arg(argv, 'data-dir');
  const r = await runSoak({ streams, seconds, sampleEveryMs, ...(dataDir ? { dataDir } : {}) });
  const command = `node dist/bench/soak.js ${argv.join(' ')}`.trim();
  const md = soakMarkdown(r, command);
  process.stdout.write(md);
  if (json) writeFileSync(json, JSON.stringify(r, null, 2));
  if (results) writeSoakSection(results, md);
  return r.pass ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(2);
    },
  );
}
