/**
 * One coarse ticker for every paced stream of a Sim (undici's timers idea): instead of a
 * timer per stream, a single interval wakes up a few times per frame period and lets each
 * stream send whatever has come due. A stream's schedule is absolute (start + offset / speed),
 * so a late tick delays frames but never makes a stream drift.
 */

/** Something that sends what is due at `now` (performance.now() ms). */
export interface Paced {
  pump(now: number): void;
}

export class Pacer {
  /** Real milliseconds between ticks. */
  readonly tickMs: number;
  readonly #members = new Set<Paced>();
  #timer: NodeJS.Timeout | null = null;

  /** `speed` > 0: frames are 20 ms / speed apart; the tick is a quarter of that, 1..5 ms. */
  constructor(speed: number) {
    this.tickMs = Math.max(1, Math.min(5, 20 / speed / 4));
  }

  add(member: Paced): void {
    this.#members.add(member);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), this.tickMs);
    }
  }

  remove(member: Paced): void {
    this.#members.delete(member);
    if (this.#members.size === 0 && this.#timer !== null) {
      // No idle timer: a Sim with no live streams lets the process exit.
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  close(): void {
    this.#members.clear();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #tick(): void {
    const now = performance.now();
    // A member may remove itself while pumping; Set iteration tolerates that.
    for (const m of this.#members) m.pump(now);
  }
}
