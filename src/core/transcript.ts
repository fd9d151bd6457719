/** Results of speech recognition, on the stream's media clock (ms since stream start). */
import type { StreamIds, Track } from './stream.js';

export interface TranscriptWord {
  word: string;
  startMs: number;
  endMs: number;
  /** 0..1 */
  confidence: number;
}

export interface TranscriptResult {
  text: string;
  isFinal: boolean;
  words: TranscriptWord[];
  startMs: number;
  endMs: number;
}

/** A result attributed to its stream and track, as the gateway publishes it. */
export interface TranscriptEvent extends TranscriptResult, StreamIds {
  track: Track;
}

/** A rule phrase spotted in the audio (keyword spotting), media-clock times. */
export interface PhraseEvent extends StreamIds {
  track: Track;
  phrase: string;
  startMs: number;
  endMs: number;
}
