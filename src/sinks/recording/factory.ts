/**
 * The recording SinkFactory: checks options once, turns a stream's `start` into file paths and a
 * channel layout, and runs one coarse flush ticker for all its live streams (undici's
 * lib/util/timers.js idea: one timer for many, not one per stream).
 */
import { ConfigError } from '../../errors.js';
import { TRACKS, type SinkContext, type SinkFactory, type StreamInfo, type Track } from '../sink.js';
import { LocalDirectoryArchiver, type Archiver } from './archiver.js';
import { recordingPaths } from './paths.js';
import { RecordingSink } from './recording-sink.js';
import { wavLayout, type RecordingFormat } from './wav-header.js';

export interface RecordingSinkOptions {
  /** `$STREAMGATE_DATA_DIR`; recordings go under `recordings/`. */
  readonly dataDir: string;
  /** `pcm16` (default): 16-bit linear PCM; `mulaw`: G.711 WAV bit-exact to the wire. */
  readonly format?: RecordingFormat;
  /** Audio per stream that may wait for the disk before frames are dropped (default 5000). */
  readonly bufferMs?: number;
  /**
   * How often buffered audio is written and the header patched (default 200). At most 1000:
   * that bounds what a killed process loses.
   */
  readonly flushIntervalMs?: number;
  /**
   * How long a two-track recording holds audio back waiting for the slower track (default 500,
   * at most half the buffer). A track later than this loses its frames (counted late).
   */
  readonly maxTrackLagMs?: number;
  /** Called after each manifest is written (default: {@link LocalDirectoryArchiver}, in place). */
  readonly archiver?: Archiver;
}

/** A SinkFactory whose sinks are {@link RecordingSink}s. */
export interface RecordingSinkFactory extends SinkFactory {
  open(info: StreamInfo, ctx: SinkContext): RecordingSink | null;
  /** Stops the flush ticker and waits for closes and archiving still under way. */
  shutdown(): Promise<void>;
}

const SAMPLES_PER_MS = 8;

/** Makes the recording sink factory. Throws ConfigError on bad options. */
export function createRecordingSinkFactory(opts: RecordingSinkOptions): RecordingSinkFactory {
  const format = opts.format ?? 'pcm16';
  if (format !== 'pcm16' && format !== 'mulaw') throw new ConfigError(`recording format must be pcm16 or mulaw, got ${String(format)}`);
  if (typeof opts.dataDir !== 'string' || opts.dataDir === '') throw new ConfigError('recording dataDir must be a directory path');
  const bufferMs = checkRange('bufferMs', opts.bufferMs ?? 5000, 20, 600_000);
  const flushIntervalMs = checkRange('flushIntervalMs', opts.flushIntervalMs ?? 200, 1, 1000);
  const maxTrackLagMs = checkRange('maxTrackLagMs', opts.maxTrackLagMs ?? 500, 0, 60_000);
  const capacityFrames = Math.ceil(bufferMs * SAMPLES_PER_MS);
  const lagFrames = Math.min(Math.round(maxTrackLagMs * SAMPLES_PER_MS), capacityFrames >> 1);
  // Past a quarter of the buffer (at most 0.5 s) the writer starts without waiting for the tick.
  const flushThresholdFrames = Math.max(160, Math.min(capacityFrames >> 2, 4000));
  const archiver = opts.archiver ?? new LocalDirectoryArchiver();
  const dataDir = opts.dataDir;

  const live = new Set<RecordingSink>();
  /** Closes and archives under way; shutdown() waits for them. */
  const pending = new Set<Promise<void>>();
  const background = (work: Promise<void>): void => {
    pending.add(work);
    void work.finally(() => pending.delete(work));
  };
  let timer: NodeJS.Timeout | null = null;

  const tick = (): void => {
    for (const sink of live) sink.flushTick();
  };
  const onClosing = (sink: RecordingSink, done: Promise<void>): void => {
    // A closing sink drives its own last flush; it needs no more ticks.
    live.delete(sink);
    if (live.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
    background(done);
  };

  return {
    name: 'recording',
    open(info: StreamInfo, ctx: SinkContext): RecordingSink | null {
      let paths;
      try {
        paths = recordingPaths(dataDir, info.accountSid, info.callSid, info.streamSid);
      } catch (err) {
        ctx.stats.errors++;
        ctx.log.error({ err }, 'recording refused: bad SID in stream start');
        return null;
      }
      const trackOfChannel = recordedTracks(info.tracks);
      const channels = trackOfChannel.length as 1 | 2;
      const channelOfTrack: [number, number] = [trackOfChannel.indexOf('inbound'), trackOfChannel.indexOf('outbound')];
      const sink = new RecordingSink({
        info,
        ctx,
        paths,
        layout: wavLayout(format, channels),
        trackOfChannel,
        channelOfTrack,
        capacityFrames,
        lagFrames,
        flushThresholdFrames,
        archiver,
        onClosing,
        background,
      });
      live.add(sink);
      if (timer === null) {
        timer = setInterval(tick, flushIntervalMs);
        timer.unref();
      }
      return sink;
    },
    async shutdown(): Promise<void> {
      if (timer !== null) clearInterval(timer);
      timer = null;
      // Archiving starts when a close ends, so wait until nothing new appears.
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}

/** The recorded tracks in channel order (inbound left), from `start.tracks`; inbound if none. */
function recordedTracks(tracks: readonly Track[]): Track[] {
  const out: Track[] = [];
  for (const t of TRACKS) if (tracks.includes(t)) out.push(t);
  if (out.length === 0) out.push('inbound');
  return out;
}

function checkRange(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new ConfigError(`recording ${name} must be a number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
