/**
 * What differs between the remote speech services: how to connect, how audio is framed, which
 * control messages exist, and how replies read. The session (remote-session.ts) does the rest
 * (buffering, replay, reconnect, times) the same way for every service.
 */

/** A word as the service timed it: seconds on the connection's own audio clock. */
export interface WireWord {
  word: string;
  startSec: number;
  endSec: number;
  confidence: number;
}

export type ParsedMessage =
  | {
      kind: 'result';
      isFinal: boolean;
      text: string;
      words: WireWord[];
      /**
       * How far the service has finished with the audio (seconds on the connection clock):
       * a number; `answered` = up to the end of the audio message this reply answers (services
       * that reply once per message); null = nothing settled (partials).
       */
      settledSec: number | 'answered' | null;
    }
  /** Known messages the gateway does not act on (Metadata, SpeechStarted, UtteranceEnd). */
  | { kind: 'info'; type: string }
  /** Not a message of the protocol, or out of bounds: counted and ignored. */
  | { kind: 'malformed'; reason: string };

export interface RemoteProtocol {
  /** The `engine` label: `deepgram` or `vosk`. */
  readonly engine: string;
  /** The WebSocket URL, query included. */
  readonly url: string;
  /** Handshake headers (credentials: never logged). */
  readonly headers: Readonly<Record<string, string>>;
  /** Text messages sent first on every connection (Vosk's config). */
  readonly opening: readonly string[];
  /** Bytes on the wire per 8 kHz sample: 1 for mu-law as Twilio sent it, 2 for 16-bit PCM. */
  readonly bytesPerSample: 1 | 2;
  /** The audio message for `n` mu-law bytes of `src` (a fresh buffer: the socket keeps it). */
  encode(src: Uint8Array, n: number): Buffer;
  /** Sent once at the end; the service then sends its last results and closes. */
  readonly closeMessage: string;
  /** Sent when no audio flowed for a while, or null when the service needs none. */
  readonly keepAliveMessage: string | null;
  /** True when the service answers every audio message exactly once (Vosk). */
  readonly repliesPerMessage: boolean;
  /** Reads one text message; `maxSec` bounds the times it may carry (audio sent + slack). */
  parse(text: string, maxSec: number): ParsedMessage;
}

/** Bounds on what a reply may carry before it costs memory or CPU. */
export const MAX_WORDS = 1000;
export const MAX_WORD_CHARS = 100;
export const MAX_TEXT_CHARS = 20_000;

/** A number of seconds within [0, maxSec], or NaN. */
export function seconds(v: unknown, maxSec: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= maxSec ? v : Number.NaN;
}

/** A confidence clamped to 0..1 (a service may omit it: 1). */
export function confidence(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 1;
}

/** The JSON object a service sent; a string says why the text is not one. */
export function jsonObject(text: string): Record<string, unknown> | string {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'not an object';
  return m as Record<string, unknown>;
}

/**
 * A reply's word list (absent = none), each word bounded and timed within [0, maxSec];
 * `confidenceKey` is the service's name for the confidence field. A string says what is wrong.
 */
export function wireWords(raw: unknown, maxSec: number, confidenceKey: string): WireWord[] | string {
  const list = raw ?? [];
  if (!Array.isArray(list) || list.length > MAX_WORDS) return 'bad word list';
  const words: WireWord[] = [];
  for (const w of list as unknown[]) {
    const ww = w as Record<string, unknown> | null;
    const word = ww?.word;
    const start = seconds(ww?.start, maxSec);
    const end = seconds(ww?.end, maxSec);
    if (typeof word !== 'string' || word.length === 0 || word.length > MAX_WORD_CHARS || Number.isNaN(start) || Number.isNaN(end) || end < start) {
      return 'bad word';
    }
    words.push({ word, startSec: start, endSec: end, confidence: confidence(ww![confidenceKey]) });
  }
  return words;
}
