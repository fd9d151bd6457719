/**
 * Round-based micro-benchmark timing: each case is a function running `iterations` of its own
 * loop (one loop per case, so V8 never sees a megamorphic call site shared by contenders).
 * Rounds interleave the cases in a rotating order, so drift on a shared machine (frequency,
 * neighbours) spreads over every case instead of landing on one.
 */
import { summarize, type Summary } from './stats.js';

export interface TimedCase {
  name: string;
  /** Runs the operation `iterations` times; returns something derived from the results. */
  run(iterations: number): number;
}

export interface CaseResult {
  name: string;
  /** Nanoseconds per operation over the rounds. */
  ns: Summary;
  iterationsPerRound: number;
}

/** Keeps results observable so the optimiser cannot drop the work. */
export let blackhole = 0;

export function timeCases(cases: readonly TimedCase[], opts: { rounds: number; roundMs: number; warmupMs: number }): CaseResult[] {
  const iters: number[] = [];
  for (const c of cases) {
    // Warm up (tier up to optimised code), then size a round to roughly roundMs.
    let n = 256;
    const until = performance.now() + opts.warmupMs;
    let perOp = 0;
    do {
      const t0 = performance.now();
      blackhole += c.run(n);
      perOp = (performance.now() - t0) / n;
      if (performance.now() - t0 < 5) n *= 2;
    } while (performance.now() < until);
    iters.push(Math.max(64, Math.round(opts.roundMs / Math.max(perOp, 1e-7))));
  }
  const samples: number[][] = cases.map(() => []);
  for (let r = 0; r < opts.rounds; r++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (k + r) % cases.length;
      const n = iters[i]!;
      const t0 = process.hrtime.bigint();
      blackhole += cases[i]!.run(n);
      const dt = Number(process.hrtime.bigint() - t0);
      samples[i]!.push(dt / n);
    }
  }
  return cases.map((c, i) => ({ name: c.name, ns: summarize(samples[i]!), iterationsPerRound: iters[i]! }));
}
