/**
 * The recording's timeline: places frames on the media timeline and hands the writer byte
 * ranges laid out exactly as they go into the WAV data chunk. Pure memory, no I/O: the sink's
 * writer (recording-sink.ts) drives it with plan/submit/release. The bytes themselves live in a
 * SampleRing (sample-ring.ts): this file decides which slot each sample goes to, when the ring
 * grows or shrinks, and what the writer may take.
 *
 * Positions are sample frames on the stream's timeline: 0 is the first frame of the stream (any
 * track); a frame at media time T starts at (T - firstT) * 8. Slots are sample frames of the
 * ring, numbered by ever-growing "virtual" slot counters; slot v lives at ring index v % (ring size).
 *
 *        vBase            vSub                         vEnd
 *          │   in flight   │  placed, not yet handed    │     free (silence)
 *   ring ──┼───────────────┼─────── to the writer ──────┼──────────────────────┐
 *          └─ being written; immutable until release ───┘ late frames land in ─┘
 *                                                          [vSub, vEnd) in place
 *   capacity ≥ vEnd - vBase; a slot is silenced when it is claimed (where the claiming frame
 *   does not write it), so a timestamp gap costs nothing but the slots it spans.
 *
 * `capacity` is the logical bound every decision uses (what may wait for the disk). The ring
 * itself starts smaller (`initialFrames`) and doubles when the occupied slots outgrow it, up to
 * `capacity`: with the disk keeping up a stream holds well under a second, so most streams never
 * pay for the full bound (bench/RESULTS.md, memory). Once the backlog has drained to a quarter of
 * the starting size it shrinks back, so one stall does not keep a stream large for the rest of
 * the call (the 10-minute soak's RSS ratchet, bench/RESULTS.md). Growth copies the occupied slots to their
 * places in the larger ring (slot v at v % size); a write in flight keeps the old ring's bytes,
 * which stay immutable until release, as before. Decisions never depend on the physical size, so
 * a growing buffer behaves exactly like one allocated at `capacity` (timeline-buffer.test.ts).
 *
 * Segments map positions to slots: position p of segment k sits in slot segV[k] + (p - segPos[k]).
 * Normally there is one segment. A frame that jumps further ahead than the free slots reach
 * (a long silence Twilio sent no frames for, or the stretch after an overload) opens a new
 * segment instead; the positions skipped between two segments never occupy the ring, and the
 * writer fills them in the file with silence from a shared block.
 *
 *   timeline  0 ──seg 0── E0 · · · skipped (silence) · · · P1 ──seg 1── E
 *   slots     0 ─────────  n0                               n0 ───────  vEnd
 *
 * Discontinuities: a frame that starts more than `maxGapFrames` past the furthest end of any
 * track is not placed by its timestamp (that would fill the gap with silence, and one message
 * could claim hours): the timeline continues right at that end, and the skipped media time is
 * recorded in {@link discontinuities} and added to a running skew (position = (T - firstT) * 8 -
 * skew). A late frame from before the last discontinuity is placed by the mapping it belongs to
 * while it stays short of the discontinuity; anything older is dropped as late.
 *
 *   media     0 ────── A ·········· skipped ··········· B ─────── C
 *   timeline  0 ────── A B ─────── C - (B - A)          (one discontinuity at position A)
 *
 * A two-track stream interleaves left/right samples in each slot. The writer hands out only up
 * to the horizon: the slower track's frontier, but never more than `lagFrames` behind the
 * faster one, so a track that goes quiet cannot hold audio back for longer than that.
 */
import type { MediaFrame } from '../sink.js';
import { SAMPLES_PER_MS } from '../../core/stream.js';
import { GAP_DROPPED, GAP_LEADING, GAP_TIMESTAMP, GapList } from './gap-list.js';
import { SampleRing } from './sample-ring.js';
import type { RecordingFormat } from './wav-header.js';

/** What became of a frame, as `accept` reports it. */
export const Outcome = {
  /** Written at its place, in order. */
  placed: 0,
  /** Arrived after later audio of its track, filled (part of) a hole in the unflushed buffer. */
  placedLate: 1,
  /** Its whole region on its track was already written: dropped. */
  duplicate: 2,
  /** Late and its hole already handed to the disk (or before the stream's zero): dropped. */
  lateDropped: 3,
  /** Buffer full (the disk is behind): dropped, its stretch recorded as a 'dropped' gap. */
  dropped: 4,
  /** Not a recorded track, or an empty/malformed frame. */
  ignored: 5,
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** Results of {@link TimelineBuffer.plan}. */
export const Plan = { none: 0, silence: 1, data: 2 } as const;
export type Plan = (typeof Plan)[keyof typeof Plan];

/** n zeros in a plain array: its loads are small integers, where a Float64Array's are heap numbers in V8's interpreter. */
function zeros(n: number): number[] {
  return Array.from({ length: n }, () => 0);
}

/** Segments a buffer can hold at once; each needs at least one slot, and most streams use one. */
const MAX_SEGMENTS = 64;
const SEG_MASK = MAX_SEGMENTS - 1;

export interface TimelineOptions {
  readonly format: RecordingFormat;
  readonly channels: 1 | 2;
  /** Channel of each track index (inbound 0, outbound 1), or -1 when the track is not recorded. */
  readonly channelOfTrack: readonly [number, number];
  /** Most sample frames the buffer may hold (its bound). */
  readonly capacityFrames: number;
  /** Ring size to start with, in sample frames (default: `capacityFrames`); grows on demand. */
  readonly initialFrames?: number;
  /** How far the horizon may trail the leading track (sample frames). */
  readonly lagFrames: number;
  /** Longest timestamp jump filled with silence (sample frames); longer ones are discontinuities. Default: no limit. */
  readonly maxGapFrames?: number;
}

/** A place where the media clock jumped ahead and the file went on without the silence. */
export interface Discontinuity {
  /** Timeline (file) position where the audio after the jump starts. */
  readonly pos: number;
  /** Sample frames of media time skipped there. */
  readonly skipped: number;
}

export class TimelineBuffer {
  // Field order is memory order: what every frame reads comes first, so a frame reads the
  // object's first three cache lines, not five of its eight. With hundreds of streams each
  // stream's fields have left the cache by its next frame, 20 ms later (bench/RESULTS.md, "hot
  // fields"). Every number field a frame reads holds small integers (V8 keeps those inside the
  // object; one NaN, infinity or heap number stored once and a field becomes a pointer to a box
  // of its own), hence the flags beside #firstTs and #jumpTs, and plain arrays for the segments
  // and the track ends (a Float64Array's loads are heap numbers in the interpreter, and so were
  // the fields computed from them). #prevJumpTs keeps -Infinity: only a late frame from before a
  // discontinuity reads it.

  #vEnd = 0;
  #vBase = 0;
  #vSub = 0;
  /**
   * The last segment's position and slot (segPos/segV of it), kept beside the arrays: the
   * frontier is read per frame, and the arrays' memory is two more cold cache lines per frame.
   */
  #lastSegPos = 0;
  #lastSegV = 0;
  /** Channel of the inbound / outbound track (#chanOf's entries), read per frame. */
  readonly #ch0: number;
  readonly #ch1: number;
  /** Whether a frame has set #firstTs yet. */
  #started = false;
  /** Media time (ms) of the stream's first frame: the timeline's zero (once #started). */
  #firstTs = 0;
  /** Media time skipped so far (sample frames): position = (T - firstT) * 8 - skew. */
  #skew = 0;
  /** Whether a discontinuity set #jumpTs (and #jumpPos) yet. */
  #jumped = false;
  /** Media time (ms) of the frame that caused the last discontinuity, and where it went. */
  #jumpTs = 0;
  readonly #maxGap: number;
  /** Per channel: position after the last sample placed or given up on. */
  readonly #trackEnd: number[] = [0, 0];
  readonly #trackSeen = new Uint8Array(2);
  /** The ring (≤ capacity sample frames); slot v lives at index v % its size. */
  readonly #ring: SampleRing;
  /** Most sample frames the buffer holds at once. */
  readonly capacity: number;
  readonly channels: number;
  framesReceived = 0;

  /** The size it starts at and shrinks back to. */
  readonly #initial: number;
  readonly #chanOf: Int8Array;
  readonly #lag: number;
  readonly #segPos: number[] = zeros(MAX_SEGMENTS);
  readonly #segV: number[] = zeros(MAX_SEGMENTS);
  #segHead = 0;
  #segCount = 1;
  /** File data frontier: positions written or submitted, in order (data and skipped silence). */
  #filePos = 0;
  readonly gaps: readonly [GapList, GapList] = [new GapList(), new GapList()];
  /** In timeline order; one per jump longer than maxGapFrames (rare, so small objects). */
  readonly discontinuities: Discontinuity[] = [];
  #jumpPos = 0;
  /** The mapping before the last discontinuity, for late frames from before it. */
  #prevSkew = 0;
  #prevJumpTs = Number.NEGATIVE_INFINITY;

  framesLate = 0;
  framesLateDropped = 0;
  framesDuplicate = 0;
  framesDropped = 0;
  framesIgnored = 0;

  /** Set by {@link plan}: the next write's timeline position, length and ring slot. */
  planPos = 0;
  planFrames = 0;
  planSlot = 0;

  constructor(opts: TimelineOptions) {
    this.capacity = Math.max(1, Math.floor(opts.capacityFrames));
    this.channels = opts.channels;
    this.#chanOf = Int8Array.from(opts.channelOfTrack);
    this.#ch0 = this.#chanOf[0]!;
    this.#ch1 = this.#chanOf[1]!;
    this.#lag = Math.max(0, Math.floor(opts.lagFrames));
    this.#maxGap = opts.maxGapFrames ?? Number.POSITIVE_INFINITY;
    const initial = Math.floor(opts.initialFrames ?? this.capacity);
    this.#initial = initial >= 1 && initial < this.capacity ? initial : this.capacity;
    this.#ring = new SampleRing(opts.format, this.channels, this.#initial);
  }

  /** The ring as bytes in file layout; the writer passes ranges of it straight to write(). */
  get bytes(): Buffer {
    return this.#ring.bytes;
  }

  /** The shared memory behind {@link bytes} (what the I/O thread writes from). */
  get shared(): SharedArrayBuffer {
    return this.#ring.shared;
  }

  /** Where {@link bytes} starts in {@link shared}, bytes (a write's offset adds it). */
  get sharedOffset(): number {
    return this.#ring.sharedOffset;
  }

  /** Gives the starting ring's memory back (SampleRing.dispose): the stream is finished, nothing is in flight. */
  dispose(): void {
    this.#ring.dispose();
  }

  /** Sample frames the ring has allocated now (grows up to {@link capacity}). */
  get allocatedFrames(): number {
    return this.#ring.size;
  }

  /**
   * Makes the ring hold the occupied slots [vBase, vEnd): doubles it (at most to capacity) and
   * copies each occupied run to its index in the new ring. Rare: a stream's first seconds of a
   * slow disk, or a long two-track lag.
   */
  #fit(): void {
    const occupied = this.#vEnd - this.#vBase;
    const old = this.#ring.size;
    if (occupied <= old) return;
    let size = old * 2;
    if (size < occupied) size = occupied;
    if (size > this.capacity) size = this.capacity;
    // Slots past vBase + the old size were just claimed and hold nothing yet (their old indices
    // alias older slots), so only the first old-size occupied slots carry audio.
    this.#ring.resize(size, this.#vBase, old);
  }

  /** Media time of the stream's first frame, or null before it. */
  get firstTimestampMs(): number | null {
    return this.#started ? this.#firstTs : null;
  }

  /** Position just after the last placed slot. */
  get frontier(): number {
    return this.#lastSegPos + (this.#vEnd - this.#lastSegV);
  }

  /** Where the finished file ends: the frontier, or further when the last frames were dropped. */
  get finalEnd(): number {
    const t = this.#trackEnd;
    return Math.max(this.frontier, t[0]!, t[1]!);
  }

  /** Slots in use (placed or being written). */
  get occupied(): number {
    return this.#vEnd - this.#vBase;
  }

  /** Placed slots not yet handed to the writer. */
  get unsubmitted(): number {
    return this.#vEnd - this.#vSub;
  }

  /** Position after the last sample placed on channel `ch`, or given up on (dropped). */
  trackEnd(ch: number): number {
    return this.#trackEnd[ch] ?? 0;
  }

  /** Positions written or submitted to the file. */
  get filePos(): number {
    return this.#filePos;
  }

  /**
   * Places one borrowed frame (copies its samples; keeps no reference). Synchronous, allocation
   * free except when it records a new gap.
   */
  accept(frame: MediaFrame): Outcome {
    this.framesReceived++;
    const ti = frame.trackIndex;
    const ch = ti === 0 ? this.#ch0 : ti === 1 ? this.#ch1 : -1;
    const n = frame.samples;
    const ts = frame.timestampMs;
    if (ch < 0 || !(n > 0) || n > frame.pcm.length || n > frame.mulaw.length || !Number.isFinite(ts)) {
      this.framesIgnored++;
      return Outcome.ignored;
    }
    if (!this.#started) {
      this.#started = true;
      this.#firstTs = ts;
    }
    const raw = Math.round((ts - this.#firstTs) * SAMPLES_PER_MS);
    let s: number;
    if (!this.#jumped || ts >= this.#jumpTs) {
      s = raw - this.#skew;
      const t = this.#trackEnd;
      const far = t[0]! > t[1]! ? t[0]! : t[1]!;
      if (s - far > this.#maxGap) s = this.#discontinuity(ts, s, far);
    } else if (ts >= this.#prevJumpTs && raw - this.#prevSkew + n <= this.#jumpPos) {
      s = raw - this.#prevSkew; // late, from before the last discontinuity: its own mapping
    } else {
      s = -1; // from before an earlier discontinuity, or it would run into the audio after one
    }
    let outcome: Outcome;
    if (s < 0) {
      outcome = Outcome.lateDropped; // before the timeline's zero: nowhere to put it
    } else {
      const te = this.#trackEnd[ch]!;
      outcome = s >= te ? this.#inOrder(ch, s, s + n, frame, 0) : this.#outOfOrder(ch, s, s + n, te, frame);
    }
    switch (outcome) {
      case Outcome.placedLate:
        this.framesLate++;
        break;
      case Outcome.lateDropped:
        this.framesLate++;
        this.framesLateDropped++;
        break;
      case Outcome.duplicate:
        this.framesDuplicate++;
        break;
      case Outcome.dropped:
        this.framesDropped++;
        break;
    }
    return outcome;
  }

  /** The frame at `ts` (position `s`) jumped too far past `far`: the timeline goes on at `far`. */
  #discontinuity(ts: number, s: number, far: number): number {
    const skipped = s - far;
    this.#prevSkew = this.#skew;
    this.#prevJumpTs = this.#jumped ? this.#jumpTs : Number.NEGATIVE_INFINITY;
    this.#jumped = true;
    this.#skew += skipped;
    this.#jumpTs = ts;
    this.#jumpPos = far;
    this.discontinuities.push({ pos: far, skipped });
    return far;
  }

  /** Media time skipped at discontinuities so far (sample frames). */
  get skippedFrames(): number {
    return this.#skew;
  }

  /** Counts a frame the sink refused without looking at it (after a write error). */
  refuse(): void {
    this.framesReceived++;
    this.framesDropped++;
  }

  /** A frame at or after its track's frontier. */
  #inOrder(ch: number, s: number, e: number, frame: MediaFrame, srcOff: number): Outcome {
    const te = this.#trackEnd[ch]!;
    const E = this.frontier;
    const claimed = this.#vEnd;
    const free = this.capacity - (this.#vEnd - this.#vBase);
    let v: number;
    if (s < E) {
      // The other track is ahead: the start lies inside the buffered range.
      v = this.#spanV(s, e < E ? e : E);
      if (v < 0) return this.#giveUp(ch, s, e, te, Outcome.lateDropped);
      if (e > E) {
        if (e - E > free) return this.#giveUp(ch, s, e, te, Outcome.dropped);
        this.#vEnd += e - E;
      }
    } else if (e - E <= free) {
      v = this.#vEnd + (s - E);
      this.#vEnd += e - E;
    } else if (e - s <= free && this.#segCount < MAX_SEGMENTS) {
      // Too far ahead to reach through the free slots, but the frame itself fits: skip the
      // stretch between (all channels silent there) with a new segment. Start it a little early
      // so the other track's frames, a few ms behind, still find slots.
      let margin = (free - (e - s)) >> 1;
      if (margin > this.#lag) margin = this.#lag;
      const start = s - margin;
      const k = (this.#segHead + this.#segCount) & SEG_MASK;
      this.#segPos[k] = start;
      this.#segV[k] = this.#vEnd;
      this.#lastSegPos = start;
      this.#lastSegV = this.#vEnd;
      this.#segCount++;
      v = this.#vEnd + margin;
      this.#vEnd += e - start;
    } else {
      return this.#giveUp(ch, s, e, te, Outcome.dropped);
    }
    if (this.#vEnd - this.#vBase > this.#ring.size) this.#fit();
    // The slots claimed just now (from `claimed`) still hold what the ring last carried there:
    // the gap before the frame is silenced; a mono frame overwrites its own slots; in a
    // two-channel ring the frame's part in claimed slots is written with the other channel
    // silenced in the same pass, and only its part in slots claimed before (the other track
    // ahead) takes the plain copy of its channel.
    const n = e - s;
    this.#silence(claimed, v);
    if (this.channels === 1) {
      this.#copyIn(ch, v, frame, srcOff, n);
    } else {
      const end = v + n;
      const fresh = v > claimed ? v : end < claimed ? end : claimed;
      if (fresh > v) this.#copyIn(ch, v, frame, srcOff, fresh - v);
      if (end > fresh) this.#copyIn(ch, fresh, frame, srcOff + (fresh - v), end - fresh, true);
    }
    if (s > te) this.gaps[ch]!.append(te, s, this.#trackSeen[ch] === 1 ? GAP_TIMESTAMP : GAP_LEADING);
    this.#trackEnd[ch] = e;
    this.#trackSeen[ch] = 1;
    return Outcome.placed;
  }

  /** Records the frame's stretch as dropped and moves the track past it, so timing stays right. */
  #giveUp(ch: number, s: number, e: number, te: number, outcome: Outcome): Outcome {
    const gaps = this.gaps[ch]!;
    if (s > te) gaps.append(te, s, this.#trackSeen[ch] === 1 ? GAP_TIMESTAMP : GAP_LEADING);
    gaps.append(s > te ? s : te, e, GAP_DROPPED);
    this.#trackEnd[ch] = e;
    this.#trackSeen[ch] = 1;
    return outcome;
  }

  /** A frame that starts before its track's frontier: fills holes, or is a duplicate. */
  #outOfOrder(ch: number, s: number, e: number, te: number, frame: MediaFrame): Outcome {
    const gaps = this.gaps[ch]!;
    const hi = e < te ? e : te;
    const subPos = this.#subPos();
    let covered = false;
    let placed = false;
    let i = gaps.firstEndingAfter(s);
    while (i < gaps.length) {
      const g = gaps.spans[i]!;
      if (g.start >= hi) break;
      covered = true;
      let a = g.start > s ? g.start : s;
      const b = g.end < hi ? g.end : hi;
      if (a < subPos) a = subPos; // what was handed to the disk is final
      if (a < b) {
        const v = this.#spanV(a, b);
        if (v >= 0) {
          this.#copyIn(ch, v, frame, a - s, b - a);
          i = gaps.remove(i, a, b);
          placed = true;
          continue;
        }
      }
      i++;
    }
    if (!covered && e <= te) return Outcome.duplicate;
    if (e > te) {
      // The frame runs past the frontier: place the new part like an in-order frame; the part
      // over already-written audio is discarded (first write wins).
      const tail = this.#inOrder(ch, te, e, frame, te - s);
      if (!covered) return tail;
    }
    return placed ? Outcome.placedLate : Outcome.lateDropped;
  }

  /**
   * Slot of position `a` when all of [a, b) lies in one segment's buffered range and has not
   * been handed to the writer; -1 otherwise.
   */
  #spanV(a: number, b: number): number {
    const last = this.#segCount - 1;
    for (let i = last; i >= 0; i--) {
      const k = (this.#segHead + i) & SEG_MASK;
      const p0 = this.#segPos[k]!;
      if (a < p0) continue;
      const v0 = this.#segV[k]!;
      const endV = i === last ? this.#vEnd : this.#segV[(k + 1) & SEG_MASK]!;
      if (b > p0 + (endV - v0)) return -1;
      const v = v0 + (a - p0);
      return v >= this.#vSub ? v : -1;
    }
    return -1;
  }

  /** Timeline position of the first slot not yet handed to the writer. */
  #subPos(): number {
    let i = 0;
    while (i < this.#segCount - 1 && this.#vSub >= this.#segV[(this.#segHead + i + 1) & SEG_MASK]!) i++;
    const k = (this.#segHead + i) & SEG_MASK;
    return this.#segPos[k]! + (this.#vSub - this.#segV[k]!);
  }

  /** Resets slots [a, b) to silence (b <= a: nothing). */
  #silence(a: number, b: number): void {
    if (b <= a) return;
    const ring = this.#ring;
    const cap = ring.size;
    const from = a % cap | 0;
    const n = b - a;
    const first = n < cap - from ? n : cap - from;
    ring.clear(from, from + first);
    if (first < n) ring.clear(0, n - first);
  }

  /** Copies n samples into channel ch from slot v on (wrapping); `fresh`: the slots were just claimed (SampleRing.copyRunFresh). */
  #copyIn(ch: number, v: number, frame: MediaFrame, srcOff: number, n: number, fresh = false): void {
    const ring = this.#ring;
    const cap = ring.size;
    // `| 0` keeps the indices small integers: a slot counter can be a double (past 2^31, or
    // computed from one), and double-indexed stores made the copy 2.5x slower. Splitting at the
    // ring's end instead of testing for the wrap per sample took it further. (Ad-hoc loop of 2M
    // frames through accept + drain on Node 20: 750 → 300 → 200 ns per 160-sample frame.)
    const slot = v % cap | 0;
    const first = n < cap - slot ? n : cap - slot; // up to the ring's end, then wrap to slot 0
    if (fresh) {
      ring.copyRunFresh(ch, slot, frame, srcOff | 0, first);
      if (first < n) ring.copyRunFresh(ch, 0, frame, (srcOff + first) | 0, n - first);
      return;
    }
    ring.copyRun(ch, slot, frame, srcOff | 0, first);
    if (first < n) ring.copyRun(ch, 0, frame, (srcOff + first) | 0, n - first);
  }

  /**
   * Where the writer may hand audio to the disk up to: the slowest recorded track's frontier,
   * but at most `lagFrames` behind the buffered frontier.
   */
  horizon(): number {
    const E = this.frontier;
    let min = Number.POSITIVE_INFINITY;
    for (let t = 0; t < 2; t++) {
      const c = this.#chanOf[t]!;
      if (c >= 0 && this.#trackEnd[c]! < min) min = this.#trackEnd[c]!;
    }
    const floor = E - this.#lag;
    const h = min > floor ? min : floor;
    return h < E ? h : E;
  }

  /**
   * Decides the next write toward horizon `h`: skipped silence first, then buffered audio in
   * timeline order; past the buffer, silence up to `tail` (the final end, at close; else 0).
   * Sets planPos/planFrames (and planSlot for data). Silence runs are cut at `maxSilenceFrames`.
   */
  plan(h: number, tail: number, maxSilenceFrames: number): Plan {
    let i = 0;
    while (i < this.#segCount - 1 && this.#vSub >= this.#segV[(this.#segHead + i + 1) & SEG_MASK]!) i++;
    const k = (this.#segHead + i) & SEG_MASK;
    const v0 = this.#segV[k]!;
    const p0 = this.#segPos[k]!;
    const posSub = p0 + (this.#vSub - v0);
    if (this.#filePos < posSub) {
      this.planPos = this.#filePos;
      this.planFrames = Math.min(posSub - this.#filePos, maxSilenceFrames);
      return Plan.silence;
    }
    const endV = i === this.#segCount - 1 ? this.#vEnd : this.#segV[(k + 1) & SEG_MASK]!;
    const segEnd = p0 + (endV - v0);
    const limit = segEnd < h ? segEnd : h;
    if (limit > posSub) {
      const size = this.#ring.size;
      const slot = this.#vSub % size;
      let n = limit - posSub;
      if (n > size - slot) n = size - slot; // up to the ring's end; the rest next
      this.planPos = posSub;
      this.planFrames = n;
      this.planSlot = slot;
      return Plan.data;
    }
    if (this.#vSub === this.#vEnd && this.#filePos < tail) {
      this.planPos = this.#filePos;
      this.planFrames = Math.min(tail - this.#filePos, maxSilenceFrames);
      return Plan.silence;
    }
    return Plan.none;
  }

  /** The planned data write was issued: its slots are now immutable until {@link release}. */
  submitData(frames: number): void {
    this.#vSub += frames;
    this.#filePos += frames;
  }

  /** The planned silence write was issued. */
  submitSilence(frames: number): void {
    this.#filePos += frames;
  }

  /**
   * The oldest `frames` submitted slots are on disk (or abandoned): they are free again. They are
   * not reset here: a slot is silenced when it is claimed again, and only where the frame that
   * claims it does not write (#inOrder), so a mono stream in order never clears at all (the
   * clear was a second pass over cold ring memory per frame).
   */
  release(frames: number): void {
    const ring = this.#ring;
    const cap = ring.size;
    this.#vBase += frames;
    // Nothing is in flight here (one write at a time, released when done): shrink after a backlog.
    const occupied = this.#vEnd - this.#vBase;
    if (cap > this.#initial && occupied <= this.#initial >> 2) ring.resize(this.#initial, this.#vBase, occupied);
    while (this.#segCount > 1 && this.#vBase >= this.#segV[(this.#segHead + 1) & SEG_MASK]!) {
      this.#segHead = (this.#segHead + 1) & SEG_MASK;
      this.#segCount--;
    }
  }
}
