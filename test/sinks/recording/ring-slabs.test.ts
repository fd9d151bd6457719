import { describe, expect, it } from 'vitest';
import { reserveRingSlots, takeRingSlot } from '../../../src/sinks/recording/ring-slabs.js';
import { SampleRing } from '../../../src/sinks/recording/sample-ring.js';

// Each test uses a slot size of its own: the slabs are per process and per size.
describe('ring slabs', () => {
  it('hands out non-overlapping slots of one shared slab, fresh (zero) at first', () => {
    const bytes = 16_002;
    const slots = Array.from({ length: 10 }, () => takeRingSlot(bytes));
    expect(new Set(slots.map((s) => s.sab)).size).toBe(1);
    const offsets = slots.map((s) => s.offset).sort((a, b) => a - b);
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]! - offsets[i - 1]!).toBeGreaterThanOrEqual(bytes);
    for (const s of slots) {
      expect(s.fresh).toBe(true);
      expect(s.offset + bytes).toBeLessThanOrEqual(s.sab.byteLength);
      expect(new Uint8Array(s.sab, s.offset, bytes).every((b) => b === 0)).toBe(true);
    }
    for (const s of slots) s.release();
  });

  it('gives a released slot to the next taker, marked as used (its new owner silences it)', () => {
    const bytes = 16_004;
    const a = takeRingSlot(bytes);
    new Uint8Array(a.sab, a.offset, bytes).fill(7);
    const { sab, offset } = a;
    a.release();
    a.release(); // idempotent: the slot is not freed twice
    const b = takeRingSlot(bytes);
    expect(b.sab).toBe(sab);
    expect(b.offset).toBe(offset);
    expect(b.fresh).toBe(false);
    const c = takeRingSlot(bytes); // a second taker gets another slot, not the same one again
    expect(c.offset).not.toBe(b.offset);
    expect(c.fresh).toBe(true);
  });

  it('opens a new slab when one is full, and fills a freed slot before opening a third', () => {
    const bytes = 300_000; // three to a 1 MiB slab
    const first = [takeRingSlot(bytes), takeRingSlot(bytes), takeRingSlot(bytes)];
    expect(new Set(first.map((s) => s.sab)).size).toBe(1);
    const next = takeRingSlot(bytes);
    expect(next.sab).not.toBe(first[0]!.sab);
    const freedAt = first[1]!.offset;
    first[1]!.release();
    // Room for three: the second slab's two and the first slab's freed slot.
    const again = [takeRingSlot(bytes), takeRingSlot(bytes), takeRingSlot(bytes)];
    expect(again.filter((s) => s.sab === first[0]!.sab).map((s) => s.offset)).toEqual([freedAt]);
    expect(again.filter((s) => s.sab === next.sab)).toHaveLength(2);
    expect(takeRingSlot(bytes).sab).not.toBe(next.sab); // both full now: a third slab
  });

  it('keeps a reserve of slots made ahead, through a burst and after it', () => {
    const bytes = 300_002; // three to a slab
    const release = reserveRingSlots(bytes, 7); // three slabs, made now
    const burst = Array.from({ length: 7 }, () => takeRingSlot(bytes));
    const slabs = new Set(burst.map((s) => s.sab));
    expect(slabs.size).toBe(3);
    for (const s of burst) {
      expect(s.fresh).toBe(true);
      expect(new Uint8Array(s.sab, s.offset, bytes).every((b) => b === 0)).toBe(true);
    }
    // The two left in the third slab were made ahead too: no fourth slab for them.
    const rest = [takeRingSlot(bytes), takeRingSlot(bytes)];
    expect(rest.every((s) => slabs.has(s.sab))).toBe(true);
    for (const s of [...burst, ...rest]) s.release();
    // All empty again, the slabs stay while the reserve needs them (without it, two would go).
    const again = Array.from({ length: 9 }, () => takeRingSlot(bytes));
    expect(new Set(again.map((s) => s.sab))).toEqual(slabs);
    for (const s of again) s.release();
    // The reserve given back lets the empty ones go: one slab is all a size keeps then.
    release();
    const after = Array.from({ length: 4 }, () => takeRingSlot(bytes));
    expect(new Set(after.map((s) => s.sab)).size).toBe(2);
    expect(after.filter((s) => slabs.has(s.sab))).toHaveLength(3);
  });
});

describe('a ring that grew and shrinks back', () => {
  it('returns to its slab slot, silent but for the slots it carries', () => {
    for (const format of ['pcm16', 'mulaw'] as const) {
      const silence = format === 'pcm16' ? 0 : 0xff;
      const ring = new SampleRing(format, 1, 1000 + (format === 'pcm16' ? 1 : 3)); // sizes of their own
      const size = ring.size;
      const { shared, sharedOffset } = ring;
      ring.bytes.fill(9); // what the starting ring held before it grew
      ring.resize(size * 2, 0, size);
      expect(ring.shared).not.toBe(shared);
      ring.bytes.fill(5, 0, ring.bytes.length);
      ring.resize(size, 10, 20); // slots 10..29 carried back to indices 10..29
      expect(ring.shared).toBe(shared);
      expect(ring.sharedOffset).toBe(sharedOffset);
      const bps = format === 'pcm16' ? 2 : 1;
      expect(ring.bytes.length).toBe(size * bps);
      for (let i = 0; i < ring.bytes.length; i++) expect(ring.bytes[i]).toBe(i >= 10 * bps && i < 30 * bps ? 5 : silence);
      // Growing again takes memory of its own: the slot stays the starting ring's.
      ring.resize(size * 2, 0, size);
      expect(ring.shared).not.toBe(shared);
      ring.dispose();
    }
  });
});
