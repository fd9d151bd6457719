import { describe, expect, it } from 'vitest';
import { takeRingSlot } from '../../../src/sinks/recording/ring-slabs.js';

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
});
