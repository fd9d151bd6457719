/**
 * A token bucket per client key that only failures drain: each failed attempt takes one token,
 * tokens come back at a steady rate, and a key with no token left is refused until one has.
 * The table is bounded: when full, the least recently failed key is forgotten (its bucket has
 * most likely refilled anyway, which is the same as no entry).
 */
export interface FailureLimiterOptions {
  /** Failures allowed in a burst (default 10). */
  burst?: number;
  /** Tokens regained per second (default 1). */
  perSecond?: number;
  /** Keys remembered at most (default 10 000). */
  maxKeys?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  /** ms of the last refill. */
  at: number;
}

export class FailureLimiter {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** Insertion order = least recently failed first. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(opts: FailureLimiterOptions = {}) {
    this.#burst = opts.burst ?? 10;
    this.#perMs = (opts.perSecond ?? 1) / 1000;
    this.#maxKeys = opts.maxKeys ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** 0 when `key` may try now, else the whole seconds until it may (for Retry-After). */
  retryAfterSeconds(key: string): number {
    const b = this.#buckets.get(key);
    if (b === undefined) return 0;
    const tokens = this.#refill(b);
    if (tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - tokens) / this.#perMs / 1000));
  }

  /** Records one failure of `key`. */
  fail(key: string): void {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.#burst, at: this.#now() };
      this.#makeRoom();
    } else {
      this.#refill(b);
      this.#buckets.delete(key);
    }
    b.tokens = Math.max(0, b.tokens - 1);
    this.#buckets.set(key, b);
  }

  #refill(b: Bucket): number {
    const now = this.#now();
    b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) * this.#perMs);
    b.at = now;
    return b.tokens;
  }

  #makeRoom(): void {
    while (this.#buckets.size >= this.#maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest === undefined) break;
      this.#buckets.delete(oldest);
    }
  }
}
