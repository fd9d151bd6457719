/**
 * CPU time of each thread of a process (Linux: /proc/<pid>/task/<tid>/schedstat, ns on CPU), so
 * a phase's work can be split between the event loop's thread and the rest (the recording I/O
 * thread, libuv's pool, V8's GC helpers), which share its pinned core. Empty where /proc has none.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** ms on CPU so far, by thread id. */
export function threadCpuMs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      out.set(Number(tid), Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

export interface ThreadCpuSplit {
  /** The main thread (the event loop). */
  mainMs: number;
  /** Every other thread together. */
  otherMs: number;
  /** The busiest other threads, ms each, busiest first. */
  others: number[];
}

/** CPU spent between two {@link threadCpuMs} readings, split main thread / the rest. */
export function threadCpuSplit(pid: number, before: Map<number, number>, after: Map<number, number>): ThreadCpuSplit {
  let mainMs = 0;
  const others: number[] = [];
  for (const [tid, ms] of after) {
    const d = ms - (before.get(tid) ?? 0);
    if (tid === pid) mainMs = d;
    else if (d > 0) others.push(d);
  }
  others.sort((a, b) => b - a);
  return { mainMs, otherMs: others.reduce((a, b) => a + b, 0), others: others.slice(0, 4) };
}
