/**
 * Remembers the webhook deliveries already acted on, so that a captured, validly signed
 * callback sent again (X-Twilio-Signature covers the body, not the time) has no second effect.
 * A delivery is named by its subject (ConferenceSid or StreamSid, plus the participant's
 * CallSid), its event and its SequenceNumber or Timestamp: two genuine callbacks never share
 * all of them. The memory is bounded by age (`windowMs`) and count (`maxEntries`, oldest
 * forgotten first).
 */
export interface ReplayWindowOptions {
  /** How long a delivery is remembered (default 15 min). */
  windowMs?: number;
  /** Deliveries remembered at most (default 20 000). */
  maxEntries?: number;
  now?: () => number;
}

export class ReplayWindow {
  readonly #windowMs: number;
  readonly #max: number;
  readonly #now: () => number;
  /** key → ms first seen; insertion order = oldest first. */
  readonly #seen = new Map<string, number>();

  constructor(opts: ReplayWindowOptions = {}) {
    this.#windowMs = opts.windowMs ?? 15 * 60_000;
    this.#max = opts.maxEntries ?? 20_000;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** True when `parts` were seen within the window (a replay); else remembers them and returns false. */
  replayed(...parts: (string | undefined)[]): boolean {
    const now = this.#now();
    this.#expire(now);
    const key = parts.map((p) => p ?? '').join('\n');
    if (this.#seen.has(key)) return true;
    this.#seen.set(key, now);
    if (this.#seen.size > this.#max) {
      const oldest = this.#seen.keys().next().value;
      if (oldest !== undefined) this.#seen.delete(oldest);
    }
    return false;
  }

  #expire(now: number): void {
    for (const [key, at] of this.#seen) {
      if (now - at < this.#windowMs) return;
      this.#seen.delete(key);
    }
  }
}
