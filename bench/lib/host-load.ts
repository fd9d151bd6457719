/**
 * What else the machine did during a measured window. The bench shares its two cores with
 * whatever else runs on the host (other test suites, builds), and a neighbour on core 0 shows up
 * as ingest lag that is not the server's doing. So each window records, from /proc:
 *
 * - per core: busy share (user+nice+system+irq+steal), softirq share (the loopback network
 *   path runs there), to compare with the CPU our own pinned processes used;
 * - the server's main thread run-queue wait (/proc/<pid>/schedstat): time it was runnable but
 *   another task held its core, the direct measure of interference.
 */
import { readFileSync } from 'node:fs';

export interface CoreTimes {
  busy: number;
  softirq: number;
  total: number;
}

/** Jiffies per core from /proc/stat (empty when unavailable). */
export function readCores(): CoreTimes[] {
  try {
    const out: CoreTimes[] = [];
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const v = m[2]!.trim().split(/\s+/).map(Number);
      const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
      out[Number(m[1])] = { busy: user + nice + system + irq + steal, softirq, total: user + nice + system + idle + iowait + irq + softirq + steal };
    }
    return out;
  } catch {
    return [];
  }
}

export interface CoreShare {
  /** Busy share of the core over the interval, 0..100 (softirq excluded). */
  busyPct: number;
  softirqPct: number;
}

export function coreShares(a: CoreTimes[], b: CoreTimes[]): CoreShare[] {
  return b.map((y, i) => {
    const x = a[i] ?? { busy: 0, softirq: 0, total: 0 };
    const total = y.total - x.total || 1;
    return { busyPct: ((y.busy - x.busy) / total) * 100, softirqPct: ((y.softirq - x.softirq) / total) * 100 };
  });
}

/** Nanoseconds the thread `tid` of `pid` spent runnable but waiting for a CPU (NaN if unknown). */
export function runQueueWaitNs(pid: number, tid = pid): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ')[1]);
  } catch {
    return NaN;
  }
}

/** Share of all cores busy (softirq included) over `ms`, 0..100. */
export async function hostBusyPct(ms: number): Promise<number> {
  const a = readCores();
  await new Promise((r) => setTimeout(r, ms));
  const b = readCores();
  let busy = 0;
  let total = 0;
  b.forEach((y, i) => {
    const x = a[i];
    if (x === undefined) return;
    busy += y.busy + y.softirq - x.busy - x.softirq;
    total += y.total - x.total;
  });
  return total > 0 ? (busy / total) * 100 : 0;
}

/**
 * Waits until the host has been nearly idle for a second (other suites and builds share these
 * cores), at most `maxMs`. Returns the busy share last seen, so a report can say it ran anyway.
 */
export async function waitForQuiet(maxMs: number, thresholdPct = 12, onWait?: (busyPct: number) => void): Promise<number> {
  const until = Date.now() + maxMs;
  for (;;) {
    const busy = await hostBusyPct(1000);
    if (busy <= thresholdPct || Date.now() >= until) return busy;
    onWait?.(busy);
    await new Promise((r) => setTimeout(r, 2000));
  }
}
