/**
 * Remembers when (wall clock) recent audio was handed to the engine, by media time, so a
 * result's latency can be measured from the moment its last audio was written. A fixed ring
 * of (media end, wall) pairs, one per frame: no allocation per frame.
 */

/** Frames remembered: ~20 s of 20 ms frames, longer than any result waits. */
const SLOTS = 1024;

export class WriteClock {
  readonly #mediaEnd = new Float64Array(SLOTS);
  readonly #wall = new Float64Array(SLOTS);
  #count = 0;

  /** Audio up to `mediaEndMs` was written at `wallMs` (performance.now()). */
  record(mediaEndMs: number, wallMs: number): void {
    const i = this.#count % SLOTS;
    this.#mediaEnd[i] = mediaEndMs;
    this.#wall[i] = wallMs;
    this.#count++;
  }

  /**
   * Wall time at which audio reaching `mediaMs` had been written, or NaN when that audio is
   * older than the ring (or was never written).
   */
  wallAt(mediaMs: number): number {
    const n = Math.min(this.#count, SLOTS);
    let found = Number.NaN;
    // Newest first; the earliest frame whose end reaches mediaMs is the one that completed it.
    for (let k = 1; k <= n; k++) {
      const i = (this.#count - k) % SLOTS;
      // A result may end a frame past the audio (word ends are rounded up): the newest counts.
      if (this.#mediaEnd[i]! < mediaMs) return k === 1 ? this.#wall[i]! : found;
      found = this.#wall[i]!;
    }
    return found;
  }
}
