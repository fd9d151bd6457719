/**
 * Memory for the recording rings' starting size, carved out of large shared slabs.
 *
 * A SharedArrayBuffer of its own per stream is zeroed and faulted in at once by the allocator:
 * 16 KiB (one second of pcm16) cost 60-150 µs here, so 500 streams starting together stalled the
 * event loop 30-70 ms on ring allocation alone (bench/RESULTS.md, #19 burst work). A slab of about
 * 1 MiB comes from mmap, which the kernel zeroes page by page as frames first touch it, so a
 * burst of starts costs one allocation per SLAB_BYTES and the page faults spread over the first
 * second of audio. A slot a finished stream gave back is reused (re-silenced by its next owner);
 * a slab whose slots are all free is dropped unless it is its size's only one.
 *
 *   slab (SharedArrayBuffer, ~1 MiB)
 *   ┌────────┬────────┬────────┬─────┬────────┐
 *   │ slot 0 │ slot 1 │ slot 2 │ ... │ slot n │   slot = one stream's starting ring
 *   └────────┴────────┴────────┴─────┴────────┘
 *
 * Rings grown or shrunk later (timeline-buffer.ts) get memory of their own, as before: a write in
 * flight may still read the old ring, so only the stream's own end returns its slot.
 */

/** About what a slab spans: past glibc's mmap threshold (128 KiB), so its pages arrive zero and untouched. */
const SLAB_BYTES = 1 << 20;

/** One stream's share of a slab, until {@link release}. */
export class RingSlot {
  /** False when the memory was used before: the new owner must write silence over it. */
  readonly fresh: boolean;
  #slab: Slab | null;
  readonly #index: number;

  constructor(slab: Slab, index: number, fresh: boolean) {
    this.#slab = slab;
    this.#index = index;
    this.fresh = fresh;
  }

  get sab(): SharedArrayBuffer {
    return this.#slab!.sab;
  }

  /** Byte offset of the slot in {@link sab}. */
  get offset(): number {
    return this.#index * this.#slab!.slotBytes;
  }

  /** Gives the slot back (idempotent). Call only when nothing reads it any more (no write in flight). */
  release(): void {
    const slab = this.#slab;
    if (slab === null) return;
    this.#slab = null;
    slab.free(this.#index);
  }
}

class Slab {
  readonly sab: SharedArrayBuffer;
  /** Free slot indices; fresh ones (never used) are taken from the end of the slab first. */
  readonly #freed: number[] = [];
  #untouched: number;
  #live = 0;

  constructor(
    readonly slotBytes: number,
    readonly slots: number,
    readonly size: SizeClass,
  ) {
    this.sab = new SharedArrayBuffer(slotBytes * slots);
    this.#untouched = slots;
  }

  get full(): boolean {
    return this.#freed.length === 0 && this.#untouched === 0;
  }

  get empty(): boolean {
    return this.#live === 0;
  }

  take(): RingSlot {
    this.#live++;
    const reused = this.#freed.pop();
    if (reused !== undefined) return new RingSlot(this, reused, false);
    return new RingSlot(this, this.slots - this.#untouched--, true);
  }

  free(index: number): void {
    this.#live--;
    this.#freed.push(index);
    this.size.freed(this);
  }
}

class SizeClass {
  /** Slabs with a free slot (a full slab is held only by its slots, and comes back when one is freed). */
  readonly #open = new Set<Slab>();
  readonly #slots: number;

  constructor(readonly slotBytes: number) {
    this.#slots = Math.max(1, Math.floor(SLAB_BYTES / slotBytes));
  }

  take(): RingSlot {
    let slab: Slab | undefined;
    for (const s of this.#open) {
      slab = s;
      break;
    }
    slab ??= new Slab(this.slotBytes, this.#slots, this);
    this.#open.add(slab);
    const slot = slab.take();
    if (slab.full) this.#open.delete(slab);
    return slot;
  }

  /** A slot of `slab` came back: it takes streams again, or, all free beside another open slab, it goes. */
  freed(slab: Slab): void {
    this.#open.add(slab);
    if (slab.empty && this.#open.size > 1) this.#open.delete(slab);
  }
}

const classes = new Map<number, SizeClass>();

/** A slot of `bytes` (even, so 16-bit views fit) from the slabs of that size. */
export function takeRingSlot(bytes: number): RingSlot {
  let c = classes.get(bytes);
  if (c === undefined) classes.set(bytes, (c = new SizeClass(bytes)));
  return c.take();
}
