/**
 * Runs every bench of this directory and writes bench/RESULTS.md:
 *
 *   npm run bench                          full run (~14 min on 2 cores), writes bench/RESULTS.md
 *   node dist/bench/run.js --quick         CI smoke run (seconds, small N, no thresholds), prints only
 *
 * Options: --results <file> (write there; a full run defaults to bench/RESULTS.md, a run with
 * --servers or --levels only prints), --json <file>,
 * --no-profile, --profile-variant both_tracks (profile a two-track level instead), --measure-ms <n>, --warmup-ms <n>, --levels 100,250,… (inbound; both_tracks
 * uses half of each), --servers streamgate,streamgate-norec,streamgate-flush1s,tcp-floor,discard,naive,
 * --out <dir> (logs, the CPU profile and results.json; default bench/out/run),
 * --burst-streams <n> (the burst case, default 500; 0 skips it; --quick skips it unless given),
 * --ratio-rounds <n> (alternated rounds of streamgate, the TCP floor and ws discard at the level
 * the CPU targets compare, per variant: default 3; --quick 1, inbound only; 0 with --levels or
 * --servers unless given),
 * --render <results.json> (re-render a saved run into the report, running nothing).
 *
 * RESULTS.md: this script owns what lies between its two markers and leaves the rest of the
 * file (hand-written analysis, other benches' sections such as "## Soak") untouched.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeMarkdown, runMulawDecodeBench, type DecodeBenchResult } from './mulaw-decode.bench.js';
import { burstMarkdown, runBurst, type BurstResult } from './burst.bench.js';
import { frameSinksMarkdown, runFrameSinksBench } from './frame-sinks.bench.js';
import { runWsFrameBench, wsFrameMarkdown } from './ws-frame.bench.js';
import type { CaseResult } from './lib/timing.js';
import { P99_LIMIT_MS, highestN, ingestMarkdown, roundRatios, runAlternated, runIngest, type AlternatedRounds, type IngestResult, type LevelResult, type ServerKind, type Variant } from './ingest.bench.js';
import { fmt, fmtInt, machineInfo, machineLine, mdTable, median } from './lib/stats.js';

export const BEGIN = '<!-- bench/run.ts:begin (generated; edit outside these markers) -->';
export const END = '<!-- bench/run.ts:end -->';

/** Targets from the performance brief, checked and reported (never enforced in --quick). */
export const TARGETS = {
  decodeVsMulawJs: 8,
  cpuVsTcpFloor: 1.5,
  cpuVsDiscard: 1.15,
  cpuVsNaive: 0.5,
  highestNVsNaive: 2,
  highestNInbound: 1000,
  highestNBothTracks: 500,
  rssPerStreamKiB: 100,
  /** Burst: event-loop delay p99 in every phase, and the probe's p99 over the floor's. */
  burstLoopP99Ms: 10,
  burstProbeOverFloorMs: 10,
};

/** Servers of the alternated rounds: streamgate and what the CPU targets compare it with. */
const RATIO_SERVERS: ServerKind[] = ['streamgate', 'tcp-floor', 'discard'];

/** Servers of the burst case: streamgate against the two floors. */
const BURST_SERVERS: ServerKind[] = ['streamgate', 'tcp-floor', 'discard'];

interface RunOptions {
  quick: boolean;
  results: string | null;
  profile: boolean;
  /** Which variant the profiled level streams (default inbound). */
  profileVariant: 'inbound' | 'both_tracks';
  measureMs: number;
  warmupMs: number;
  inboundLevels: number[];
  /** Servers to run (both variants); default: all four inbound, the three main ones both_tracks. */
  inboundServers: ServerKind[] | null;
  outDir: string;
  /** Also write the raw results as JSON here. */
  json: string | null;
  /** Streams of the burst case (0: not run). */
  burstStreams: number;
  /** Alternated rounds at the compared level (0: none). */
  ratioRounds: number;
  command: string;
}

function parseArgs(argv: string[]): RunOptions {
  const has = (f: string) => argv.includes(f);
  const val = (f: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = has('--quick');
  const levels = val('--levels');
  return {
    quick,
    // A partial run (chosen servers or levels) only prints, unless told where to write.
    results: val('--results') ?? (quick || val('--servers') !== undefined || levels !== undefined ? null : 'bench/RESULTS.md'),
    profile: !quick && !has('--no-profile'),
    profileVariant: val('--profile-variant') === 'both_tracks' ? 'both_tracks' : 'inbound',
    measureMs: Number(val('--measure-ms') ?? (quick ? 1500 : 5000)),
    warmupMs: Number(val('--warmup-ms') ?? (quick ? 500 : 2000)),
    inboundLevels: levels ? levels.split(',').map(Number) : quick ? [20] : [100, 250, 500, 750, 1000, 1500, 2000, 2500],
    inboundServers: val('--servers') ? (val('--servers')!.split(',') as ServerKind[]) : null,
    outDir: resolve(val('--out') ?? (quick ? join(tmpdir(), 'streamgate-bench-quick') : 'bench/out/run')),
    json: val('--json') ?? null,
    burstStreams: Number(val('--burst-streams') ?? (quick || levels !== undefined || val('--servers') !== undefined ? 0 : 500)),
    ratioRounds: Number(val('--ratio-rounds') ?? (quick ? 1 : levels !== undefined || val('--servers') !== undefined ? 0 : 3)),
    command: ['node', 'dist/bench/run.js', ...argv].join(' '),
  };
}

function gitDescribe(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'bench'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return dirty ? `${sha} + uncommitted changes in src/ or bench/` : sha;
  } catch {
    return 'unknown';
  }
}

const SERVERS: ServerKind[] = ['streamgate', 'tcp-floor', 'discard', 'naive'];
const VARIANTS: Variant[] = ['inbound', 'both_tracks'];

/** The largest N at which every main server ran (pass or fail): where CPU/message is compared. */
function commonN(levels: readonly LevelResult[], variant: Variant): number | null {
  let best: number | null = null;
  const ns = [...new Set(levels.filter((l) => l.variant === variant).map((l) => l.streams))].sort((a, b) => a - b);
  for (const n of ns) if (SERVERS.every((s) => row(levels, s, variant, n) !== undefined)) best = n;
  return best;
}

function row(levels: readonly LevelResult[], server: ServerKind, variant: Variant, n: number | null): LevelResult | undefined {
  return n === null ? undefined : levels.find((l) => l.server === server && l.variant === variant && l.streams === n);
}

/**
 * RSS added per stream between streamgate's two largest levels: the slope, free of the fixed
 * cost (code, heap growth) that (RSS − idle RSS) / N charges to every stream at small N.
 */
function marginalRss(levels: readonly LevelResult[], server: ServerKind, variant: Variant): { kib: number; from: number; to: number } | null {
  const rs = levels.filter((l) => l.server === server && l.variant === variant).sort((x, y) => x.streams - y.streams);
  if (rs.length < 2) return null;
  const a = rs[rs.length - 2]!;
  const b = rs[rs.length - 1]!;
  return { kib: ((b.rssMiB - a.rssMiB) * 1024) / (b.streams - a.streams), from: a.streams, to: b.streams };
}

function verdict(ok: boolean | null): string {
  return ok === null ? 'n/a' : ok ? 'met' : '**not met**';
}

const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? `${fmt(a / b, 2)}×` : '–');

function summaryMarkdown(ing: IngestResult): { text: string; checks: { name: string; ok: boolean | null }[] } {
  const lines: string[] = [];
  const checks: { name: string; ok: boolean | null }[] = [];
  const hiRows: (string | number)[][] = [];
  for (const variant of VARIANTS) {
    if (!ing.levels.some((l) => l.variant === variant)) continue;
    const kinds = [...new Set(ing.levels.filter((l) => l.variant === variant).map((l) => l.server))];
    const hi = (s: ServerKind) => highestN(ing.levels, s, variant);
    const limitNote = (s: ServerKind) => {
      if (!kinds.includes(s)) return 'not run';
      const h = hi(s);
      if (h.failedAt === null) return `≥ ${fmtInt(h.n)} (no level failed)`;
      return h.failedAt.generatorLimited ? `≥ ${fmtInt(h.n)} (generator-limited)` : fmtInt(h.n);
    };
    const ours = hi('streamgate').lastRow;
    const msgsPerStream = variant === 'both_tracks' ? 100 : 50;
    hiRows.push([
      variant,
      ...(['streamgate', 'streamgate-norec', 'tcp-floor', 'discard', 'naive'] as ServerKind[]).map(limitNote),
      hi('naive').n > 0 ? `${fmt(hi('streamgate').n / hi('naive').n, 2)}×` : '–',
      ours ? fmtInt(1e6 / (ours.cpuUsPerMsg * msgsPerStream)) : '–',
    ]);

    // CPU per message at every N where the peers ran too.
    const ns = [...new Set(ing.levels.filter((l) => l.variant === variant).map((l) => l.streams))].sort((a, b) => a - b);
    const cpuRows: (string | number)[][] = [];
    for (const n of ns) {
      const g = (s: ServerKind) => row(ing.levels, s, variant, n)?.cpuUsPerMsg;
      if (g('streamgate') === undefined) continue;
      const c = (s: ServerKind) => {
        const r = row(ing.levels, s, variant, n);
        return r === undefined ? '–' : `${fmt(r.cpuUsPerMsg, 2)}${r.pass ? '' : ' (fail)'}`;
      };
      cpuRows.push([fmtInt(n), c('streamgate'), c('streamgate-norec'), c('tcp-floor'), c('discard'), c('naive'), ratio(g('streamgate'), g('tcp-floor')), ratio(g('streamgate'), g('discard')), ratio(g('streamgate'), g('naive')), ratio(g('streamgate-norec'), g('discard'))]);
    }
    lines.push(`**${variant}**: CPU µs per message by N ("(fail)": measured, but that level missed a pass criterion):`);
    lines.push('');
    lines.push(mdTable(['streams', 'streamgate', 'streamgate, no recording', 'raw-TCP floor', 'ws discard', 'naive', 'ours / TCP floor', 'ours / ws discard', 'ours / naive', 'no-recording / ws discard'], cpuRows));
    lines.push('');

    const n = commonN(ing.levels, variant);
    const a = row(ing.levels, 'streamgate', variant, n);
    const d = row(ing.levels, 'discard', variant, n);
    const f = row(ing.levels, 'tcp-floor', variant, n);
    const v = row(ing.levels, 'naive', variant, n);
    const nr = row(ing.levels, 'streamgate-norec', variant, n);
    const wantN = variant === 'inbound' ? TARGETS.highestNInbound : TARGETS.highestNBothTracks;
    const alt = ing.alternated?.find((x) => x.variant === variant);
    // With alternated rounds the CPU targets are judged on the median of their ratios; the
    // stepping pass's single ratio is shown beside it.
    const cpuCheck = (peer: ServerKind, peerName: string, limit: number, peerRow: LevelResult | undefined) => {
      const single = ratio(a?.cpuUsPerMsg, peerRow?.cpuUsPerMsg);
      const rs = alt ? roundRatios(alt, 'streamgate', peer) : [];
      if (alt && rs.length > 0) {
        const m = median(rs);
        const range = rs.length > 1 ? ` (${fmt(Math.min(...rs), 2)}-${fmt(Math.max(...rs), 2)}×)` : '';
        return { name: `CPU/message ≤ ${limit}× ${peerName} (${variant}, N=${fmtInt(alt.streams)}: median of ${rs.length} alternated round${rs.length === 1 ? '' : 's'} ${fmt(m, 2)}×${range}; stepping pass ${single})`, ok: m <= limit };
      }
      return { name: `CPU/message ≤ ${limit}× ${peerName} (${variant}, N=${n ?? '–'}: ${single})`, ok: a && peerRow ? a.cpuUsPerMsg / peerRow.cpuUsPerMsg <= limit : null };
    };
    checks.push(cpuCheck('tcp-floor', 'the raw-TCP floor', TARGETS.cpuVsTcpFloor, f));
    if (alt) checks.push(cpuCheck('discard', 'ws discard', TARGETS.cpuVsDiscard, d));
    checks.push({ name: `highest N ≥ ${fmtInt(wantN)} on one core (${variant}: ${fmtInt(hi('streamgate').n)})`, ok: kinds.includes('streamgate') ? hi('streamgate').n >= wantN : null });
    if (variant === 'inbound') {
      if (!alt) checks.push({ name: `CPU/message ≤ ${TARGETS.cpuVsDiscard}× discard (inbound, N=${n ?? '–'}: ${ratio(a?.cpuUsPerMsg, d?.cpuUsPerMsg)}; without recording ${ratio(nr?.cpuUsPerMsg, d?.cpuUsPerMsg)})`, ok: a && d ? a.cpuUsPerMsg / d.cpuUsPerMsg <= TARGETS.cpuVsDiscard : null });
      checks.push({ name: `CPU/message ≤ ${TARGETS.cpuVsNaive}× naive (inbound, N=${n ?? '–'}: ${ratio(a?.cpuUsPerMsg, v?.cpuUsPerMsg)}; without recording ${ratio(nr?.cpuUsPerMsg, v?.cpuUsPerMsg)})`, ok: a && v ? a.cpuUsPerMsg / v.cpuUsPerMsg <= TARGETS.cpuVsNaive : null });
      checks.push({ name: `highest N ≥ ${TARGETS.highestNVsNaive}× naive (inbound: ${fmtInt(hi('streamgate').n)} vs ${fmtInt(hi('naive').n)})`, ok: hi('naive').n > 0 ? hi('streamgate').n / hi('naive').n >= TARGETS.highestNVsNaive : null });
    }
    const m = marginalRss(ing.levels, 'streamgate', variant);
    if (m) checks.push({ name: `RSS ≤ ${TARGETS.rssPerStreamKiB} KiB/stream with recording (${variant}: ${fmt(m.kib, 0)} KiB per added stream, N ${fmtInt(m.from)} → ${fmtInt(m.to)})`, ok: m.kib <= TARGETS.rssPerStreamKiB });
  }
  const alts = alternatedMarkdown(ing.alternated ?? []);
  if (alts !== '') lines.push(alts, '');
  lines.push('Highest N that held p99 < 10 ms with 0 lost (one core), and streams per core if CPU were the only limit (1 s / (CPU per message × messages per stream-second)):');
  lines.push('');
  lines.push(mdTable(['tracks', 'streamgate', 'streamgate, no recording', 'raw-TCP floor', 'ws discard', 'naive', 'streamgate / naive', 'streams/core at 100 % CPU (streamgate)'], hiRows));
  return { text: lines.join('\n'), checks };
}

/** The alternated rounds: each round's CPU per message and ratios, then their medians. */
function alternatedMarkdown(alts: readonly AlternatedRounds[]): string {
  const out: string[] = [];
  for (const alt of alts) {
    const cpu = (round: readonly LevelResult[], s: ServerKind) => round.find((r) => r.server === s);
    const cell = (r: LevelResult | undefined) => (r === undefined ? '–' : `${fmt(r.cpuUsPerMsg, 2)}${r.pass ? '' : ' (fail)'}`);
    const rows: (string | number)[][] = alt.rounds.map((round, i) => [
      String(i + 1),
      round.map((r) => r.server).join(', '),
      ...alt.servers.map((s) => cell(cpu(round, s))),
      ratio(cpu(round, 'streamgate')?.cpuUsPerMsg, cpu(round, 'tcp-floor')?.cpuUsPerMsg),
      ratio(cpu(round, 'streamgate')?.cpuUsPerMsg, cpu(round, 'discard')?.cpuUsPerMsg),
      `${fmt(Math.max(...round.map((r) => r.host.otherCore0Pct)), 0)} / ${fmt(Math.max(...round.map((r) => r.host.otherCore1Pct)), 0)}`,
    ]);
    const med = (peer: ServerKind) => {
      const rs = roundRatios(alt, 'streamgate', peer);
      return rs.length > 0 ? `**${fmt(median(rs), 2)}×**` : '–';
    };
    rows.push(['median', '', ...alt.servers.map((s) => fmt(median(alt.rounds.flatMap((round) => round.filter((r) => r.server === s).map((r) => r.cpuUsPerMsg))), 2)), med('tcp-floor'), med('discard'), '']);
    out.push(
      `**${alt.variant}, N=${fmtInt(alt.streams)}, alternated rounds** (CPU µs per message; each round runs the servers back to back, the order rotated, so a ratio compares runs a minute apart, ` +
        "not the passes' runs minutes apart while the host's speed drifts; the CPU targets are judged on the median ratio):",
    );
    out.push('');
    out.push(mdTable(['round', 'order', ...alt.servers, 'ours / TCP floor', 'ours / ws discard', 'other load on core 0 / 1, % (most in the round)'], rows));
    out.push('');
  }
  return out.join('\n').trimEnd();
}

function profileMarkdown(ing: IngestResult): string {
  const p = ing.profile;
  if (p === null) return '_No profile in this run._';
  const s = p.summary;
  const out: string[] = [];
  out.push(
    `streamgate, ${p.variant}, N=${fmtInt(p.streams)}, \`node --cpu-prof\` on the gateway child, samples cut to the measured window ` +
      `(${fmt(s.totalMs / 1000, 1)} s, process busy ${fmt(s.busyPct, 0)} % of it; ${fmt(p.level.cpuUsPerMsg, 2)} µs/msg with the profiler on). Self time, share of busy samples:`,
  );
  out.push('');
  out.push(mdTable(['function', 'where', 'self %'], s.top.slice(0, 20).map((r) => [`\`${r.fn}\``, r.where === '' ? '(native)' : `\`${r.where}\``, fmt(r.selfPct, 1)]), ['l', 'l', 'r']));
  out.push('');
  out.push('Inclusive (on the stack), share of busy samples:');
  out.push('');
  out.push(mdTable(['function', 'inclusive %'], s.inclusive.map((r) => [`\`${r.fn}\``, fmt(r.pct, 1)])));
  return out.join('\n');
}

/** The burst section and its target checks (streamgate against the TCP floor, phase by phase). */
function burstSection(burst: readonly BurstResult[]): { text: string; checks: { name: string; ok: boolean | null }[] } {
  const sg = burst.find((b) => b.server === 'streamgate');
  const floor = burst.find((b) => b.server === 'tcp-floor');
  const checks: { name: string; ok: boolean | null }[] = [];
  if (sg) {
    const worst = Math.max(...(['start', 'steady', 'stop'] as const).map((p) => sg.phases[p].loop.p99Ms));
    checks.push({ name: `burst of ${fmtInt(sg.streams)}: event-loop delay p99 < ${TARGETS.burstLoopP99Ms} ms in every phase (worst ${fmt(worst, 1)} ms)`, ok: worst < TARGETS.burstLoopP99Ms });
    if (floor) {
      // Runs saved before the new-connection probe was added have no probeNew.
      for (const [key, what] of [['probe', 'kept-alive'], ['probeNew', 'new connection']] as const) {
        if (sg.phases.start[key] === undefined || floor.phases.start[key] === undefined) continue;
        const over = Math.max(...(['start', 'steady', 'stop'] as const).map((p) => (sg.phases[p][key]?.p99Ms ?? NaN) - (floor.phases[p][key]?.p99Ms ?? NaN)));
        checks.push({ name: `burst of ${fmtInt(sg.streams)}: /healthz p99 (${what}) within ${TARGETS.burstProbeOverFloorMs} ms of the TCP floor's in every phase (worst +${fmt(over, 1)} ms)`, ok: over <= TARGETS.burstProbeOverFloorMs });
      }
    }
    checks.push({ name: `burst of ${fmtInt(sg.streams)}: 0 frames lost (${fmtInt(sg.sent - sg.received)})`, ok: sg.sent === sg.received });
  }
  const text = [
    `N streams connect at once (every handshake in flight together), stream for the steady window, and all send \`stop\` and close within a few ms; per phase the server's event-loop delay (1 ms monitor), two GET /healthz probes every 20 ms from the orchestrator (one on a connection kept alive from before the burst, one on a new connection each time, which waits in the accept queue behind the burst's connects), and ingest lag. streamgate opens and finalises N recordings in the start and stop phases.`,
    '',
    burstMarkdown(burst),
  ].join('\n');
  return { text, checks };
}

/** The per-frame micro-benches (absent from runs saved before they were added). */
export interface FrameBenchResult {
  ws: CaseResult[];
  sinks: CaseResult[];
}

/** What a run reports (and, with `startedAt` as a string, what its --json file holds). */
export interface RunReport {
  decode: DecodeBenchResult;
  frame?: FrameBenchResult | null;
  ingest: IngestResult;
  burst?: BurstResult[] | null;
  command: string;
  quick: boolean;
  startedAt: Date;
  durationS: number;
  tree?: string;
}

export function resultsMarkdown(opts: RunReport): string {
  const m = machineInfo();
  const out: string[] = [];
  out.push(BEGIN);
  out.push('');
  out.push(`Machine: ${machineLine(m)}.  `);
  out.push(`Run: \`${opts.command}\` (after \`npm run build\`), ${opts.startedAt.toISOString()}, ${fmt(opts.durationS, 0)} s, tree ${opts.tree ?? gitDescribe()}${opts.quick ? ', **quick mode: tiny N, no thresholds**' : ''}.  `);
  out.push(`Pinning: server child \`taskset -c 0\`, load generator child \`taskset -c 1\`${opts.ingest.pinned ? '' : ' (**taskset unavailable: not pinned**)'}; Node ${m.node}.`);
  out.push('');
  out.push('### mu-law decode (`bench/mulaw-decode.bench.ts`)');
  out.push('');
  out.push(`${opts.decode.rounds} rounds per contender, interleaved; ± is the 95 % confidence half-width of the mean.`);
  out.push('');
  out.push(decodeMarkdown(opts.decode));
  out.push('');
  if (opts.frame) {
    out.push('### Per frame: receive and sinks (`bench/ws-frame.bench.ts`, `bench/frame-sinks.bench.ts`)');
    out.push('');
    out.push(wsFrameMarkdown(opts.frame.ws));
    out.push('');
    out.push(frameSinksMarkdown(opts.frame.sinks));
    out.push('');
  }
  const d = opts.decode.speedupVsMulawJs;
  const decodeCheck = { name: `decode ≥ ${TARGETS.decodeVsMulawJs}× mulaw-js (${fmt(d, 1)}×)`, ok: d >= TARGETS.decodeVsMulawJs };
  out.push('### Ingest (`bench/ingest.bench.ts`)');
  out.push('');
  out.push(
    `Each level: fresh server child, N streams from the generator (raw sockets, pre-built masked frames patched in place, one write per stream per 20 ms carrying its tracks' frames, staggered), ` +
      `${fmt(opts.ingest.options.warmupMs / 1000, 1)} s warm-up, ${fmt(opts.ingest.options.measureMs / 1000, 1)} s measured. Pass = p99 ingest lag < ${P99_LIMIT_MS} ms, 0 lost, ` +
      'every stream connected and kept, generator on schedule. Stepping stops at the first failure per server. "CPU µs/msg" = server process user+system CPU (getrusage, all threads) over the window / frames it handed to its sink. ' +
      '"RSS/stream" = (RSS at the end of the window − RSS of the idle server) / N. Lag = generator send time (stamped in the payload) → server sink, both on CLOCK_MONOTONIC.',
  );
  out.push('');
  const sum = summaryMarkdown(opts.ingest);
  const burst = opts.burst && opts.burst.length > 0 ? burstSection(opts.burst) : null;
  out.push(sum.text);
  out.push('');
  out.push('Targets:');
  out.push('');
  for (const c of [decodeCheck, ...sum.checks, ...(burst?.checks ?? [])]) out.push(`- ${c.name}: ${verdict(c.ok)}`);
  out.push('');
  out.push('All levels:');
  out.push('');
  out.push(ingestMarkdown(opts.ingest));
  out.push('');
  const hostRows = opts.ingest.levels.map((l) => [l.server, l.variant, fmtInt(l.streams), String(l.attempt), fmt(l.host.otherCore0Pct, 0), fmt(l.host.otherCore1Pct, 0), fmt(l.host.softirqCore0Pct, 0), fmt(l.host.softirqCore1Pct, 0), fmt(l.host.serverRunQueueWaitPct, 1)]);
  out.push('Other load on the host during each window (% of a core; a level that failed under other load was re-run, "attempt"):');
  out.push('');
  out.push(mdTable(['server', 'tracks', 'streams', 'attempt', 'other on core 0 %', 'other on core 1 %', 'softirq core 0 %', 'softirq core 1 %', 'server run-queue wait %'], hostRows));
  out.push('');
  if (burst !== null) {
    out.push('### Burst (`bench/burst.bench.ts`)');
    out.push('');
    out.push(burst.text);
    out.push('');
  }
  out.push('### Profile');
  out.push('');
  out.push(profileMarkdown(opts.ingest));
  out.push('');
  out.push(END);
  return out.join('\n');
}

/** Puts `section` between the markers of `path`, keeping everything else. */
export function writeResults(path: string, section: string): void {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  let next: string;
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a >= 0 && b > a) next = text.slice(0, a) + section + text.slice(b + END.length);
  else if (text === '') next = `# streamgate benchmarks\n\n${section}\n`;
  else {
    // Put the generated part right after the title, before other sections.
    const nl = text.startsWith('# ') ? text.indexOf('\n') + 1 : 0;
    next = text.slice(0, nl) + '\n' + section + '\n\n' + text.slice(nl).replace(/^\n+/, '');
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, next);
}

export async function main(argv: string[]): Promise<string> {
  const opts = parseArgs(argv);
  const renderFrom = argv.includes('--render') ? argv[argv.indexOf('--render') + 1] : undefined;
  if (renderFrom !== undefined) {
    // Re-render a saved run (its --json) without running anything.
    const saved = JSON.parse(readFileSync(renderFrom, 'utf8')) as Omit<RunReport, 'startedAt'> & { startedAt: string };
    const md = resultsMarkdown({ ...saved, startedAt: new Date(saved.startedAt) });
    if (opts.results !== null) writeResults(opts.results, md);
    process.stdout.write(md + '\n');
    return md;
  }
  const t0 = Date.now();
  const startedAt = new Date();
  mkdirSync(opts.outDir, { recursive: true });
  const log = (l: string) => process.stderr.write(l + '\n');
  log(`bench: ${machineLine()}`);
  log('bench: mu-law decode…');
  const decode = runMulawDecodeBench({ quick: opts.quick });
  log(`bench: decode ours ${fmt(decode.decode[0]!.ns.mean, 0)} ns/frame, ${fmt(decode.speedupVsMulawJs, 1)}× mulaw-js`);
  log('bench: per-frame receive and sinks…');
  const frame: FrameBenchResult = { ws: runWsFrameBench({ quick: opts.quick }), sinks: runFrameSinksBench({ quick: opts.quick }) };
  const both = opts.inboundLevels.map((n) => Math.max(1, Math.round(n / 2)));
  const ingest = await runIngest({
    servers: SERVERS,
    variants: VARIANTS,
    levels: opts.inboundLevels,
    levelsByVariant: { inbound: opts.inboundLevels, both_tracks: both },
    // The quick run checks plumbing only: both_tracks on streamgate alone keeps it to seconds.
    // The full run adds the gateway without its recording sink (inbound), to price recording.
    serversByVariant: opts.quick
      ? { both_tracks: ['streamgate'] }
      : opts.inboundServers !== null
        ? { inbound: opts.inboundServers, both_tracks: opts.inboundServers }
        : { inbound: ['streamgate', 'streamgate-norec', 'tcp-floor', 'discard', 'naive'] },
    warmupMs: opts.warmupMs,
    measureMs: opts.measureMs,
    outDir: opts.outDir,
    quietWaitMs: opts.quick ? 0 : 120_000,
    maxAttempts: opts.quick ? 1 : 3,
    profile: opts.profile ? { streams: 0, variant: opts.profileVariant, measureMs: 6000 } : null,
    log,
  });
  if (opts.ratioRounds > 0) {
    ingest.alternated = [];
    // Where the CPU targets compare (the largest N every main server ran); --quick: inbound only.
    for (const variant of opts.quick ? (['inbound'] as Variant[]) : VARIANTS) {
      const n = commonN(ingest.levels, variant);
      const servers = RATIO_SERVERS.filter((s) => ingest.levels.some((l) => l.server === s && l.variant === variant));
      if (n === null || servers.length < 2) continue;
      log(`bench: ${opts.ratioRounds} alternated rounds, ${variant} N=${n}…`);
      ingest.alternated.push(await runAlternated(ingest.options, variant, n, servers, opts.ratioRounds));
    }
  }
  let burst: BurstResult[] | null = null;
  if (opts.burstStreams > 0) {
    log(`bench: burst of ${opts.burstStreams} streams…`);
    burst = await runBurst({ servers: BURST_SERVERS, streams: opts.burstStreams, steadyMs: opts.quick ? 1000 : 5000, outDir: opts.outDir, log });
  }
  const durationS = (Date.now() - t0) / 1000;
  const tree = gitDescribe();
  const md = resultsMarkdown({ decode, frame, ingest, burst, command: opts.command, quick: opts.quick, startedAt, durationS, tree });
  const raw = JSON.stringify({ machine: machineInfo(), decode, frame, ingest, burst, command: opts.command, quick: opts.quick, startedAt: startedAt.toISOString(), durationS, tree }, null, 2);
  writeFileSync(join(opts.outDir, 'results.json'), raw);
  if (opts.json !== null) writeFileSync(opts.json, raw);
  if (opts.results !== null) {
    writeResults(opts.results, md);
    log(`bench: wrote ${opts.results}`);
  }
  process.stdout.write(md + '\n');
  return md;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
