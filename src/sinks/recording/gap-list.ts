/**
 * The holes of one track: stretches of its channel that hold filler silence instead of audio
 * the sink received. Spans are in sample frames on the recording's timeline (0 = first frame of
 * the stream), disjoint and sorted, so a late frame finds its hole by binary search and fills it
 * by splitting the span. Gaps are rare, so a span is a small object; frames never allocate here.
 */

/** No frame covered this stretch: the media timestamps jumped over it. */
export const GAP_TIMESTAMP = 0;
/** A frame covered it but the sink dropped it (buffer full, or too late to place). */
export const GAP_DROPPED = 1;
/** Before the track's first frame. Kept so a late frame can fill it; not reported as a gap. */
export const GAP_LEADING = 2;

export type GapCause = typeof GAP_TIMESTAMP | typeof GAP_DROPPED | typeof GAP_LEADING;

export interface GapSpan {
  start: number;
  end: number;
  cause: GapCause;
}

export class GapList {
  readonly spans: GapSpan[] = [];

  get length(): number {
    return this.spans.length;
  }

  /**
   * Appends [start, end) at the track's frontier (so after every span). Joins the last span when
   * it ends exactly at `start` with the same cause, which keeps a sustained overload at one span.
   */
  append(start: number, end: number, cause: GapCause): void {
    if (end <= start) return;
    const last = this.spans.length > 0 ? this.spans[this.spans.length - 1]! : null;
    if (last !== null && last.end === start && last.cause === cause) {
      last.end = end;
      return;
    }
    this.spans.push({ start, end, cause });
  }

  /** Index of the first span that ends after `pos` (spans.length when none). */
  firstEndingAfter(pos: number): number {
    let lo = 0;
    let hi = this.spans.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.spans[mid]!.end > pos) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * Removes [a, b) (which must lie inside span `i`) and returns the index to look at next.
   * What remains after a filled stretch lies between received frames, so a leading span's right
   * part becomes a timestamp gap.
   */
  remove(i: number, a: number, b: number): number {
    const g = this.spans[i]!;
    const keepLeft = g.start < a;
    const keepRight = b < g.end;
    if (keepLeft && keepRight) {
      const cause = g.cause === GAP_LEADING ? GAP_TIMESTAMP : g.cause;
      this.spans.splice(i + 1, 0, { start: b, end: g.end, cause });
      g.end = a;
      return i + 2;
    }
    if (keepLeft) {
      g.end = a;
      return i + 1;
    }
    if (keepRight) {
      g.start = b;
      if (g.cause === GAP_LEADING) g.cause = GAP_TIMESTAMP;
      return i + 1;
    }
    this.spans.splice(i, 1);
    return i;
  }
}
