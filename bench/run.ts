/**
 * Runs every bench of this directory and writes bench/RESULTS.md:
 *
 *   npm run bench                          full run (~6-8 min on 2 cores), writes bench/RESULTS.md
 *   node dist/bench/run.js --quick         CI smoke run (seconds, small N, no thresholds), prints only
 *
 * Options: --results <file> (write there; the full run defaults to bench/RESULTS.md), --json <file>,
 * --no-profile, --measure-ms <n>, --warmup-ms <n>, --levels 100,250,… (inbound; both_tracks
 * uses half of each), --servers streamgate,streamgate-norec,streamgate-flush1s,discard,naive (inbound),
 * --out <dir> (logs and the CPU profile; default bench/out/run).
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
import { P99_LIMIT_MS, highestN, ingestMarkdown, runIngest, type IngestResult, type LevelResult, type ServerKind, type Variant } from './ingest.bench.js';
import { fmt, fmtInt, machineInfo, machineLine, mdTable } from './lib/stats.js';

export const BEGIN = '<!-- bench/run.ts:begin (generated; edit outside these markers) -->';
export const END = '<!-- bench/run.ts:end -->';

/** Targets from the performance brief, checked and reported (never enforced in --quick). */
export const TARGETS = {
  decodeVsMulawJs: 8,
  cpuVsDiscard: 1.6,
  cpuVsNaive: 0.5,
  highestNVsNaive: 2,
  rssPerStreamKiB: 150,
};

interface RunOptions {
  quick: boolean;
  results: string | null;
  profile: boolean;
  measureMs: number;
  warmupMs: number;
  inboundLevels: number[];
  /** Servers for the inbound variant (both_tracks always runs the three main ones). */
  inboundServers: ServerKind[] | null;
  outDir: string;
  /** Also write the raw results as JSON here. */
  json: string | null;
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
    results: val('--results') ?? (quick ? null : 'bench/RESULTS.md'),
    profile: !quick && !has('--no-profile'),
    measureMs: Number(val('--measure-ms') ?? (quick ? 1500 : 5000)),
    warmupMs: Number(val('--warmup-ms') ?? (quick ? 500 : 2000)),
    inboundLevels: levels ? levels.split(',').map(Number) : quick ? [20] : [100, 250, 500, 750, 1000, 1500, 2000, 2500],
    inboundServers: val('--servers') ? (val('--servers')!.split(',') as ServerKind[]) : null,
    outDir: resolve(val('--out') ?? (quick ? join(tmpdir(), 'streamgate-bench-quick') : 'bench/out/run')),
    json: val('--json') ?? null,
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

const SERVERS: ServerKind[] = ['streamgate', 'discard', 'naive'];
const VARIANTS: Variant[] = ['inbound', 'both_tracks'];

/** The largest N every server passed in a variant (where their CPU/message is compared). */
function commonN(levels: readonly LevelResult[], variant: Variant): number | null {
  let best: number | null = null;
  const ns = [...new Set(levels.filter((l) => l.variant === variant).map((l) => l.streams))].sort((a, b) => a - b);
  for (const n of ns) {
    const rows = SERVERS.map((s) => levels.find((l) => l.server === s && l.variant === variant && l.streams === n));
    if (rows.every((r) => r !== undefined && r.pass)) best = n;
  }
  return best;
}

function row(levels: readonly LevelResult[], server: ServerKind, variant: Variant, n: number | null): LevelResult | undefined {
  return n === null ? undefined : levels.find((l) => l.server === server && l.variant === variant && l.streams === n);
}

function verdict(ok: boolean | null): string {
  return ok === null ? 'n/a' : ok ? 'met' : '**not met**';
}

function summaryMarkdown(ing: IngestResult): { text: string; checks: { name: string; ok: boolean | null }[] } {
  const lines: string[] = [];
  const checks: { name: string; ok: boolean | null }[] = [];
  const rows: (string | number)[][] = [];
  for (const variant of VARIANTS) {
    if (!ing.levels.some((l) => l.variant === variant)) continue;
    const n = commonN(ing.levels, variant);
    const ours = row(ing.levels, 'streamgate', variant, n);
    const discard = row(ing.levels, 'discard', variant, n);
    const naive = row(ing.levels, 'naive', variant, n);
    const hi = (s: ServerKind) => highestN(ing.levels, s, variant);
    const limitNote = (s: ServerKind) => {
      if (!ing.levels.some((l) => l.server === s && l.variant === variant)) return 'not run';
      const h = hi(s);
      if (h.failedAt === null) return `≥ ${fmtInt(h.n)} (no level failed)`;
      const why = h.failedAt.generatorLimited ? ' (generator-limited: a lower bound)' : '';
      return `${fmtInt(h.n)}${why}`;
    };
    const msgsPerStream = variant === 'both_tracks' ? 100 : 50;
    const cpuBound = ours ? 1e6 / (ours.cpuUsPerMsg * msgsPerStream) : NaN;
    rows.push([
      variant,
      n === null ? '–' : fmtInt(n),
      ours ? fmt(ours.cpuUsPerMsg, 2) : '–',
      discard ? fmt(discard.cpuUsPerMsg, 2) : '–',
      naive ? fmt(naive.cpuUsPerMsg, 2) : '–',
      ours && discard ? `${fmt(ours.cpuUsPerMsg / discard.cpuUsPerMsg, 2)}×` : '–',
      ours && naive ? `${fmt(ours.cpuUsPerMsg / naive.cpuUsPerMsg, 2)}×` : '–',
      limitNote('streamgate'),
      limitNote('discard'),
      limitNote('naive'),
      hi('naive').n > 0 ? `${fmt(hi('streamgate').n / hi('naive').n, 2)}×` : '–',
      Number.isFinite(cpuBound) ? fmtInt(cpuBound) : '–',
    ]);
    if (variant === 'inbound') {
      checks.push({ name: `CPU/message ≤ ${TARGETS.cpuVsDiscard}× discard (inbound, N=${n ?? '–'})`, ok: ours && discard ? ours.cpuUsPerMsg / discard.cpuUsPerMsg <= TARGETS.cpuVsDiscard : null });
      checks.push({ name: `CPU/message ≤ ${TARGETS.cpuVsNaive}× naive (inbound, N=${n ?? '–'})`, ok: ours && naive ? ours.cpuUsPerMsg / naive.cpuUsPerMsg <= TARGETS.cpuVsNaive : null });
      checks.push({ name: `highest N ≥ ${TARGETS.highestNVsNaive}× naive (inbound)`, ok: hi('naive').n > 0 ? hi('streamgate').n / hi('naive').n >= TARGETS.highestNVsNaive : null });
    }
    const top = hi('streamgate').lastRow;
    if (top) checks.push({ name: `RSS ≤ ${TARGETS.rssPerStreamKiB} KiB/stream with recording (${variant}, N=${fmtInt(top.streams)}: ${fmt(top.rssPerStreamKiB, 0)} KiB)`, ok: top.rssPerStreamKiB <= TARGETS.rssPerStreamKiB });
  }
  const norecNotes: string[] = [];
  for (const variant of VARIANTS) {
    const n = commonN(ing.levels, variant);
    const a = row(ing.levels, 'streamgate', variant, n);
    const b = row(ing.levels, 'streamgate-norec', variant, n);
    if (a && b) {
      norecNotes.push(
        `Recording's share (${variant}, N=${fmtInt(n!)}): streamgate ${fmt(a.cpuUsPerMsg, 2)} µs/msg with the recording sink, ${fmt(b.cpuUsPerMsg, 2)} without ` +
          `(${fmt(a.cpuUsPerMsg - b.cpuUsPerMsg, 2)} µs/msg, ${fmt(((a.cpuUsPerMsg - b.cpuUsPerMsg) / a.cpuUsPerMsg) * 100, 0)} %); without it: ${fmt(b.cpuUsPerMsg / (row(ing.levels, 'discard', variant, n)?.cpuUsPerMsg ?? NaN), 2)}× discard; ` +
          `highest N without recording ${fmtInt(highestN(ing.levels, 'streamgate-norec', variant).n)}.`,
      );
    }
  }
  lines.push(
    mdTable(
      ['tracks', 'common N', 'streamgate µs/msg', 'discard µs/msg', 'naive µs/msg', 'ours / discard', 'ours / naive', `highest N streamgate`, 'highest N discard', 'highest N naive', 'ours / naive N', 'streams/core at 100 % CPU (ours)'],
      rows,
    ),
  );
  if (norecNotes.length > 0) lines.push('', ...norecNotes);
  return { text: lines.join('\n'), checks };
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

export function resultsMarkdown(opts: { decode: DecodeBenchResult; ingest: IngestResult; command: string; quick: boolean; startedAt: Date; durationS: number }): string {
  const m = machineInfo();
  const out: string[] = [];
  out.push(BEGIN);
  out.push('');
  out.push(`Machine: ${machineLine(m)}.  `);
  out.push(`Run: \`${opts.command}\` (after \`npm run build\`), ${opts.startedAt.toISOString()}, ${fmt(opts.durationS, 0)} s, tree ${gitDescribe()}${opts.quick ? ', **quick mode: tiny N, no thresholds**' : ''}.  `);
  out.push(`Pinning: server child \`taskset -c 0\`, load generator child \`taskset -c 1\`${opts.ingest.pinned ? '' : ' (**taskset unavailable: not pinned**)'}; Node ${m.node}.`);
  out.push('');
  out.push('### mu-law decode (`bench/mulaw-decode.bench.ts`)');
  out.push('');
  out.push(`${opts.decode.rounds} rounds per contender, interleaved; ± is the 95 % confidence half-width of the mean.`);
  out.push('');
  out.push(decodeMarkdown(opts.decode));
  out.push('');
  const d = opts.decode.speedupVsMulawJs;
  const decodeCheck = { name: `decode ≥ ${TARGETS.decodeVsMulawJs}× mulaw-js (${fmt(d, 1)}×)`, ok: d >= TARGETS.decodeVsMulawJs };
  out.push('### Ingest (`bench/ingest.bench.ts`)');
  out.push('');
  out.push(
    `Each level: fresh server child, N streams from the generator (raw sockets, one masked frame per write, 20 ms per track, staggered), ` +
      `${fmt(opts.ingest.options.warmupMs / 1000, 1)} s warm-up, ${fmt(opts.ingest.options.measureMs / 1000, 1)} s measured. Pass = p99 ingest lag < ${P99_LIMIT_MS} ms, 0 lost, ` +
      'every stream connected and kept, generator on schedule. Stepping stops at the first failure per server. "CPU µs/msg" = server process user+system CPU (getrusage, all threads) over the window / frames it handed to its sink. ' +
      '"RSS/stream" = (RSS at the end of the window − RSS of the idle server) / N. Lag = generator send time (stamped in the payload) → server sink, both on CLOCK_MONOTONIC.',
  );
  out.push('');
  const sum = summaryMarkdown(opts.ingest);
  out.push(sum.text);
  out.push('');
  out.push('Targets:');
  out.push('');
  for (const c of [decodeCheck, ...sum.checks]) out.push(`- ${c.name}: ${verdict(c.ok)}`);
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
  const t0 = Date.now();
  const startedAt = new Date();
  mkdirSync(opts.outDir, { recursive: true });
  const log = (l: string) => process.stderr.write(l + '\n');
  log(`bench: ${machineLine()}`);
  log('bench: mu-law decode…');
  const decode = runMulawDecodeBench({ quick: opts.quick });
  log(`bench: decode ours ${fmt(decode.decode[0]!.ns.mean, 0)} ns/frame, ${fmt(decode.speedupVsMulawJs, 1)}× mulaw-js`);
  const both = opts.inboundLevels.map((n) => Math.max(1, Math.round(n / 2)));
  const ingest = await runIngest({
    servers: SERVERS,
    variants: VARIANTS,
    levels: opts.inboundLevels,
    levelsByVariant: { inbound: opts.inboundLevels, both_tracks: opts.quick ? both : both },
    // The quick run checks plumbing only: both_tracks on streamgate alone keeps it to seconds.
    // The full run adds the gateway without its recording sink (inbound), to price recording.
    serversByVariant: opts.quick ? { both_tracks: ['streamgate'] } : { inbound: opts.inboundServers ?? ['streamgate', 'streamgate-norec', 'discard', 'naive'] },
    warmupMs: opts.warmupMs,
    measureMs: opts.measureMs,
    outDir: opts.outDir,
    quietWaitMs: opts.quick ? 0 : 120_000,
    maxAttempts: opts.quick ? 1 : 3,
    profile: opts.profile ? { streams: 0, variant: 'inbound', measureMs: 6000 } : null,
    log,
  });
  const md = resultsMarkdown({ decode, ingest, command: opts.command, quick: opts.quick, startedAt, durationS: (Date.now() - t0) / 1000 });
  if (opts.json !== null) writeFileSync(opts.json, JSON.stringify({ machine: machineInfo(), decode, ingest }, null, 2));
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
