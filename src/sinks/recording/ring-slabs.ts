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
 *
 * A size class can keep slots in reserve ({@link reserveRingSlots}): slabs made ahead, with every
 * page written once so the kernel has backed it. On a host that backs memory lazily (a microVM:
 * this bench host's first write to a page costs ~15 µs, a reused page ~0.2 µs) a burst of 500
 * starts otherwise pays ~2,000 such first writes inside the frames' copies, on the event loop
 * (bench/RESULTS.md, "first touch"). Empty slabs are kept while the reserve needs them.
 */

/** About what a slab spans: past glibc's mmap threshold (128 KiB), so its pages arrive zero and untouched. */
const SLAB_BYTES = 1 << 20;
/** Linux's smallest page: one write per this many bytes backs every page of a slab. */
const PAGE_BYTES = 4096;

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

  /** Slots not taken. */
  get freeSlots(): number {
    return this.slots - this.#live;
  }

  /** Has the kernel back every page now (a zero written per page: the memory stays silent, `fresh` holds). */
  touch(): void {
    const bytes = new Uint8Array(this.sab);
    for (let i = 0; i < bytes.length; i += PAGE_BYTES) bytes[i] = 0;
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
  /** Free slots the class keeps made and backed: the sum of every live {@link reserveRingSlots}. */
  #reserve = 0;

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

  /** A slot of `slab` came back: it takes streams again, or, all free beside another open slab and not needed by the reserve, it goes. */
  freed(slab: Slab): void {
    this.#open.add(slab);
    if (slab.empty && this.#open.size > 1 && (this.#reserve === 0 || this.#free() - slab.slots >= this.#reserve)) this.#open.delete(slab);
  }

  /** Keeps `delta` more (or, negative, fewer) slots free from now on: makes (and backs) slabs, or lets empty ones beyond the reserve go. */
  reserve(delta: number): void {
    const count = (this.#reserve += delta);
    let free = this.#free();
    for (const slab of this.#open) {
      if (slab.empty && this.#open.size > 1 && free - slab.slots >= count) {
        this.#open.delete(slab);
        free -= slab.slots;
      }
    }
    for (; free < count; free += this.#slots) {
      const slab = new Slab(this.slotBytes, this.#slots, this);
      slab.touch();
      this.#open.add(slab);
    }
  }

  #free(): number {
    let n = 0;
    for (const s of this.#open) n += s.freeSlots;
    return n;
  }
}

const classes = new Map<number, SizeClass>();

function sizeClass(bytes: number): SizeClass {
  let c = classes.get(bytes);
  if (c === undefined) classes.set(bytes, (c = new SizeClass(bytes)));
  return c;
}

/** A slot of `bytes` (even, so 16-bit views fit) from the slabs of that size. */
export function takeRingSlot(bytes: number): RingSlot {
  return sizeClass(bytes).take();
}

/**
 * Keeps `count` starting rings of `bytes` ready: slabs made now, their pages backed, and kept
 * while fewer than the reserved slots would be free without them. A burst of that many starts
 * then writes into memory the process already holds. Costs `count` × `bytes` of resident memory
 * while idle. Reserves add up (each recording factory keeps its own); the returned function gives
 * this one back (once), and the memory goes as slabs empty.
 */
export function reserveRingSlots(bytes: number, count: number): () => void {
  const c = sizeClass(bytes);
  c.reserve(count);
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    c.reserve(-count);
  };
}
