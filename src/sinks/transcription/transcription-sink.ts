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
 * Capacity: at most `maxStreams` engine sessions (one per track) run at once, because each
 * costs a recogniser process. Tracks beyond it are not transcribed (they are still recorded);
 * a stream none of whose tracks fit gets no sink (open returns null) and is counted in
 * `stats.capped`. The overflow policy inside a session is the engine's: drop the oldest audio
 * and count it (ctx.stats.dropped).
 */
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { EventBus } from '../../core/events.js';
import { type MediaFrame, type Sink, type SinkContext, type SinkFactory } from '../sink.js';
import { TRACK_INDEX, type CloseReason, type StreamInfo, type Track } from '../../core/stream.js';
import type { EngineSession, SpeechEngine } from './engines/engine.js';
import { createTranscriptionStats, type TranscriptionStats } from './stats.js';
import { TranscriptFile, transcriptPath } from './transcript-file.js';
import type { PhraseEvent, TranscriptEvent, TranscriptResult } from '../../core/transcript.js';
import { WriteClock } from './write-clock.js';

export interface TranscriptionSinkOptions {
  engine: SpeechEngine;
  /** `STREAMGATE_DATA_DIR`; transcripts go under `transcripts/`. */
  dataDir: string;
  /** Engine sessions (tracks) transcribed at once; default os.availableParallelism(). */
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
  /** Engine sessions (tracks) allowed at once. */
  readonly maxStreams: number;
}

/** Creates the transcription sink factory; `shutdown()` also shuts the engine down. */
export function createTranscriptionSinkFactory(opts: TranscriptionSinkOptions): TranscriptionSinkFactory {
  const stats = opts.stats ?? createTranscriptionStats();
  const maxStreams = opts.maxStreams ?? availableParallelism();
  const phrases = opts.phrases ?? [];
  /** True while at capacity after the info line was logged; logged again after it clears. */
  let capLogged = false;

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
      const tracks: Track[] = [];
      for (const track of info.tracks) {
        if (stats.activeSessions + tracks.length < maxStreams) tracks.push(track);
        else stats.capped++;
      }
      if (tracks.length < info.tracks.length) {
        const skipped = info.tracks.filter((t) => !tracks.includes(t));
        if (!capLogged) {
          capLogged = true;
          ctx.log.info({ maxStreams, skipped }, 'transcription at capacity; tracks recorded but not transcribed');
        } else {
          ctx.log.debug({ maxStreams, skipped }, 'transcription at capacity');
        }
      } else {
        capLogged = false;
      }
      if (tracks.length === 0) return null;
      stats.activeSessions += tracks.length;
      return new TranscriptionSink(info, ctx, opts, stats, phrases, tracks, file);
    },
    async shutdown(): Promise<void> {
      await opts.engine.shutdown();
    },
  };
}

/** Per-track state: the engine session and when its audio was written. */
interface TrackState {
  readonly track: Track;
  readonly session: EngineSession;
  readonly clock: WriteClock;
  firstResultSeen: boolean;
}

class TranscriptionSink implements Sink {
  readonly name = 'transcription';
  readonly #info: StreamInfo;
  readonly #ctx: SinkContext;
  readonly #opts: TranscriptionSinkOptions;
  readonly #stats: TranscriptionStats;
  readonly #file: TranscriptFile;
  /** Indexed by TRACK_INDEX; null for a track not transcribed. */
  readonly #tracks: [TrackState | null, TrackState | null] = [null, null];
  #closed: Promise<void> | null = null;

  constructor(
    info: StreamInfo,
    ctx: SinkContext,
    opts: TranscriptionSinkOptions,
    stats: TranscriptionStats,
    phrases: readonly string[],
    tracks: readonly Track[],
    file: TranscriptFile,
  ) {
    this.#info = info;
    this.#ctx = ctx;
    this.#opts = opts;
    this.#stats = stats;
    this.#file = file;
    for (const track of tracks) {
      const log: Logger = ctx.log.child({ track });
      const clock = new WriteClock();
      const state: TrackState = {
        track,
        clock,
        firstResultSeen: false,
        session: opts.engine.open({
          log,
          phrases,
          onResult: (r) => this.#onResult(state, r),
          onPhrase: (p) => this.#onPhrase(track, p.phrase, p.startMs, p.endMs),
          onHole: (startMs, endMs) => this.#onHole(track, startMs, endMs),
          onDrop: (frames) => {
            ctx.stats.dropped += frames;
            opts.onDropped?.(frames);
          },
          onRestart: () => stats.restarts++,
          onError: () => ctx.stats.errors++,
        }),
      };
      this.#tracks[TRACK_INDEX[track]] = state;
    }
  }

  accept(frame: MediaFrame): void {
    // A late frame belongs before audio the recogniser already has; decoding it out of order
    // would only produce noise, so it is left to the recording.
    if (frame.late || this.#closed !== null) return;
    const state = this.#tracks[frame.trackIndex];
    if (state === null) return;
    state.session.write(frame.pcm, frame.samples, frame.timestampMs, frame.mulaw);
    state.clock.record(frame.timestampMs + frame.samples / 8, frame.receivedAt);
  }

  close(_reason: CloseReason): Promise<void> {
    this.#closed ??= this.#finish();
    return this.#closed;
  }

  async #finish(): Promise<void> {
    const sessions: Promise<void>[] = [];
    let open = 0;
    for (const state of this.#tracks) {
      if (state === null) continue;
      open++;
      sessions.push(state.session.end());
    }
    try {
      await Promise.all(sessions);
    } catch (err) {
      this.#ctx.stats.errors++;
      this.#ctx.log.warn({ err }, 'transcription session did not end cleanly');
    }
    this.#stats.activeSessions -= open;
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
      accountSid: info.accountSid,
      callSid: info.callSid,
      streamSid: info.streamSid,
      conferenceSid: info.conferenceSid,
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
      accountSid: info.accountSid,
      callSid: info.callSid,
      streamSid: info.streamSid,
      conferenceSid: info.conferenceSid,
      track,
      phrase,
      startMs,
      endMs,
    };
    this.#ctx.log.info({ track, phrase, startMs, endMs }, 'phrase spotted');
    this.#opts.bus.emit('phrase', event);
  }
}
