/**
 * Turns a stream's audio into numbered `media` messages, tick by tick:
 *
 *   tick k ─► per track: StreamAudio.frame ─► [Rechunker] ─► silence suppression
 *          ─► numbering (sequenceNumber, chunk, timestamp) ─► [FaultPipeline] ─► outbox
 *
 * One tick is one frame per track, inbound first, so both_tracks interleaves the tracks
 * message by message. The producer owns the stream's sequenceNumber counter, which `start`
 * and `stop` share with the media messages.
 */
import { isSilent } from './audio-source.js';
import { FaultPipeline, Rechunker, type OutboxItem } from './frame-faults.js';
import { mediaMessage } from './messages.js';
import type { FrameOut, StreamAudio } from './stream-audio.js';
import type { MediaTrack, StreamFaults } from './types.js';

export interface ProducerConfig {
  streamSid: string;
  tracks: readonly MediaTrack[];
  chunkCounting: 'per-track' | 'shared';
  faults: StreamFaults | null;
}

export class FrameProducer {
  /** Messages (and stall markers) ready to go out, oldest first; the streamer drains it. */
  readonly outbox: OutboxItem[] = [];
  /** Frames not sent because they were silent (silenceGaps). */
  suppressed = 0;
  readonly #cfg: ProducerConfig;
  readonly #audio: StreamAudio;
  readonly #pipeline: FaultPipeline | null;
  readonly #rechunker: Rechunker | null;
  readonly #silenceGaps: boolean;
  readonly #frame: FrameOut = { bytes: new Uint8Array(0), payload: '' };
  #seq = 0;
  #chunk = { inbound: 0, outbound: 0 };
  #chunkShared = 0;
  #ordinal = 0;
  #tick = 0;
  #tsBase = 0;

  constructor(cfg: ProducerConfig, audio: StreamAudio) {
    this.#cfg = cfg;
    this.#audio = audio;
    const f = cfg.faults;
    this.#pipeline = f !== null && (f.drop || f.duplicate || f.reorder || f.delay) ? new FaultPipeline(f) : null;
    this.#rechunker = f?.chunkSizes !== undefined && f.chunkSizes.length > 0 ? new Rechunker(f.chunkSizes) : null;
    this.#silenceGaps = f?.silenceGaps === true;
  }

  /** Takes the next sequenceNumber (`start` gets 1, `stop` the last + 1). */
  nextSequence(): number {
    return ++this.#seq;
  }

  /** Fixes the first frame and the first timestamp (a capture's own, else `timestampOffsetMs`). */
  begin(timestampOffsetMs: number): void {
    this.#audio.begin();
    this.#tsBase = this.#audio.firstTimestampMs ?? timestampOffsetMs;
  }

  /** Media time of the next tick relative to the first, ms (the pacing schedule). */
  nextOffsetMs(): number {
    return this.#audio.offsetMs(this.#tick);
  }

  /** Ticks produced so far (the next tick's index). */
  get ticks(): number {
    return this.#tick;
  }

  /** Produces the next tick into the outbox; false when the call's audio has ended. */
  produce(): boolean {
    const k = this.#tick;
    if (this.#audio.ended(k)) return false;
    const ts = this.#tsBase + this.#audio.offsetMs(k);
    const frame = this.#frame;
    const tracks = this.#cfg.tracks;
    for (let i = 0; i < tracks.length; i++) {
      const track = tracks[i]!;
      this.#audio.frame(track, k, frame);
      if (this.#rechunker !== null) this.#rechunker.push(track, frame.bytes, ts, this.#emitChunk);
      else this.#emit(track, frame.bytes, frame.payload, ts);
    }
    this.#tick = k + 1;
    return true;
  }

  /** Moves everything still held (a partial chunk, reordered frames) into the outbox. */
  finish(): void {
    this.#rechunker?.flush(this.#emitChunk);
    this.#pipeline?.flush(this.outbox);
  }

  get dropped(): number {
    return this.#pipeline?.dropped ?? 0;
  }
  get duplicated(): number {
    return this.#pipeline?.duplicated ?? 0;
  }
  get reordered(): number {
    return this.#pipeline?.reordered ?? 0;
  }

  readonly #emitChunk = (track: MediaTrack, chunk: Uint8Array, timestamp: number): void => {
    this.#emit(track, chunk, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length).toString('base64'), timestamp);
  };

  #emit(track: MediaTrack, bytes: Uint8Array, payload: string, timestamp: number): void {
    if (this.#silenceGaps && isSilent(bytes)) {
      this.suppressed++;
      return;
    }
    const seq = ++this.#seq;
    const chunk = this.#cfg.chunkCounting === 'shared' ? ++this.#chunkShared : ++this.#chunk[track];
    const text = mediaMessage(seq, track, chunk, timestamp, payload, this.#cfg.streamSid);
    const ordinal = ++this.#ordinal;
    if (this.#pipeline !== null) this.#pipeline.push(text, ordinal, this.outbox);
    else this.outbox.push(text);
  }
}
