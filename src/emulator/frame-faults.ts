/**
 * Per-stream fault stages between frame generation and the socket:
 *
 *   audio tick ─► Rechunker (odd chunk sizes) ─► silence suppression ─► numbering
 *              ─► FaultPipeline: drop ─► duplicate ─► reorder ─► delay marker ─► outbox
 *
 * Numbering happens before loss, so a dropped frame leaves a gap in sequenceNumber, chunk and
 * timestamp, exactly what a receiver sees when Twilio loses one. Suppressed silence leaves a
 * gap in timestamp only (nothing was generated). Every random choice comes from a seeded PRNG,
 * one per fault kind, so enabling one fault does not change which frames another picks.
 */
import { FRAME_BYTES } from './audio-source.js';
import type { FrameSelector, MediaTrack, StreamFaults } from './types.js';

/** mulberry32: small, fast, good enough to pick frames reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decides, frame by frame, whether a selector picks it. */
export class Selector {
  readonly #frames: ReadonlySet<number> | null;
  readonly #rate: number;
  readonly #random: () => number;

  constructor(sel: FrameSelector, seed: number) {
    this.#frames = sel.frames !== undefined && sel.frames.length > 0 ? new Set(sel.frames) : null;
    this.#rate = sel.rate ?? 0;
    this.#random = prng(seed);
  }

  picks(ordinal: number): boolean {
    // Draw for every frame, listed or not, so the random choices depend only on the ordinal.
    const drawn = this.#rate > 0 && this.#random() < this.#rate;
    return drawn || (this.#frames !== null && this.#frames.has(ordinal));
  }
}

/** Marker in an outbox: stall sending for `ms` real milliseconds. */
export interface StallMarker {
  stallMs: number;
}
export type OutboxItem = string | StallMarker;

/**
 * Loss, duplication, reordering and delay of numbered media messages.
 * `push` appends what goes out now to `out`; `flush` releases held messages (before `stop`).
 */
export class FaultPipeline {
  readonly #drop: Selector | null;
  readonly #duplicate: Selector | null;
  readonly #reorder: Selector | null;
  readonly #reorderBy: number;
  readonly #delay: Selector | null;
  readonly #delayMs: number;
  /** Held messages and how many later messages must pass before each is released. */
  #held: { text: string; wait: number }[] = [];
  dropped = 0;
  duplicated = 0;
  reordered = 0;

  constructor(f: StreamFaults) {
    const seed = f.seed ?? 1;
    this.#drop = f.drop !== undefined ? new Selector(f.drop, seed) : null;
    this.#duplicate = f.duplicate !== undefined ? new Selector(f.duplicate, seed + 1) : null;
    this.#reorder = f.reorder !== undefined ? new Selector(f.reorder, seed + 2) : null;
    this.#reorderBy = Math.max(1, f.reorder?.by ?? 1);
    this.#delay = f.delay !== undefined ? new Selector(f.delay, seed + 3) : null;
    this.#delayMs = f.delay?.ms ?? 0;
  }

  push(text: string, ordinal: number, out: OutboxItem[]): void {
    if (this.#delay !== null && this.#delay.picks(ordinal) && this.#delayMs > 0) out.push({ stallMs: this.#delayMs });
    if (this.#drop !== null && this.#drop.picks(ordinal)) {
      this.dropped++;
      return;
    }
    const copies = this.#duplicate !== null && this.#duplicate.picks(ordinal) ? 2 : 1;
    if (copies === 2) this.duplicated++;
    if (this.#reorder !== null && this.#reorder.picks(ordinal)) {
      this.reordered++;
      for (let c = 0; c < copies; c++) this.#held.push({ text, wait: this.#reorderBy });
      return;
    }
    for (let c = 0; c < copies; c++) this.#emit(text, out);
  }

  /** Sends every held message (the stream is stopping). */
  flush(out: OutboxItem[]): void {
    for (const h of this.#held) out.push(h.text);
    this.#held = [];
  }

  #emit(text: string, out: OutboxItem[]): void {
    out.push(text);
    if (this.#held.length === 0) return;
    const still: { text: string; wait: number }[] = [];
    for (const h of this.#held) {
      if (--h.wait <= 0) out.push(h.text);
      else still.push(h);
    }
    this.#held = still;
  }
}

/**
 * Re-cuts a track's byte stream into payloads of the given sizes, cycled. Each chunk's
 * timestamp is the media time of its first byte (8 bytes per ms, rounded down).
 */
export class Rechunker {
  readonly #sizes: readonly number[];
  readonly #state: Record<MediaTrack, { buf: Uint8Array; len: number; startSamples: number; cycle: number; base: number | null }>;

  constructor(sizes: readonly number[]) {
    const clean = sizes.filter((s) => Number.isInteger(s) && s > 0);
    this.#sizes = clean.length > 0 ? clean : [FRAME_BYTES];
    const cap = Math.max(FRAME_BYTES, ...this.#sizes) * 2;
    this.#state = {
      inbound: { buf: new Uint8Array(cap), len: 0, startSamples: 0, cycle: 0, base: null },
      outbound: { buf: new Uint8Array(cap), len: 0, startSamples: 0, cycle: 0, base: null },
    };
  }

  /** Adds a frame of `track` whose first byte plays at `timestamp`; emits complete chunks. */
  push(track: MediaTrack, bytes: Uint8Array, timestamp: number, emit: (track: MediaTrack, chunk: Uint8Array, timestamp: number) => void): void {
    const s = this.#state[track];
    if (s.base === null) s.base = timestamp;
    if (s.len + bytes.length > s.buf.length) {
      const bigger = new Uint8Array((s.len + bytes.length) * 2);
      bigger.set(s.buf.subarray(0, s.len));
      s.buf = bigger;
    }
    s.buf.set(bytes, s.len);
    s.len += bytes.length;
    for (;;) {
      const size = this.#sizes[s.cycle % this.#sizes.length]!;
      if (s.len < size) break;
      emit(track, s.buf.slice(0, size), s.base + Math.floor(s.startSamples / 8));
      s.buf.copyWithin(0, size, s.len);
      s.len -= size;
      s.startSamples += size;
      s.cycle++;
    }
  }

  /** Emits what is left of each track as a last, short chunk. */
  flush(emit: (track: MediaTrack, chunk: Uint8Array, timestamp: number) => void): void {
    for (const track of ['inbound', 'outbound'] as const) {
      const s = this.#state[track];
      if (s.len === 0 || s.base === null) continue;
      emit(track, s.buf.slice(0, s.len), s.base + Math.floor(s.startSamples / 8));
      s.startSamples += s.len;
      s.len = 0;
    }
  }
}
