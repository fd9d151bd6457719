/**
 * Speech engines side by side: the gateway's CPU per stream with TRANSCRIPTION = none,
 * pocketsphinx, deepgram and vosk (the remote ones against a local service peer,
 * bench/peers/asr-service.ts), and for the remote engines the time from the load generator
 * sending a frame to its audio arriving on the engine socket (p50/p99).
 *
 *   npx tsx bench/asr.bench.ts [--streams 4] [--measure-ms 10000] [--warmup-ms 3000] [--engines none,pocketsphinx,deepgram,vosk]
 *
 * The gateway runs pinned to core 0 with the production composition (recording, level meter,
 * transcription); the load generator (bench/load-generator.ts) on core 1; the service peer in
 * this process. CPU is the gateway's whole process tree (pocketsphinx's recogniser processes
 * included), from /proc, over the measured window. Short by design: the machine is shared.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GeneratorConfig, GeneratorEvent } from './load-generator.js';
import { spawnPinned, type PinnedChild } from './lib/procs.js';
import type { ReadyReport } from './lib/server-harness.js';
import { startAsrService, type AsrServicePeer } from './peers/asr-service.js';

const fromSource = import.meta.url.endsWith('.ts');
const childScript = (name: string) => join(fileURLToPath(new URL('.', import.meta.url)), fromSource ? `${name}.ts` : `${name}.js`);
const childArgs = fromSource ? ['--import', 'tsx'] : [];
const CLK_TCK = 100;

/** utime + stime (clock ticks) of `pid` and every process under it. */
function treeCpuTicks(pid: number): number {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    parent.set(Number(name), Number(f[1]));
    ticks.set(Number(name), Number(f[11]) + Number(f[12]));
  }
  let total = 0;
  for (const [p] of ticks) {
    for (let q: number | undefined = p; q !== undefined && q > 1; q = parent.get(q)) {
      if (q === pid) {
        total += ticks.get(p)!;
        break;
      }
    }
  }
  return total;
}

function quantile(v: number[], q: number): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

interface EngineResult {
  engine: string;
  streams: number;
  cpuPct: number;
  cpuPctPerStream: number;
  windowMs: number;
  framesSent: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencySamples: number;
  serviceConnections: number;
}

async function runEngine(engine: string, streams: number, warmupMs: number, measureMs: number): Promise<EngineResult> {
  const remote = engine === 'deepgram' || engine === 'vosk';
  const service: AsrServicePeer | null = remote ? await startAsrService() : null;
  const dataDir = mkdtempSync(join(tmpdir(), `streamgate-asr-bench-${engine}-`));
  let srv: PinnedChild | null = null;
  let gen: PinnedChild | null = null;
  try {
    srv = spawnPinned(childScript('asr-gateway-server'), 0, {
      env: { BENCH_DATA_DIR: dataDir, BENCH_TRANSCRIPTION: engine, BENCH_STREAMS: String(streams), ...(service ? { BENCH_SERVICE_URL: service.url } : {}) },
      nodeArgs: childArgs,
    });
    const ready = await srv.next<ReadyReport>('ready', 30_000);
    gen = spawnPinned(childScript('load-generator'), 1, { nodeArgs: childArgs });
    let t0 = 0;
    let c0 = 0;
    let lat0 = 0;
    let t1 = 0;
    let c1 = 0;
    let lat1 = 0;
    gen.onMessage((m) => {
      const e = m as GeneratorEvent;
      if (e.type === 'measure-start') {
        t0 = performance.now();
        c0 = treeCpuTicks(ready.pid);
        lat0 = service?.latencies.length ?? 0;
      } else if (e.type === 'measure-end') {
        t1 = performance.now();
        c1 = treeCpuTicks(ready.pid);
        lat1 = service?.latencies.length ?? 0;
      }
    });
    const done = gen.next<Extract<GeneratorEvent, { type: 'done' }>>('done', 120_000 + warmupMs + measureMs);
    gen.send({ port: ready.port, streams, bothTracks: false, warmupMs, measureMs } satisfies GeneratorConfig);
    const report = (await done).report;
    const windowMs = t1 - t0;
    const cpuPct = ((c1 - c0) / CLK_TCK / (windowMs / 1000)) * 100;
    const lat = service?.latencies.slice(lat0, lat1) ?? [];
    return {
      engine,
      streams,
      cpuPct,
      cpuPctPerStream: cpuPct / streams,
      windowMs,
      framesSent: report.sentInWindow,
      latencyP50Ms: quantile(lat, 0.5),
      latencyP99Ms: quantile(lat, 0.99),
      latencySamples: lat.length,
      serviceConnections: service?.connections ?? 0,
    };
  } finally {
    await gen?.stop(3000);
    await srv?.stop(5000);
    await service?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const val = (f: string, d: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1]! : d;
  };
  const streams = Number(val('--streams', '4'));
  const measureMs = Number(val('--measure-ms', '10000'));
  const warmupMs = Number(val('--warmup-ms', '3000'));
  const engines = val('--engines', 'none,pocketsphinx,deepgram,vosk').split(',');
  const results: EngineResult[] = [];
  for (const engine of engines) {
    const r = await runEngine(engine, streams, warmupMs, measureMs);
    results.push(r);
    console.log(
      `${engine.padEnd(12)} N=${streams} gateway tree CPU ${r.cpuPct.toFixed(1)} % (${r.cpuPctPerStream.toFixed(2)} %/stream) ` +
        `frames ${r.framesSent} window ${(r.windowMs / 1000).toFixed(1)} s` +
        (r.latencySamples > 0 ? `  sent→engine socket p50 ${r.latencyP50Ms.toFixed(2)} ms p99 ${r.latencyP99Ms.toFixed(2)} ms (${r.latencySamples} frames, ${r.serviceConnections} connections)` : ''),
    );
  }
  const none = results.find((r) => r.engine === 'none');
  console.log('\n| engine | streams | gateway CPU (process tree) | per stream | over `none`, per stream | frame sent → engine socket p50 / p99 |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    const over = none === undefined ? NaN : (r.cpuPct - none.cpuPct) / r.streams;
    const lat = r.latencySamples > 0 ? `${r.latencyP50Ms.toFixed(2)} / ${r.latencyP99Ms.toFixed(2)} ms` : 'n/a';
    console.log(`| ${r.engine} | ${r.streams} | ${r.cpuPct.toFixed(1)} % | ${r.cpuPctPerStream.toFixed(2)} % | ${r.engine === 'none' ? '-' : `${over.toFixed(2)} %`} | ${lat} |`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
