/**
 * The transcription sink: each announced track of a stream gets an engine session; final
 * results become JSONL lines, 'transcript' events and (optionally) webhook posts, spotted
 * phrases become 'phrase' events.
 *
 *   accept(frame) ─► session[frame.trackIndex].write(pcm, samples, timestamp, mulaw)   (copy, sync)
 *                           │ engine
 *                           ├─ final ─► transcript file (JSONL) + bus 'transcript' + onTranscript
 *                           ├─ partial ─► bus 'transcript' (isFinal false: phrase rules with `partial: true`)
 *                           ├─ hole ─► transcript file (`hole: true` line) + warning
 *                           └─ phrase ─► bus 'phrase'
 *
 * Capacity: full transcription (the language-model recogniser, RTF ~0.1-0.25) runs for at
 * most `maxStreams` tracks at once. Phrase spotting (RTF ~0.02) runs for every track whenever
 * rules name phrases, so a conference's phrase rules never depend on the cap. A track beyond
 * the cap waits in a queue (FIFO) and starts being transcribed when a slot frees; it is counted
 * in `stats.capped` once and in `stats.waiting` while it waits, and shown in /v1/streams. The
 * overflow policy inside a session is the engine's: drop the oldest audio and count it
 * (ctx.stats.dropped).
 */
import type { Logger } from 'pino';
import type { EventBus } from '../../core/events.js';
import { type MediaFrame, type Sink, type SinkContext, type SinkFactory } from '../sink.js';
import { streamIds, TRACK_INDEX, type CloseReason, type StreamInfo, type Track } from '../../core/stream.js';
import type { EngineSession, SpeechEngine } from './engines/engine.js';
import { defaultTranscriptionSlots } from './capacity.js';
import { createTranscriptionStats, type TranscriptionStats } from './stats.js';
import { TranscriptFile, transcriptPath } from './transcript-file.js';
import type { PhraseEvent, TranscriptEvent, TranscriptResult } from '../../core/transcript.js';
import { WriteClock } from './write-clock.js';

export interface TranscriptionSinkOptions {
  engine: SpeechEngine;
  /** `STREAMGATE_DATA_DIR`; transcripts go under `transcripts/`. */
  dataDir: string;
  /** Tracks fully transcribed at once; default defaultTranscriptionSlots(). */
  maxStreams?: number;
  /** Rule phrases to spot. */
  phrases?: readonly string[];
  bus: EventBus;
  /** Also called with each final result (e.g. TranscriptWebhook.enqueue). Must not throw. */
  onTranscript?: (event: TranscriptEvent) => void;
  /** Called with frames the engine dropped (beyond ctx.stats.dropped), e.g. for a log or alert. */
  onDropped?: (frames: number) => void;
  /** The counters to bump (the gateway's metrics own them and read them at scrape time); default a fresh set. */
  stats?: TranscriptionStats;
}

/** The factory, with the counters the gateway's metrics read. */
export interface TranscriptionSinkFactory extends SinkFactory {
  readonly stats: TranscriptionStats;
  /** Tracks fully transcribed at once. */
  readonly maxStreams: number;
  /** How each track of a live stream is handled now, or null when this sink does not hold it. */
  status(streamSid: string): Partial<Record<Track, TrackTranscription>> | null;
}

/** `transcribed`: full transcript (and phrases); `phrases-only`: waiting for a slot, phrases spotted; `waiting`: neither yet. */
export type TrackTranscription = 'transcribed' | 'phrases-only' | 'waiting';

/** Creates the transcription sink factory; `shutdown()` also shuts the engine down. */
export function createTranscriptionSinkFactory(opts: TranscriptionSinkOptions): TranscriptionSinkFactory {
  const stats = opts.stats ?? createTranscriptionStats();
  const maxStreams = opts.maxStreams ?? defaultTranscriptionSlots();
  const phrases = opts.phrases ?? [];
  const sinks = new Map<string, TranscriptionSink>();
  /** Tracks waiting for a transcription slot, oldest first. */
  const queue: TrackState[] = [];
  /** True while at capacity after the info line was logged; logged again after it clears. */
  let capLogged = false;

  const slots: SlotPool = {
    take(state: TrackState): boolean {
      if (stats.activeSessions < maxStreams) {
        stats.activeSessions++;
        return true;
      }
      stats.capped++;
      stats.waiting++;
      queue.push(state);
      if (!capLogged) {
        capLogged = true;
        state.log.info({ maxStreams, phrasesSpotted: phrases.length > 0 }, 'transcription at capacity; track waits for a slot');
      } else {
        state.log.debug({ maxStreams }, 'transcription at capacity; track waits for a slot');
      }
      return false;
    },
    release(state: TrackState, hadSlot: boolean): void {
      if (!hadSlot) {
        const i = queue.indexOf(state);
        if (i !== -1) {
          queue.splice(i, 1);
          stats.waiting--;
        }
        return;
      }
      stats.activeSessions--;
      const next = queue.shift();
      if (next === undefined) {
        capLogged = false;
        return;
      }
      stats.waiting--;
      stats.activeSessions++;
      next.promote();
    },
  };

  return {
    name: 'transcription',
    stats,
    maxStreams,
    open(info: StreamInfo, ctx: SinkContext): Sink | null {
      let file: TranscriptFile;
      try {
        file = new TranscriptFile(transcriptPath(opts.dataDir, info.accountSid, info.callSid, info.streamSid), (err) => {
          ctx.stats.errors++;
          ctx.log.warn({ err }, 'transcript line not written');
        });
      } catch (err) {
        ctx.stats.errors++;
        ctx.log.warn({ err }, 'stream not transcribed: invalid SID');
        return null;
      }
      const sink = new TranscriptionSink(info, ctx, opts, stats, phrases, file, slots, () => sinks.delete(info.streamSid));
      sinks.set(info.streamSid, sink);
      return sink;
    },
    status(streamSid: string) {
      return sinks.get(streamSid)?.status() ?? null;
    },
    async shutdown(): Promise<void> {
      await opts.engine.shutdown();
    },
  };
}

interface SlotPool {
  /** True when `state` got a slot now; false when it was queued (promote() is called later). */
  take(state: TrackState): boolean;
  /** `state` is done: frees its slot (the next queued track gets it) or leaves the queue. */
  release(state: TrackState, hadSlot: boolean): void;
}

/** Per-track state: the engine session, its transcription slot and when its audio was written. */
interface TrackState {
  readonly track: Track;
  readonly log: Logger;
  readonly clock: WriteClock;
  /** Null while waiting for a slot with no phrases to spot. */
  session: EngineSession | null;
  hasSlot: boolean;
  firstResultSeen: boolean;
  /** Called by the slot pool when this waiting track gets a slot. */
  promote(): void;
}

class TranscriptionSink implements Sink {
  readonly name = 'transcription';
  readonly #info: StreamInfo;
  readonly #ctx: SinkContext;
  readonly #opts: TranscriptionSinkOptions;
  readonly #stats: TranscriptionStats;
  readonly #file: TranscriptFile;
  readonly #phrases: readonly string[];
  readonly #slots: SlotPool;
  readonly #onClosed: () => void;
  /** Indexed by TRACK_INDEX; null for a track the stream does not carry. */
  readonly #tracks: [TrackState | null, TrackState | null] = [null, null];
  #closed: Promise<void> | null = null;

  constructor(
    info: StreamInfo,
    ctx: SinkContext,
    opts: TranscriptionSinkOptions,
    stats: TranscriptionStats,
    phrases: readonly string[],
    file: TranscriptFile,
    slots: SlotPool,
    onClosed: () => void,
  ) {
    this.#info = info;
    this.#ctx = ctx;
    this.#opts = opts;
    this.#stats = stats;
    this.#file = file;
    this.#phrases = phrases;
    this.#slots = slots;
    this.#onClosed = onClosed;
    for (const track of info.tracks) {
      const state: TrackState = {
        track,
        log: ctx.log.child({ track }),
        clock: new WriteClock(),
        session: null,
        hasSlot: false,
        firstResultSeen: false,
        promote: () => {
          state.hasSlot = true;
          if (state.session === null) state.session = this.#open(state, true);
          else state.session.startTranscribing?.();
          state.log.info('transcription slot free; track now transcribed');
        },
      };
      this.#tracks[TRACK_INDEX[track]] = state;
      state.hasSlot = slots.take(state);
      // Phrases are spotted on every track, slot or not: phrase rules must not depend on the cap.
      if (state.hasSlot || phrases.length > 0) state.session = this.#open(state, state.hasSlot);
    }
  }

  /** How each track is handled now (for /v1/streams). */
  status(): Partial<Record<Track, TrackTranscription>> {
    const out: Partial<Record<Track, TrackTranscription>> = {};
    for (const state of this.#tracks) {
      if (state === null) continue;
      out[state.track] = state.hasSlot ? 'transcribed' : state.session !== null ? 'phrases-only' : 'waiting';
    }
    return out;
  }

  #open(state: TrackState, transcribe: boolean): EngineSession {
    const ctx = this.#ctx;
    const opts = this.#opts;
    return opts.engine.open({
      log: state.log,
      phrases: this.#phrases,
      transcribe,
      onResult: (r) => this.#onResult(state, r),
      onPhrase: (p) => this.#onPhrase(state.track, p.phrase, p.startMs, p.endMs),
      onHole: (startMs, endMs) => this.#onHole(state.track, startMs, endMs),
      onDrop: (frames) => {
        ctx.stats.dropped += frames;
        opts.onDropped?.(frames);
      },
      onRestart: () => this.#stats.restarts++,
      onError: () => ctx.stats.errors++,
    });
  }

  accept(frame: MediaFrame): void {
    // A late frame belongs before audio the recogniser already has; decoding it out of order
    // would only produce noise, so it is left to the recording.
    if (frame.late || this.#closed !== null) return;
    const state = this.#tracks[frame.trackIndex];
    if (state === null || state.session === null) return;
    state.session.write(frame.pcm, frame.samples, frame.timestampMs, frame.mulaw);
    state.clock.record(frame.timestampMs + frame.samples / 8, frame.receivedAt);
  }

  close(_reason: CloseReason): Promise<void> {
    this.#closed ??= this.#finish();
    return this.#closed;
  }

  async #finish(): Promise<void> {
    const ending: Promise<void>[] = [];
    for (const state of this.#tracks) {
      if (state === null) continue;
      // A waiting track leaves the queue now; a slot is given back once its recogniser has
      // finished the audio it holds (that CPU is still in use until then).
      if (!state.hasSlot) this.#slots.release(state, false);
      if (state.session === null) continue;
      const hadSlot = state.hasSlot;
      ending.push(state.session.end().finally(() => hadSlot && this.#slots.release(state, true)));
    }
    try {
      await Promise.all(ending);
    } catch (err) {
      this.#ctx.stats.errors++;
      this.#ctx.log.warn({ err }, 'transcription session did not end cleanly');
    }
    this.#onClosed();
    await this.#file.flush();
  }

  #onResult(state: TrackState, result: TranscriptResult): void {
    const info = this.#info;
    if (result.isFinal) this.#stats.transcripts.final++;
    else this.#stats.transcripts.partial++;
    if (result.isFinal) {
      const wall = state.clock.wallAt(result.endMs);
      if (!Number.isNaN(wall)) {
        const latency = performance.now() - wall;
        this.#stats.resultLatencyMs.add(latency);
        if (!state.firstResultSeen) this.#stats.firstResultLatencyMs.add(latency);
      }
      state.firstResultSeen = true;
    }
    const event: TranscriptEvent = {
      ...result,
      ...streamIds(info),
      track: state.track,
    };
    if (!result.isFinal) {
      // Partials only reach the bus: phrase rules with `partial: true` read them; SSE and the
      // webhook publish finals only.
      this.#opts.bus.emit('transcript', event);
      return;
    }
    this.#file.append({
      streamSid: info.streamSid,
      callSid: info.callSid,
      track: state.track,
      text: result.text,
      startMs: result.startMs,
      endMs: result.endMs,
      words: result.words,
    });
    const log = this.#ctx.log;
    if (log.isLevelEnabled('debug')) {
      log.debug({ track: state.track, text: result.text, startMs: result.startMs, endMs: result.endMs }, 'transcript');
    }
    this.#opts.bus.emit('transcript', event);
    if (this.#opts.onTranscript !== undefined) {
      try {
        this.#opts.onTranscript(event);
      } catch (err) {
        this.#ctx.stats.errors++;
        log.warn({ err }, 'onTranscript threw');
      }
    }
  }

  #onHole(track: Track, startMs: number, endMs: number): void {
    const info = this.#info;
    this.#file.append({ streamSid: info.streamSid, callSid: info.callSid, track, text: '', startMs, endMs, words: [], hole: true });
    this.#ctx.log.warn({ track, startMs, endMs }, 'transcript hole: this audio was never recognised');
  }

  #onPhrase(track: Track, phrase: string, startMs: number, endMs: number): void {
    const info = this.#info;
    this.#stats.phrases++;
    const event: PhraseEvent = {
      ...streamIds(info),
      track,
      phrase,
      startMs,
      endMs,
    };
    this.#ctx.log.info({ track, phrase, startMs, endMs }, 'phrase spotted');
    this.#opts.bus.emit('phrase', event);
  }
}
