/**
 * CPU time and minor page faults of each thread of a process (Linux: /proc/<pid>/task/<tid>/
 * schedstat, ns on CPU, and stat's minflt), so a phase's work can be split between the event
 * loop's thread and the rest (the recording I/O thread, libuv's pool, V8's GC and compiler
 * helpers), which share its pinned core. Faults count first writes to pages the process never
 * had: ~15 µs each on this bench's VM against ~0.2 µs for a page it had before (bench/RESULTS.md,
 * "first touch"). Empty where /proc has none.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ThreadUse {
  /** ms on CPU so far. */
  ms: number;
  /** Minor page faults so far. */
  faults: number;
}

/** CPU and faults so far, by thread id. */
export function threadCpuMs(pid: number): Map<number, ThreadUse> {
  const out = new Map<number, ThreadUse>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const ms = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
      // stat: "pid (comm) state ppid …"; minflt is the 10th field, the 8th after the comm's ')'.
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const faults = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
      out.set(Number(tid), { ms, faults });
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
  /** Minor page faults of the main thread and of the rest (absent in runs saved before them). */
  mainFaults?: number;
  otherFaults?: number;
}

/** CPU and faults between two {@link threadCpuMs} readings, split main thread / the rest. */
export function threadCpuSplit(pid: number, before: Map<number, ThreadUse>, after: Map<number, ThreadUse>): ThreadCpuSplit {
  let mainMs = 0;
  let mainFaults = 0;
  let otherFaults = 0;
  const others: number[] = [];
  for (const [tid, use] of after) {
    const was = before.get(tid);
    const d = use.ms - (was?.ms ?? 0);
    const f = use.faults - (was?.faults ?? 0);
    if (tid === pid) {
      mainMs = d;
      mainFaults = f;
    } else {
      if (d > 0) others.push(d);
      otherFaults += f;
    }
  }
  others.sort((a, b) => b - a);
  return { mainMs, otherMs: others.reduce((a, b) => a + b, 0), others: others.slice(0, 4), mainFaults, otherFaults };
}
