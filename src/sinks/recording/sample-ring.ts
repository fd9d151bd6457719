/**
 * The recording's ring storage: sample frames in WAV file order (interleaved channels, 16-bit
 * little-endian or mu-law bytes), silent where nothing was placed. It knows slots, not time: the
 * timeline (timeline-buffer.ts) decides which slot a sample goes to; this stores, grows, shrinks
 * and clears them.
 *
 * The memory is a SharedArrayBuffer, so the recording I/O thread (io-thread.ts) writes ranges of
 * it to the file without a copy; the timeline keeps a range it handed to the writer unchanged
 * until the write is done. Slot v of an ever-growing slot counter lives at index v % size. The
 * starting ring is a slot of a shared slab (ring-slabs.ts: cheap when many streams start at
 * once), given back by {@link SampleRing.dispose}; a grown ring has memory of its own, and one
 * shrunk back to the starting size returns to the slot.
 */
import type { MediaFrame } from '../sink.js';
import { reserveRingSlots, takeRingSlot, type RingSlot } from './ring-slabs.js';
import type { RecordingFormat } from './wav-header.js';

/** Bytes of a ring of `frames` sample frames. */
function ringBytes(format: RecordingFormat, channels: number, frames: number): number {
  return frames * channels * (format === 'pcm16' ? 2 : 1);
}

/** WAV stores little-endian samples; the ring holds them in file order so writes need no copy. */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class SampleRing {
  readonly channels: number;
  readonly #pcm16: boolean;
  /** Sample frames the ring holds; slot v lives at index v % size. */
  #size = 0;
  #pcm: Int16Array | null = null;
  /** A two-channel 16-bit ring as one 32-bit word per sample frame (left in the low half): {@link copyRunFresh}. */
  #pcm32: Uint32Array | null = null;
  #mu: Uint8Array | null = null;
  #shared!: SharedArrayBuffer;
  /** Where the ring starts in #shared, bytes. */
  #offset = 0;
  #bytes!: Buffer;
  /** The starting ring's slab slot, held until dispose(). */
  #slot: RingSlot | null;
  /** Sample frames of the slot: a ring shrinking back to this size goes back into it. */
  readonly #slotFrames: number;

  constructor(format: RecordingFormat, channels: number, frames: number) {
    this.channels = channels;
    this.#pcm16 = format === 'pcm16';
    this.#slotFrames = frames;
    const slot = (this.#slot = takeRingSlot(this.#byteLength(frames)));
    this.#use(slot.sab, slot.offset, frames, slot.fresh);
  }

  /** Keeps `count` starting rings of this shape made and backed until the returned function is called (ring-slabs.ts reserveRingSlots). */
  static reserve(format: RecordingFormat, channels: number, frames: number, count: number): () => void {
    return reserveRingSlots(ringBytes(format, channels, frames), count);
  }

  get size(): number {
    return this.#size;
  }

  /** The ring as bytes in file layout. */
  get bytes(): Buffer {
    return this.#bytes;
  }

  /** The memory behind {@link bytes}, for the I/O thread (a replaced ring keeps its own). */
  get shared(): SharedArrayBuffer {
    return this.#shared;
  }

  /** Where {@link bytes} starts in {@link shared}, bytes. */
  get sharedOffset(): number {
    return this.#offset;
  }

  /**
   * Gives the starting ring's memory back to its slab. Call once nothing reads it any more: the
   * stream is finished (no write in flight), and no accept follows.
   */
  dispose(): void {
    this.#slot?.release();
    this.#slot = null;
  }

  #byteLength(frames: number): number {
    return ringBytes(this.#pcm16 ? 'pcm16' : 'mulaw', this.channels, frames);
  }

  /**
   * Makes `frames` sample frames of `sab` from byte `offset` the ring, silent: 16-bit silence is
   * zero, so memory never used (`zeroed`) is left as it is; mu-law silence is 0xFF (positive
   * zero, §2.3).
   */
  #use(sab: SharedArrayBuffer, offset: number, frames: number, zeroed: boolean): void {
    const slots = frames * this.channels;
    this.#shared = sab;
    this.#offset = offset;
    this.#size = frames;
    this.#bytes = Buffer.from(sab, offset, this.#byteLength(frames));
    if (this.#pcm16) {
      this.#pcm = new Int16Array(sab, offset, slots);
      if (!zeroed) this.#pcm.fill(0);
      this.#pcm32 = this.channels === 2 && HOST_LE && offset % 4 === 0 ? new Uint32Array(sab, offset, frames) : null;
      this.#mu = null;
    } else {
      this.#mu = new Uint8Array(sab, offset, slots).fill(0xff);
      this.#pcm = null;
      this.#pcm32 = null;
    }
  }

  /**
   * Moves to a new ring of `size` sample frames, carrying slots [from, from + carried) to their
   * indices in it; every other slot of the new ring is silence. The old memory is left as it is
   * (a write in flight may still be reading it). Back at the starting size (a shrink, which the
   * timeline makes only with no write in flight) the ring returns to its slab slot, which it
   * holds until dispose() anyway, instead of taking memory of its own: a stream that grew once
   * (a start-up backlog) then holds one starting ring, not two.
   */
  resize(size: number, from: number, carried: number): void {
    const oldSize = this.#size;
    const old: Int16Array | Uint8Array = this.#pcm ?? this.#mu!;
    const slot = this.#slot;
    if (slot !== null && size === this.#slotFrames && oldSize !== size) this.#use(slot.sab, slot.offset, size, false);
    else this.#use(new SharedArrayBuffer(this.#byteLength(size)), 0, size, true);
    const ring: Int16Array | Uint8Array = this.#pcm ?? this.#mu!;
    const chs = this.channels;
    const end = from + carried;
    for (let v = from; v < end; ) {
      const a = v % oldSize;
      const b = v % size;
      let run = end - v;
      if (run > oldSize - a) run = oldSize - a;
      if (run > size - b) run = size - b;
      ring.set(old.subarray(a * chs, (a + run) * chs), b * chs);
      v += run;
    }
  }

  /**
   * Copies `n` samples of the frame from `srcOff` into channel `ch` from slot index `slot` (no
   * wrap). A whole frame into a mono ring is one TypedArray.set (a native copy): 330 -> 110 ns
   * per 160-sample frame through TimelineBuffer.accept, 750 rings round-robin
   * (bench/frame-sinks.bench.ts); an interleaved (two-channel) ring takes the strided loop.
   */
  copyRun(ch: number, slot: number, frame: MediaFrame, srcOff: number, n: number): void {
    const chs = this.channels;
    let o = (slot * chs + ch) | 0;
    if (this.#pcm !== null) {
      const ring = this.#pcm;
      const src = frame.pcm;
      if (HOST_LE) {
        if (chs === 1 && srcOff === 0 && n === src.length) ring.set(src, o);
        else for (let i = 0; i < n; i++, o += chs) ring[o] = src[srcOff + i]!;
      } else {
        for (let i = 0; i < n; i++, o += chs) {
          const x = src[srcOff + i]!;
          ring[o] = ((x & 0xff) << 8) | ((x >> 8) & 0xff);
        }
      }
    } else {
      const ring = this.#mu!;
      const src = frame.mulaw;
      if (chs === 1 && srcOff === 0 && n === src.length) ring.set(src, o);
      else for (let i = 0; i < n; i++, o += chs) ring[o] = src[srcOff + i]!;
    }
  }

  /**
   * {@link copyRun} into slots just claimed: the frame's channel written and every other channel
   * silenced, whatever the slots held before. A two-channel 16-bit ring does both in one 32-bit
   * store per sample frame, where a clear and then the strided copy were two passes (and the
   * first track of a both_tracks stream claims every slot: bench/frame-sinks.bench.ts).
   */
  copyRunFresh(ch: number, slot: number, frame: MediaFrame, srcOff: number, n: number): void {
    const w = this.#pcm32;
    if (w === null) {
      this.clear(slot, slot + n);
      this.copyRun(ch, slot, frame, srcOff, n);
      return;
    }
    const src = frame.pcm;
    // Little-endian: the left sample is the word's low half.
    if (ch === 0) for (let i = 0; i < n; i++) w[slot + i] = src[srcOff + i]! & 0xffff;
    else for (let i = 0; i < n; i++) w[slot + i] = src[srcOff + i]! << 16;
  }

  /** Resets slot indices [from, to) (no wrap) to silence. */
  clear(from: number, to: number): void {
    const chs = this.channels;
    if (this.#pcm !== null) this.#pcm.fill(0, from * chs, to * chs);
    else this.#mu!.fill(0xff, from * chs, to * chs);
  }
}
