/**
 * The gateway's typed event bus: stream lifecycle, DTMF, level changes, transcripts and
 * spotted phrases flow from sessions and sinks to the conditions engine and live subscribers;
 * Twilio's conference-end callback is republished here for live subscribers (the demo).
 * `emit` is safe (mediasoup's safeEmit): a listener that throws is logged and counted, and
 * never reaches the socket that produced the event.
 */
import type { Logger } from 'pino';
import type { CloseReason, StreamInfo, Track } from './stream.js';
import type { PhraseEvent, TranscriptEvent } from './transcript.js';
import type { ConferenceEndEvent } from './conference.js';

export interface LevelChange {
  info: StreamInfo;
  track: Track;
  /** True when the track turned to speech, false when it turned silent. */
  speaking: boolean;
  /** Media-clock time of the change (the frame that decided it), ms. */
  atMs: number;
  /**
   * Media-clock start of the new state, ms: the first frame of the run that decided it (speech
   * needs a short run of loud frames, silence a longer hangover of quiet ones, so this is earlier
   * than `atMs`). Absent from emitters that do not know it; then read it as `atMs`.
   */
  sinceMs?: number;
}

export interface GatewayEvents {
  'stream-start': [info: StreamInfo];
  /** After every sink of the stream closed. */
  'stream-end': [info: StreamInfo, reason: CloseReason];
  /** Media-clock position of the stream advanced (first frame of every ~second per track is enough). */
  'media-progress': [info: StreamInfo, track: Track, atMs: number];
  dtmf: [info: StreamInfo, digit: string, atMs: number];
  level: [change: LevelChange];
  transcript: [event: TranscriptEvent];
  /** A final transcript of another process sharing REDIS_URL (for live subscribers only: SSE). */
  'peer-transcript': [event: TranscriptEvent];
  phrase: [event: PhraseEvent];
  /** Twilio's signed `conference-end` status callback reached the gateway (after the conditions engine heard it). */
  'conference-end': [event: ConferenceEndEvent];
}

type Listener<A extends unknown[]> = (...args: A) => void;

export class EventBus {
  #listeners: { [K in keyof GatewayEvents]?: Listener<GatewayEvents[K]>[] } = {};
  #log: Logger;
  /** Listener failures, exposed for tests and metrics. */
  listenerErrors = 0;

  constructor(log: Logger) {
    this.#log = log;
  }

  on<K extends keyof GatewayEvents>(event: K, listener: Listener<GatewayEvents[K]>): () => void {
    const list = (this.#listeners[event] ??= []) as Listener<GatewayEvents[K]>[];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  hasListeners(event: keyof GatewayEvents): boolean {
    const list = this.#listeners[event];
    return list !== undefined && list.length > 0;
  }

  emit<K extends keyof GatewayEvents>(event: K, ...args: GatewayEvents[K]): void {
    const list = this.#listeners[event] as Listener<GatewayEvents[K]>[] | undefined;
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!(...args);
      } catch (err) {
        this.listenerErrors++;
        this.#log.error({ err, event }, 'event listener threw');
      }
    }
  }
}
