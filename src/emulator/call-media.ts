/**
 * One call's audio on the emulator's shared media clock. A call speaks one source (its
 * inbound track); outside a conference it hears another (its outbound track). The spoken audio
 * starts at an origin on the media clock: at creation, or lazily at its first use, so a stream
 * opened after the call was set up still receives the audio from its first frame.
 */
import { FRAME_MS, type AudioSource } from './audio-source.js';
import type { Playback } from './playback.js';

export class CallMedia {
  readonly callSid: string;
  readonly speaks: AudioSource;
  readonly hears: AudioSource;
  /** Hang the call up when `speaks` runs out. */
  readonly hangupOnAudioEnd: boolean;
  /** The server side of the call's live two-way stream: audio played into the call. */
  playback: Playback | null = null;
  #origin: number | null = null;
  #played: { source: AudioSource; from: number; frames: number } | null = null;
  #onStart: ((origin: number) => void) | null;

  constructor(callSid: string, speaks: AudioSource, hears: AudioSource, hangupOnAudioEnd: boolean, onStart: ((origin: number) => void) | null = null) {
    this.callSid = callSid;
    this.speaks = speaks;
    this.hears = hears;
    this.hangupOnAudioEnd = hangupOnAudioEnd && Number.isFinite(speaks.frameCount);
    this.#onStart = onStart;
  }

  /** Media-clock time (ms) of frame 0, or null before the audio started. */
  get origin(): number | null {
    return this.#origin;
  }

  /** Starts the audio at media time `t` unless it already started; returns the origin. */
  start(t: number): number {
    if (this.#origin === null) {
      this.#origin = t;
      const cb = this.#onStart;
      this.#onStart = null;
      cb?.(t);
    }
    return this.#origin;
  }

  /**
   * Plays `source` (`loops` times, Infinity: until replaced) into the call from call frame
   * `from` on: a TwiML `<Play>`. Null stops it.
   */
  playOutbound(source: AudioSource | null, from: number, loops: number): void {
    this.#played = source === null || source.frameCount === 0 ? null : { source, from, frames: source.frameCount * loops };
  }

  /** The `<Play>` frame heard at call frame `n`, if one is playing then. */
  outboundAt(n: number): Uint8Array | null {
    const p = this.#played;
    if (p === null || n < p.from || n - p.from >= p.frames) return null;
    return p.source.bytes((n - p.from) % p.source.frameCount);
  }

  /** Index of the frame playing at media time `t` (negative before the origin). */
  frameIndexAt(t: number): number {
    return Math.floor((t - this.start(t)) / FRAME_MS);
  }

  /** Media-clock time at which the spoken audio ends (Infinity for endless audio). */
  get endsAt(): number {
    const n = this.speaks.frameCount;
    if (!Number.isFinite(n) || this.#origin === null) return Infinity;
    return this.#origin + (n === 0 ? 0 : this.speaks.offsetMs(n - 1) + FRAME_MS);
  }
}
