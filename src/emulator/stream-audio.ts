/**
 * The frames one stream sends, tick by tick. Tick k of a stream is frame n0+k of its call,
 * where n0 is the call's frame playing when the stream's media began. The inbound track is
 * what the call says; the outbound track is what it hears: inside a running conference, the
 * mix of the other participants at the same media time; outside, the call's `hears` source.
 */
import { FRAME_MS, SILENCE_FRAME, SILENCE_PAYLOAD, type AudioSource } from './audio-source.js';
import type { CallMedia } from './call-media.js';
import { MixScratch, mixFrames } from './mixer.js';
import type { MediaTrack } from './types.js';

/** One frame handed to the streamer; fields are overwritten on every call. */
export interface FrameOut {
  bytes: Uint8Array;
  payload: string;
}

/** What the stream needs to know about the world around its call. */
export interface MixContext {
  /** Media-clock now, ms. */
  mediaNow(): number;
  /**
   * The media of the participants `callSid` hears now: an array (possibly empty) when the
   * call is in a running conference, null when it is not in one (it then hears its own source),
   * or 'silence' when it is in a conference that plays it nothing (not started, or on hold).
   */
  heardBy(callSid: string): readonly CallMedia[] | null | 'silence';
  /** A mix read `media` past the end of its audio. */
  readPastEnd(media: CallMedia): void;
}

export class StreamAudio {
  readonly #call: CallMedia;
  readonly #ctx: MixContext;
  readonly #scratch = new MixScratch();
  readonly #others: Uint8Array[] = [];
  #n0 = 0;
  #offset0 = 0;

  constructor(call: CallMedia, ctx: MixContext) {
    this.#call = call;
    this.#ctx = ctx;
  }

  /** Fixes the stream's first frame at the call's current position. */
  begin(): void {
    const now = this.#ctx.mediaNow();
    this.#n0 = Math.max(0, this.#call.frameIndexAt(now));
    this.#offset0 = this.#sourceOffset(this.#n0);
  }

  /** The timestamp of the stream's first frame when the source fixes it (a replayed capture from its start). */
  get firstTimestampMs(): number | undefined {
    const first = this.#call.speaks.firstTimestampMs;
    return first === undefined ? undefined : first + this.#offset0;
  }

  /** The call's frame index that tick k plays (the grid a two-way stream's audio is scheduled on). */
  callFrame(k: number): number {
    return this.#n0 + k;
  }

  /** Media time of tick k relative to tick 0, ms. */
  offsetMs(k: number): number {
    return this.#sourceOffset(this.#n0 + k) - this.#offset0;
  }

  /** True when tick k is past the end of the call's audio and the call hangs up then. */
  ended(k: number): boolean {
    return this.#call.hangupOnAudioEnd && this.#n0 + k >= this.#call.speaks.frameCount;
  }

  /** Writes tick k of `track` into `out`. */
  frame(track: MediaTrack, k: number, out: FrameOut): void {
    const n = this.#n0 + k;
    if (track === 'inbound') return sourceFrame(this.#call.speaks, n, out);
    const heard = this.#ctx.heardBy(this.#call.callSid);
    if (heard === null) {
      // What a two-way stream's server or a <Play> plays into the call is what the call hears.
      const played = this.#call.playback?.frameAt(n) ?? this.#call.outboundAt(n);
      if (played !== null) {
        out.bytes = played;
        out.payload = Buffer.from(played.buffer, played.byteOffset, played.length).toString('base64');
        return;
      }
      return sourceFrame(this.#call.hears, n, out);
    }
    if (heard === 'silence' || heard.length === 0) {
      out.bytes = SILENCE_FRAME;
      out.payload = SILENCE_PAYLOAD;
      return;
    }
    // The conference's media time of this tick, on the call's own frame grid.
    const t = (this.#call.origin ?? this.#call.start(this.#ctx.mediaNow())) + n * FRAME_MS;
    const others = this.#others;
    others.length = 0;
    let lastMedia: CallMedia | null = null;
    let lastIdx = -1;
    for (let i = 0; i < heard.length; i++) {
      const media = heard[i]!;
      const idx = media.frameIndexAt(t);
      if (idx < 0) continue;
      if (idx >= media.speaks.frameCount) {
        this.#ctx.readPastEnd(media);
        continue;
      }
      lastMedia = media;
      lastIdx = idx;
      others.push(media.speaks.bytes(idx));
    }
    if (lastMedia !== null && others.length === 1) {
      // One speaker: pass the frame through untouched (and reuse its cached base64).
      out.bytes = others[0]!;
      out.payload = lastMedia.speaks.payload(lastIdx);
      return;
    }
    const mixed = mixFrames(others, this.#scratch);
    out.bytes = mixed;
    out.payload = mixed === SILENCE_FRAME ? SILENCE_PAYLOAD : Buffer.from(mixed.buffer, mixed.byteOffset, mixed.length).toString('base64');
  }

  #sourceOffset(n: number): number {
    const src = this.#call.speaks;
    if (n < src.frameCount) return src.offsetMs(n);
    // Past the end (the call stays on): keep the 20 ms grid after the last frame.
    const last = src.frameCount - 1;
    return last < 0 ? n * FRAME_MS : src.offsetMs(last) + (n - last) * FRAME_MS;
  }
}

/** Frame n of `src` (with its cached base64), or silence once the source has run out. */
function sourceFrame(src: AudioSource, n: number, out: FrameOut): void {
  if (n < src.frameCount) {
    out.bytes = src.bytes(n);
    out.payload = src.payload(n);
  } else {
    out.bytes = SILENCE_FRAME;
    out.payload = SILENCE_PAYLOAD;
  }
}
