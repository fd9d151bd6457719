/**
 * The audio a remote session keeps: 8 kHz mu-law bytes (one byte per sample, as Twilio sent
 * them) in a power-of-two ring addressed by absolute positions that only grow. At most `keep`
 * samples are held (ASR_REPLAY_SECONDS): writing more forgets the oldest (`tail` moves on); the
 * session decides what that forgetting means (replay data lost, or unsent audio dropped).
 *
 *        tail                                   write
 *   ──────┼──── kept (≤ keep samples) ────────────┼──── free
 *         ▲ seg(pos, mediaMs)    ▲ seg (a new segment starts where media time jumps)
 *
 * Segments map positions to the media clock, so gaps in Twilio's timestamps never shift times.
 */

/** A timestamp this far (ms) from where the previous frame ended starts a new segment. */
const GAP_TOLERANCE_MS = 1;
/** Segments kept at most (one per frame in the worst case; older ones only blur old times). */
const MAX_SEGMENTS = 4096;

export class MulawRing {
  readonly #buf: Uint8Array;
  readonly #mask: number;
  readonly keep: number;
  #tail = 0;
  #write = 0;
  readonly #segPos: number[] = [];
  readonly #segMs: number[] = [];
  #nextMs = Number.NaN;

  constructor(keepSamples: number) {
    this.keep = Math.max(160, Math.floor(keepSamples));
    let size = 1024;
    while (size < this.keep) size *= 2;
    this.#buf = new Uint8Array(size);
    this.#mask = size - 1;
  }

  get tail(): number {
    return this.#tail;
  }

  get writePos(): number {
    return this.#write;
  }

  /** Appends `n` bytes captured from media time `mediaMs`; the tail moves on past `keep`. */
  push(src: Uint8Array, n: number, mediaMs: number): void {
    if (!(Math.abs(mediaMs - this.#nextMs) < GAP_TOLERANCE_MS)) {
      this.#segPos.push(this.#write);
      this.#segMs.push(mediaMs);
      if (this.#segPos.length > MAX_SEGMENTS) {
        this.#segPos.shift();
        this.#segMs.shift();
      }
    }
    this.#nextMs = mediaMs + n / 8;
    const buf = this.#buf;
    const mask = this.#mask;
    let w = this.#write;
    for (let i = 0; i < n; i++) buf[w++ & mask] = src[i]!;
    this.#write = w;
    if (w - this.#tail > this.keep) this.#tail = w - this.keep;
  }

  /** Media time of absolute position `pos` (extrapolated from the nearest segment). */
  mediaMsAt(pos: number): number {
    let i = this.#segPos.length - 1;
    if (i < 0) return 0;
    while (i > 0 && this.#segPos[i]! > pos) i--;
    return this.#segMs[i]! + (pos - this.#segPos[i]!) / 8;
  }

  /** End of the media-continuous run that starts at `pos` (the next segment start, or the write position). */
  runEnd(pos: number): number {
    const segs = this.#segPos;
    let end = this.#write;
    for (let i = segs.length - 1; i >= 0 && segs[i]! > pos; i--) end = segs[i]!;
    return end;
  }

  /** Copies positions [from, to) (inside the kept range) into `dst` from index 0. */
  copy(from: number, to: number, dst: Uint8Array): void {
    const buf = this.#buf;
    const mask = this.#mask;
    for (let p = from, i = 0; p < to; p++, i++) dst[i] = buf[p & mask]!;
  }

  /** Forgets segments wholly before `pos` (nothing earlier will be asked for again). */
  pruneBefore(pos: number): void {
    let k = 0;
    while (k + 1 < this.#segPos.length && this.#segPos[k + 1]! <= pos) k++;
    if (k > 0) {
      this.#segPos.splice(0, k);
      this.#segMs.splice(0, k);
    }
  }
}

/** Entries kept at most per connection; only discontinuities add entries, finals prune them. */
const CONN_MAP_LIMIT = 4096;

/**
 * One connection's audio clock: "sample `connPos` of what this connection was sent is ring
 * position `ringPos`, media time `mediaMs`". A new connection starts at zero, so times the
 * service reports map back to the media clock across reconnects and drops.
 */
export class ConnectionClock {
  readonly #conn: number[] = [];
  readonly #ring: number[] = [];
  readonly #ms: number[] = [];
  /** Samples sent on this connection. */
  sent = 0;

  /** Records that the next `n` samples sent are ring positions `ringPos…`, media `mediaMs…`. */
  append(ringPos: number, mediaMs: number, n: number): void {
    const last = this.#conn.length - 1;
    const continues =
      last >= 0 &&
      this.#ring[last]! + (this.sent - this.#conn[last]!) === ringPos &&
      Math.abs(this.#ms[last]! + (this.sent - this.#conn[last]!) / 8 - mediaMs) < 0.5;
    if (!continues) {
      if (this.#conn.length >= CONN_MAP_LIMIT) {
        this.#conn.shift();
        this.#ring.shift();
        this.#ms.shift();
      }
      this.#conn.push(this.sent);
      this.#ring.push(ringPos);
      this.#ms.push(mediaMs);
    }
    this.sent += n;
  }

  #entry(connPos: number): number {
    let i = this.#conn.length - 1;
    while (i > 0 && this.#conn[i]! > connPos) i--;
    return i;
  }

  /** Ring position of connection sample `connPos` (clamped to what was sent). */
  ringPosAt(connPos: number): number {
    const i = this.#entry(connPos);
    if (i < 0) return 0;
    const p = Math.min(connPos, this.sent);
    return this.#ring[i]! + (p - this.#conn[i]!);
  }

  /** Media time of connection sample `connPos`. */
  mediaMsAt(connPos: number): number {
    const i = this.#entry(connPos);
    if (i < 0) return 0;
    return this.#ms[i]! + (connPos - this.#conn[i]!) / 8;
  }

  /** Drops entries wholly before `connPos`. */
  pruneBefore(connPos: number): void {
    let k = 0;
    while (k + 1 < this.#conn.length && this.#conn[k + 1]! <= connPos) k++;
    if (k > 0) {
      this.#conn.splice(0, k);
      this.#ring.splice(0, k);
      this.#ms.splice(0, k);
    }
  }
}
