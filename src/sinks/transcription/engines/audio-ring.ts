/**
 * The bounded queue between `EngineSession.write` (the hot path) and a recogniser's input,
 * and the bookkeeping that keeps media-clock times right across gaps, drops and restarts.
 *
 * AudioRing: 16 kHz samples in a power-of-two ring, addressed by absolute positions that only
 * grow (index = position & mask). Audio already sent to the recogniser stays until a result
 * shows it was decoded (`commit`), so a recogniser that crashes can be given it again
 * (`rewind`). The writer never waits: when the ring is full it first forgets sent audio, then
 * drops the oldest unsent audio (at least DROP_MIN_SAMPLES at once, so a stalled reader costs
 * one drop event per ~0.5 s, not one per frame).
 *
 *     committed          read                         write
 *   ──────┼── sent ───────┼──────── unsent audio ───────┼──── free ────
 *         ▲ seg(pos, mediaMs)             ▲ seg              (a new segment starts where media time jumps)
 *
 * Each segment says "the sample at ring position `pos` was captured at media time `mediaMs`";
 * samples after it, up to the next segment, follow at 16 per ms.
 *
 * TimeMap: the same idea on the recogniser's side. The pump records, for each chunk it hands
 * the recogniser, "input sample `enginePos` is media time `mediaMs`", merging chunks that
 * continue the previous one. Dropped audio never reaches the recogniser, so its positions and
 * the ring's diverge; mapping through the recogniser's own positions stays correct.
 */

/** 16 kHz samples per media millisecond. */
export const SAMPLES_PER_MS_16K = 16;
/** Dropping less than this at a time would drop again on the very next frame. */
const DROP_MIN_SAMPLES = 8000;
/** A timestamp this far (ms) from where the previous frame ended starts a new segment. */
const GAP_TOLERANCE_MS = 1;

export class AudioRing {
  readonly #buf: Int16Array;
  readonly #mask: number;
  #committed = 0;
  #read = 0;
  #write = 0;
  /** Segment starts (absolute positions) and their media times, oldest first. */
  readonly #segPos: number[] = [];
  readonly #segMs: number[] = [];
  /** Media time the next write continues from; NaN before the first write. */
  #nextMs = Number.NaN;
  /** Samples dropped since construction. */
  droppedSamples = 0;

  /** `capacity` is rounded up to a power of two. */
  constructor(capacity: number) {
    let size = 1024;
    while (size < capacity) size *= 2;
    this.#buf = new Int16Array(size);
    this.#mask = size - 1;
  }

  get capacity(): number {
    return this.#buf.length;
  }

  /** Unsent samples. */
  get available(): number {
    return this.#write - this.#read;
  }

  /** Absolute position of the next sample to read. */
  get readPos(): number {
    return this.#read;
  }

  /**
   * Appends `n` samples of `src` captured from media time `mediaMs`; returns how many samples
   * of older audio it dropped to make room (0 normally).
   */
  push(src: Int16Array, n: number, mediaMs: number): number {
    let from = 0;
    if (n > this.#buf.length) {
      // Larger than the whole ring: only its newest part can be kept.
      from = n - this.#buf.length;
      mediaMs += from / SAMPLES_PER_MS_16K;
      this.droppedSamples += from;
    }
    const count = n - from;
    let dropped = from;
    const free = this.#buf.length - (this.#write - this.#committed);
    if (count > free) {
      // Sent audio goes first: losing it only loses the chance to replay it after a crash.
      const forget = Math.min(count - free, this.#read - this.#committed);
      this.#committed += forget;
      if (count - free > forget) dropped += this.#dropOldest(Math.max(count - free - forget, DROP_MIN_SAMPLES));
    }
    if (!(Math.abs(mediaMs - this.#nextMs) < GAP_TOLERANCE_MS)) {
      this.#segPos.push(this.#write);
      this.#segMs.push(mediaMs);
    }
    this.#nextMs = mediaMs + count / SAMPLES_PER_MS_16K;
    const buf = this.#buf;
    const mask = this.#mask;
    let w = this.#write;
    for (let i = from; i < n; i++) buf[w++ & mask] = src[i]!;
    this.#write = w;
    return dropped;
  }

  /** Media time of the sample at absolute position `pos` (at or after the committed position). */
  mediaMsAt(pos: number): number {
    let i = this.#segPos.length - 1;
    while (i > 0 && this.#segPos[i]! > pos) i--;
    return this.#segMs[i]! + (pos - this.#segPos[i]!) / SAMPLES_PER_MS_16K;
  }

  /**
   * Reads up to `max` samples into `dst` (from index 0), stopping at the next segment start so
   * a chunk is always continuous in media time. Returns the count read.
   */
  read(dst: Int16Array, max: number): number {
    let end = Math.min(this.#write, this.#read + max);
    for (let i = 0; i < this.#segPos.length; i++) {
      const p = this.#segPos[i]!;
      if (p > this.#read) {
        if (p < end) end = p;
        break;
      }
    }
    const buf = this.#buf;
    const mask = this.#mask;
    let r = this.#read;
    for (let i = 0; r < end; i++) dst[i] = buf[r++ & mask]!;
    const n = r - this.#read;
    this.#read = r;
    this.#pruneSegments();
    return n;
  }

  #dropOldest(want: number): number {
    const n = Math.min(want, this.available);
    this.#read += n;
    this.#committed = this.#read;
    this.droppedSamples += n;
    this.#pruneSegments();
    return n;
  }

  /** The recogniser has decoded everything before `pos`: that audio need not be kept. */
  commit(pos: number): void {
    if (pos > this.#read) pos = this.#read;
    if (pos <= this.#committed) return;
    this.#committed = pos;
    this.#pruneSegments();
  }

  /** Makes sent but uncommitted audio unsent again (for a restarted recogniser); returns its length. */
  rewind(): number {
    const n = this.#read - this.#committed;
    this.#read = this.#committed;
    return n;
  }

  /** Forgets segments that end at or before the committed position (the last one always stays). */
  #pruneSegments(): void {
    let k = 0;
    while (k + 1 < this.#segPos.length && this.#segPos[k + 1]! <= this.#committed) k++;
    if (k > 0) {
      this.#segPos.splice(0, k);
      this.#segMs.splice(0, k);
    }
  }
}

/** Entries kept at most; only media-time jumps add entries, and results prune them. */
const TIME_MAP_LIMIT = 4096;

/**
 * Recogniser input position → media time (and ring position, for `commit`), for one
 * recogniser process (see file comment).
 */
export class TimeMap {
  readonly #pos: number[] = [];
  readonly #ms: number[] = [];
  readonly #ring: number[] = [];

  /**
   * Records that input sample `enginePos` onwards is media time `mediaMs` onwards, read from
   * ring position `ringPos` onwards.
   */
  append(enginePos: number, mediaMs: number, ringPos: number): void {
    const last = this.#pos.length - 1;
    if (last >= 0) {
      const offset = enginePos - this.#pos[last]!;
      const expected = this.#ms[last]! + offset / SAMPLES_PER_MS_16K;
      if (Math.abs(expected - mediaMs) < 0.5 && this.#ring[last]! + offset === ringPos) return;
    }
    if (this.#pos.length >= TIME_MAP_LIMIT) {
      this.#pos.shift();
      this.#ms.shift();
      this.#ring.shift();
    }
    this.#pos.push(enginePos);
    this.#ms.push(mediaMs);
    this.#ring.push(ringPos);
  }

  /**
   * Ring position of the audio at input sample `enginePos` (an upper bound inside separator
   * silence, which has no ring position); NaN before the first entry.
   */
  toRingPos(enginePos: number): number {
    let i = this.#pos.length - 1;
    while (i >= 0 && this.#pos[i]! > enginePos) i--;
    if (i < 0) return Number.NaN;
    return this.#ring[i]! + (enginePos - this.#pos[i]!);
  }

  /** Media time of input sample `enginePos`; NaN before the first entry (e.g. the primer). */
  toMediaMs(enginePos: number): number {
    let i = this.#pos.length - 1;
    while (i >= 0 && this.#pos[i]! > enginePos) i--;
    if (i < 0) return Number.NaN;
    return this.#ms[i]! + (enginePos - this.#pos[i]!) / SAMPLES_PER_MS_16K;
  }

  /** Drops entries wholly before `enginePos`: nothing earlier will be asked for again. */
  pruneBefore(enginePos: number): void {
    let k = 0;
    while (k + 1 < this.#pos.length && this.#pos[k + 1]! <= enginePos) k++;
    if (k > 0) {
      this.#pos.splice(0, k);
      this.#ms.splice(0, k);
      this.#ring.splice(0, k);
    }
  }

  /** A new recogniser process starts counting from zero. */
  reset(): void {
    this.#pos.length = 0;
    this.#ms.length = 0;
    this.#ring.length = 0;
  }

  get size(): number {
    return this.#pos.length;
  }
}
