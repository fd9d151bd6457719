/**
 * A fixed-resolution latency histogram cheap enough to record once per frame in a server under
 * test: 5 µs buckets up to 200 ms (one Uint32Array, no allocation per record), the exact max,
 * and an overflow count beyond the last bucket.
 */

const BUCKET_MS = 0.005;
const BUCKETS = 40_000; // 200 ms

export interface LagSnapshot {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
  /** Frames whose stamp was missing or in the future (clock trouble); not in the percentiles. */
  invalid: number;
}

export class LagRecorder {
  readonly #counts = new Uint32Array(BUCKETS + 1);
  #n = 0;
  #sum = 0;
  #max = 0;
  #invalid = 0;

  record(lagMs: number): void {
    // NaN (no stamp) fails every comparison, so it lands here too.
    if (!(lagMs >= -0.05)) {
      this.#invalid++;
      return;
    }
    const v = lagMs < 0 ? 0 : lagMs;
    const i = Math.floor(v / BUCKET_MS);
    this.#counts[i < BUCKETS ? i : BUCKETS]!++;
    this.#n++;
    this.#sum += v;
    if (v > this.#max) this.#max = v;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#n = 0;
    this.#sum = 0;
    this.#max = 0;
    this.#invalid = 0;
  }

  #quantile(q: number): number {
    const target = Math.ceil(q * this.#n);
    let seen = 0;
    for (let i = 0; i <= BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= target) return i === BUCKETS ? this.#max : (i + 1) * BUCKET_MS;
    }
    return this.#max;
  }

  snapshot(): LagSnapshot {
    if (this.#n === 0) return { count: 0, p50Ms: NaN, p99Ms: NaN, p999Ms: NaN, maxMs: NaN, meanMs: NaN, invalid: this.#invalid };
    return {
      count: this.#n,
      p50Ms: this.#quantile(0.5),
      p99Ms: this.#quantile(0.99),
      p999Ms: this.#quantile(0.999),
      maxMs: this.#max,
      meanMs: this.#sum / this.#n,
      invalid: this.#invalid,
    };
  }
}
