/**
 * The far end of a two-way stream (`<Connect><Stream>`, docs/twilio-protocol.md §3): what the
 * server sends back is checked as Twilio checks it, and its audio is played into the call.
 *
 *   server ──media──► schedule: each 160-byte frame gets the call frame it plays at
 *          ──mark───► echoed when the call reaches the end of the audio queued before it
 *          ──clear──► unplayed audio dropped, every pending mark echoed at once
 *
 * Audio is scheduled on the call's frame grid when it arrives (behind what is still queued),
 * so any reader (this stream's ticks, an outbound_track stream on the same call) sees the same
 * frame at the same call frame, whatever order the streams are pumped in.
 */
import { FRAME_BYTES, SILENCE_BYTE } from './audio-source.js';

/** Twilio discards outbound audio beyond ~10 minutes of buffer (31931). */
export const MAX_BUFFERED_FRAMES = (10 * 60 * 1000) / 20;
/** Played frames kept for late readers (an outbound stream a little behind this one). */
const KEEP_PLAYED_FRAMES = 250;
/** Marks waiting for their audio; more are refused as invalid (bounded memory). */
export const MAX_PENDING_MARKS = 10_000;
/** A mark name longer than this is refused (bounded memory; Twilio documents no limit). */
export const MAX_MARK_NAME = 256;

/** Filler between bursts of server audio: not the server's, so never counted as played. */
const SILENCE_GAP: Uint8Array = new Uint8Array(FRAME_BYTES).fill(SILENCE_BYTE);

/** Warnings Twilio raises about what a server sent (docs/twilio-protocol.md §3, §11). */
export const PLAYBACK_WARNINGS = {
  discarded: { code: 31931, name: 'Stream - Media Discarded' },
  binary: { code: 31950, name: 'Stream - Malformed Message' },
  invalid: { code: 31951, name: 'Stream - Invalid Message' },
} as const;

export type PlaybackWarning = (typeof PLAYBACK_WARNINGS)[keyof typeof PLAYBACK_WARNINGS];

export interface PlaybackStats {
  mediaReceived: number;
  marksReceived: number;
  marksEchoed: number;
  clears: number;
  /** Frames of server audio played into the call. */
  framesPlayed: number;
  /** Frames of server audio dropped by `clear` or the 10-minute bound. */
  framesDiscarded: number;
  /** Names of marks still waiting for their audio. */
  pendingMarks: string[];
  /** Warnings by code (31950, 31951, 31931). */
  warnings: Record<string, number>;
}

export interface PlaybackHooks {
  /** Send a mark echo now (the stream numbers it). */
  echoMark(name: string): void;
  /** A warning, with what caused it; the stream logs the first of each code. */
  warn(kind: PlaybackWarning, detail: string): void;
}

interface PendingMark {
  name: string;
  /** The mark is echoed once the call has played frame `atFrame - 1`. */
  atFrame: number;
}

export class Playback {
  readonly stats: PlaybackStats = {
    mediaReceived: 0,
    marksReceived: 0,
    marksEchoed: 0,
    clears: 0,
    framesPlayed: 0,
    framesDiscarded: 0,
    pendingMarks: [],
    warnings: {},
  };
  readonly #streamSid: string;
  readonly #hooks: PlaybackHooks;
  /** frames[i] plays at call frame base + i. */
  #frames: Uint8Array[] = [];
  #base = 0;
  /** First call frame not yet played (the stream's next tick). */
  #now = 0;
  /** Bytes of a partial last frame still being filled. */
  #partial: Uint8Array | null = null;
  #partialLen = 0;
  #marks: PendingMark[] = [];

  constructor(streamSid: string, hooks: PlaybackHooks) {
    this.#streamSid = streamSid;
    this.#hooks = hooks;
  }

  /** Call frame at which newly queued audio starts. */
  get #end(): number {
    return this.#base + this.#frames.length;
  }

  /** Frames queued and not yet played. */
  get bufferedFrames(): number {
    return Math.max(0, this.#end - this.#now);
  }

  /** Fixes the call frame the stream plays next (its first tick), before anything arrives. */
  begin(callFrame: number): void {
    this.#now = this.#base = callFrame;
  }

  /** One message from the server: text (JSON) or binary. Never throws. */
  receive(data: Buffer, isBinary: boolean): void {
    if (isBinary) return this.#warn(PLAYBACK_WARNINGS.binary, 'binary frame');
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      return this.#warn(PLAYBACK_WARNINGS.invalid, 'not JSON');
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return this.#warn(PLAYBACK_WARNINGS.invalid, 'not a JSON object');
    const m = msg as Record<string, unknown>;
    const problem = this.#check(m);
    if (problem !== null) return this.#warn(PLAYBACK_WARNINGS.invalid, problem);
    if (m.event === 'media') this.#queueAudio((m.media as { payload: string }).payload);
    else if (m.event === 'mark') this.#queueMark((m.mark as { name: string }).name);
    else this.#clear();
  }

  /**
   * The stream plays call frame `callFrame` now: marks whose audio has played are echoed,
   * then the frame is taken off the queue. Returns the server's frame, or null (nothing queued).
   */
  tick(callFrame: number): Uint8Array | null {
    this.#now = callFrame;
    this.#echoDue();
    const frame = this.frameAt(callFrame);
    if (frame !== null) this.stats.framesPlayed++;
    this.#now = callFrame + 1;
    this.#trim();
    return frame;
  }

  /** The server frame that plays at `callFrame`, if any (readers: outbound streams of the call). */
  frameAt(callFrame: number): Uint8Array | null {
    const i = callFrame - this.#base;
    if (i < 0 || i >= this.#frames.length) return null;
    if (i === this.#frames.length - 1 && this.#partial !== null) this.#sealPartial();
    const frame = this.#frames[i]!;
    return frame === SILENCE_GAP ? null : frame;
  }

  /** The stream ended: pending marks are dropped with it (Twilio sends nothing after `stop`). */
  close(): void {
    this.#frames = [];
    this.#marks = [];
    this.#partial = null;
    this.stats.pendingMarks = [];
  }

  /** Exactly the documented fields (docs/twilio-protocol.md §3), with this stream's SID. */
  #check(m: Record<string, unknown>): string | null {
    const keys = Object.keys(m);
    if (m.streamSid !== this.#streamSid) return `streamSid ${JSON.stringify(m.streamSid)} is not this stream's`;
    switch (m.event) {
      case 'media': {
        if (keys.length !== 3) return 'media must have exactly event, streamSid, media';
        const media = m.media as Record<string, unknown> | null;
        if (typeof media !== 'object' || media === null || Object.keys(media).length !== 1 || typeof media.payload !== 'string') {
          return 'media must be {payload}';
        }
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(media.payload) || media.payload.length % 4 !== 0) return 'media.payload is not base64';
        return null;
      }
      case 'mark': {
        if (keys.length !== 3) return 'mark must have exactly event, streamSid, mark';
        const mark = m.mark as Record<string, unknown> | null;
        if (typeof mark !== 'object' || mark === null || Object.keys(mark).length !== 1 || typeof mark.name !== 'string') return 'mark must be {name}';
        if (mark.name.length > MAX_MARK_NAME) return `mark.name is longer than ${MAX_MARK_NAME}`;
        if (this.#marks.length >= MAX_PENDING_MARKS) return `more than ${MAX_PENDING_MARKS} marks pending`;
        return null;
      }
      case 'clear':
        return keys.length === 2 ? null : 'clear must have exactly event, streamSid';
      default:
        return `unknown event ${JSON.stringify(m.event)}`;
    }
  }

  #queueAudio(payload: string): void {
    this.stats.mediaReceived++;
    const bytes = Buffer.from(payload, 'base64');
    // Audio queued after everything pending, never before the frame playing next.
    if (this.#end < this.#now) this.#restartAt(this.#now);
    let at = 0;
    while (at < bytes.length) {
      if (this.#partial === null) {
        if (this.bufferedFrames >= MAX_BUFFERED_FRAMES) {
          const dropped = Math.ceil((bytes.length - at) / FRAME_BYTES);
          this.stats.framesDiscarded += dropped;
          this.#warn(PLAYBACK_WARNINGS.discarded, `more than 10 minutes of audio buffered; ${dropped} frame(s) discarded`);
          return;
        }
        this.#partial = new Uint8Array(FRAME_BYTES).fill(SILENCE_BYTE);
        this.#partialLen = 0;
        this.#frames.push(this.#partial);
      }
      const n = Math.min(FRAME_BYTES - this.#partialLen, bytes.length - at);
      this.#partial.set(bytes.subarray(at, at + n), this.#partialLen);
      this.#partialLen += n;
      at += n;
      if (this.#partialLen === FRAME_BYTES) this.#partial = null;
    }
  }

  #queueMark(name: string): void {
    this.stats.marksReceived++;
    // A partial frame still plays whole: the mark waits for it.
    this.#sealPartial();
    const atFrame = Math.max(this.#end, this.#now);
    if (atFrame <= this.#now) {
      // Nothing buffered: echoed at once (docs/twilio-protocol.md §3).
      this.#echo(name);
      return;
    }
    this.#marks.push({ name, atFrame });
    this.stats.pendingMarks.push(name);
  }

  #clear(): void {
    this.stats.clears++;
    const unplayed = this.bufferedFrames;
    this.stats.framesDiscarded += unplayed;
    this.#frames.length = Math.max(0, this.#now - this.#base);
    this.#partial = null;
    const marks = this.#marks;
    this.#marks = [];
    this.stats.pendingMarks = [];
    for (const m of marks) this.#echo(m.name);
  }

  #warn(kind: PlaybackWarning, detail: string): void {
    const key = String(kind.code);
    this.stats.warnings[key] = (this.stats.warnings[key] ?? 0) + 1;
    this.#hooks.warn(kind, detail);
  }

  #echoDue(): void {
    while (this.#marks.length > 0 && this.#marks[0]!.atFrame <= this.#now) {
      this.#marks.shift();
      this.#echo(this.stats.pendingMarks.shift()!);
    }
  }

  #echo(name: string): void {
    this.stats.marksEchoed++;
    this.#hooks.echoMark(name);
  }

  #sealPartial(): void {
    this.#partial = null;
  }

  /** The queue ran dry: new audio starts at `frame` (frames before it stay readable briefly). */
  #restartAt(frame: number): void {
    this.#sealPartial();
    const gap = frame - this.#end;
    if (gap > KEEP_PLAYED_FRAMES) {
      this.#frames = [];
      this.#base = frame;
      return;
    }
    for (let i = 0; i < gap; i++) this.#frames.push(SILENCE_GAP);
  }

  /** Forgets frames played long enough ago that no reader will ask for them. */
  #trim(): void {
    const old = this.#now - KEEP_PLAYED_FRAMES - this.#base;
    if (old > KEEP_PLAYED_FRAMES) {
      this.#frames = this.#frames.slice(old);
      this.#base += old;
    }
  }
}
