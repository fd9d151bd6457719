/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and ranks functions by self time, and a few
 * named entry points by inclusive time, for bench/RESULTS.md.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  fn: string;
  where: string;
  selfPct: number;
  selfMs: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of samples the process was busy (not `(idle)`). */
  busyPct: number;
  top: ProfileRow[];
  /** Inclusive share of busy time for each requested function name. */
  inclusive: { fn: string; pct: number }[];
}

function where(url: string, line: number): string {
  if (url === '') return '';
  const m = /(node_modules\/(?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  const short = m ? `${m[1]!.replace('node_modules/', '')}/${m[2]!.split('/').pop()}` : url.replace(/^file:\/\/.*?\/dist\//, '').replace(/^node:/, 'node:');
  return `${short}:${line + 1}`;
}

/**
 * `window` limits the summary to samples taken in [fromMs, toMs] of CLOCK_MONOTONIC: V8 stamps
 * profiles with base::TimeTicks, which on Linux is CLOCK_MONOTONIC in µs, so a `--cpu-prof`
 * profile of a whole process can be cut to the bench's measured window.
 */
export function summarizeCpuProfile(path: string, inclusiveOf: readonly string[] = [], topN = 25, window?: { fromMs: number; toMs: number }): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  let total = 0;
  let t = p.startTime;
  const from = window ? window.fromMs * 1000 : -Infinity;
  const to = window ? window.toMs * 1000 : Infinity;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < from || t > to) continue;
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    total += dt;
  }
  let idle = 0;
  const agg = new Map<string, ProfileRow>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)') {
      idle += us;
      continue;
    }
    const w = where(n.callFrame.url, n.callFrame.lineNumber);
    const key = `${fn}@${w}`;
    const row = agg.get(key) ?? { fn, where: w, selfPct: 0, selfMs: 0 };
    row.selfMs += us / 1000;
    agg.set(key, row);
  }
  const busy = total - idle;
  const top = [...agg.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, topN);
  for (const r of top) r.selfPct = busy > 0 ? ((r.selfMs * 1000) / busy) * 100 : 0;

  // Inclusive time: a sample counts for a function if the function is on its stack (once).
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = inclusiveOf.map((spec) => {
    // "name" or "name@part-of-url" (several functions share a name: accept, write, read).
    const [fn, urlPart] = spec.split('@') as [string, string | undefined];
    let us = 0;
    for (const [id, t] of selfUs) {
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const cf = byId.get(cur)!.callFrame;
        if (cf.functionName === fn && (urlPart === undefined || cf.url.includes(urlPart))) {
          us += t;
          break;
        }
      }
    }
    return { fn: spec, pct: busy > 0 ? (us / busy) * 100 : 0 };
  });
  return { totalMs: total / 1000, busyPct: total > 0 ? (busy / total) * 100 : 0, top, inclusive };
}
