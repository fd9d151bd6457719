/**
 * A label-free Prometheus histogram cheap enough to observe once per media frame.
 *
 * prom-client's Histogram#observe hashes a label object and builds a closure per call; on the
 * hot path we only bump a bucket counter in a Float64Array and render the standard
 * `_bucket{le}` / `_sum` / `_count` series at scrape time. It registers like any prom-client
 * metric (the registry only needs `name`, `help`, `type` and `get()`).
 */
import type { Registry } from 'prom-client';

export class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: Float64Array;
  /** counts[i] = observations <= bounds[i] and > bounds[i-1]; the last slot is +Inf. */
  readonly #counts: Float64Array;
  #sum = 0;

  constructor(opts: { name: string; help: string; buckets: number[]; registers: Registry[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.#bounds = Float64Array.from([...opts.buckets].sort((a, b) => a - b));
    this.#counts = new Float64Array(this.#bounds.length + 1);
    for (const r of opts.registers) r.registerMetric(this as never);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.#counts[i]!++;
    this.#sum += value;
  }

  get count(): number {
    let n = 0;
    for (let i = 0; i < this.#counts.length; i++) n += this.#counts[i]!;
    return n;
  }

  /** Value below which `q` (0..1) of observations fall, to bucket precision (for logs and tests). */
  quantileUpperBound(q: number): number {
    const total = this.count;
    let seen = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= q * total) return this.#bounds[i]!;
    }
    return Infinity;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: { metricName: string; labels: Record<string, string | number>; value: number }[] } {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += this.#counts[i]!;
      values.push({ metricName: `${this.name}_bucket`, labels: { le: this.#bounds[i]! }, value: cumulative });
    }
    cumulative += this.#counts[this.#bounds.length]!;
    values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: cumulative });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.#sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: cumulative });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
