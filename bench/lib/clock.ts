/**
 * One clock for every bench process: CLOCK_MONOTONIC in milliseconds.
 *
 * Ingest lag is "send time in the load generator → sink write in the server", two processes on
 * one machine. `Date.now()` has 1 ms resolution and can be slewed; `performance.now()` counts
 * from each process's own origin. `process.hrtime` reads CLOCK_MONOTONIC, which is
 * system-wide, and `performance.now()` is derived from the same uv_hrtime, so the offset
 * between the two is a constant per process: we measure it once and then read the cheap
 * `performance.now()` (no BigInt per call) on the shared clock.
 */

function calibrate(): number {
  // Take the tightest of a few brackets so a descheduling between the two reads does not skew it.
  let best = Infinity;
  let offset = 0;
  for (let i = 0; i < 50; i++) {
    const a = performance.now();
    const mono = Number(process.hrtime.bigint()) / 1e6;
    const b = performance.now();
    if (b - a < best) {
      best = b - a;
      offset = mono - (a + b) / 2;
    }
  }
  return offset;
}

const OFFSET = calibrate();

/** CLOCK_MONOTONIC now, in ms (sub-µs resolution), comparable across processes. */
export function monoNowMs(): number {
  return performance.now() + OFFSET;
}

/** Converts a `performance.now()` value of this process to the shared clock. */
export function toMonoMs(perfNow: number): number {
  return perfNow + OFFSET;
}
