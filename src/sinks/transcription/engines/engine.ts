/**
 * The speech-engine contract the transcription sink drives. An engine is created once per
 * gateway; it opens one session per transcribed track.
 *
 *   sink.accept(frame) ──► session.write(pcm8k, samples, mediaMs, mulaw)   sync, bounded, no I/O wait
 *                                   │  (engine-owned buffer; oldest audio dropped when full)
 *                                   ▼
 *                           recogniser (process, thread, speech service over a socket…)
 *                                   │
 *   onResult (partial, final) ◄─────┤   times on the stream's media clock
 *   onPhrase / onHole        ◄──────┘
 *
 * Engines: pocketsphinx (local processes, finals and keyword spotting), deepgram and vosk
 * (remote services: partials and finals; see engines/remote/). `end()` flushes: every result the
 * recogniser still owes for audio written before it is delivered (bounded wait) before it resolves.
 *
 * Every time an engine reports is on the media clock: derived from the `mediaTimestampMs` of
 * the audio written, never from wall time or the recogniser's own stream position. Gaps in the
 * media timestamps and audio the engine dropped must not shift later results.
 */
import type { Logger } from 'pino';
import type { TranscriptResult } from '../../../core/transcript.js';

/** A phrase spotted in the audio, media-clock times. */
export interface PhraseHit {
  phrase: string;
  startMs: number;
  endMs: number;
  /** Spotter hits: log10 of the largest spotting threshold the hit passes (its strength). */
  score?: number;
}

export interface EngineSessionOptions {
  /** The stream's (or track's) child logger. */
  log: Logger;
  /** Phrases to spot (lower-case words); empty for none. */
  phrases: readonly string[];
  /** Partial (interim, may change) and final results; only finals are written and published as transcripts. */
  /**
   * Transcribe from the start (default true). False: spot the phrases only (cheap) until
   * `startTranscribing()`; the sink does this while TRANSCRIPTION_MAX_STREAMS is reached.
   */
  transcribe?: boolean;
  onResult(result: TranscriptResult): void;
  onPhrase(hit: PhraseHit): void;
  /**
   * Audio between these media times was never recognised (a remote service was unreachable for
   * longer than the replay window): the transcript has a hole there.
   */
  onHole?(startMs: number, endMs: number): void;
  /** Audio the engine could not take (its buffer was full), in 20 ms frames. */
  onDrop(frames: number): void;
  /** The recogniser failed and was restarted; the session goes on. */
  onRestart?(): void;
  /** The recogniser failed in a way the session cannot recover from (audio is discarded after). */
  onError?(err: Error): void;
}

export interface EngineSession {
  /**
   * Takes `samples` samples of 8 kHz linear PCM starting at media time `mediaTimestampMs`, and
   * the same audio as the mu-law bytes Twilio sent when the caller has them (an engine that
   * sends mu-law encodes `pcm8k` otherwise). Copies what it keeps (the caller reuses both
   * buffers), never blocks, never throws.
   */
  write(pcm8k: Int16Array, samples: number, mediaTimestampMs: number, mulaw?: Uint8Array): void;
  /**
   * Starts full transcription of a session opened with `transcribe: false` (from the audio
   * written next). Idempotent. An engine without a separate spotter may transcribe throughout.
   */
  startTranscribing?(): void;
  /**
   * No more audio: lets the recogniser finish what it was given, delivers the last results,
   * releases everything. Idempotent; never rejects.
   */
  end(): Promise<void>;
}

export interface SpeechEngine {
  readonly name: string;
  open(opts: EngineSessionOptions): EngineSession;
  /** Ends every open session and frees shared resources. Idempotent. */
  shutdown(): Promise<void>;
}
