/**
 * The recording SinkFactory: checks options once, turns a stream's `start` into file paths and a
 * channel layout, and runs one coarse flush ticker for all its live streams (undici's
 * lib/util/timers.js idea: one timer for many, not one per stream).
 *
 * The ticker is staggered: streams are spread over FLUSH_PHASES buckets and each tick flushes one
 * bucket, so every stream still flushes once per flushIntervalMs but the disk sees an eighth of
 * the streams at a time. Flushing them all from one tick put ~1,000 writes on the event loop at
 * once at 500 streams (loop delay max 28 ms, ingest lag p99 16.6 ms; bench/RESULTS.md).
 *
 *   tick:    0     1     2     3     4     5     6     7     0 …   (every flushIntervalMs / 8)
 *   bucket: [a e] [b f] [c g] [d h] [ ]   [ ]   [ ]   [ ]   [a e] …
 */
import { ConfigError } from '../../errors.js';
import { type SinkContext, type SinkFactory } from '../sink.js';
import { TRACKS, type StreamInfo, type Track } from '../../core/stream.js';
import type { Logger } from 'pino';
import { LocalDirectoryArchiver, type Archiver } from './archiver.js';
import { DiskGuard } from './disk-guard.js';
import type { RecordingStopReason } from './manifest.js';
import { ioRequest, startIoThread } from './io-thread.js';
import { TurnQueue } from '../../core/turn-queue.js';
import { recordingPaths, recordingsRoot } from './paths.js';
import { RecordingSink } from './recording-sink.js';
import { SampleRing } from './sample-ring.js';
import { wavLayout, type RecordingFormat } from './wav-header.js';

export interface RecordingSinkOptions {
  /** `$STREAMGATE_DATA_DIR`; recordings go under `recordings/`. */
  readonly dataDir: string;
  /** `pcm16` (default): 16-bit linear PCM; `mulaw`: G.711 WAV bit-exact to the wire. */
  readonly format?: RecordingFormat;
  /** Audio per stream that may wait for the disk before frames are dropped (default 5000). */
  readonly bufferMs?: number;
  /**
   * How often buffered audio is written (default 500). At most 1000: that bounds what a killed
   * process loses (recovery rebuilds the header from what reached the file).
   */
  readonly flushIntervalMs?: number;
  /**
   * How often the header's sizes are patched while recording (default 1000, at least
   * flushIntervalMs): a header write costs as much as a data write, and a header that trails the
   * data by under a second still describes a valid, playable prefix.
   */
  readonly headerIntervalMs?: number;
  /**
   * How long a two-track recording holds audio back waiting for the slower track (default 500,
   * at most half the buffer). A track later than this loses its frames (counted late).
   */
  readonly maxTrackLagMs?: number;
  /** Called after each manifest is written (default: {@link LocalDirectoryArchiver}, in place). */
  readonly archiver?: Archiver;
  /**
   * Longest media-timestamp jump written as silence (default 5000, MAX_GAP_MS); a longer one is a
   * discontinuity: the WAV goes on without it and the manifest lists it.
   */
  readonly maxGapMs?: number;
  /**
   * Largest WAV per stream in bytes (default and most: 4095 MiB, so a RIFF size never overflows
   * 4 GiB). At the ceiling the recording stops taking audio; the manifest says `stopped: size_limit`.
   */
  readonly maxBytes?: number;
  /** Free-space floor of the data directory in bytes (DATA_DIR_MIN_FREE_MB; default 0: off). */
  readonly minFreeBytes?: number;
  /** How often the free space is checked (default 1000 ms). */
  readonly diskCheckIntervalMs?: number;
  /** Logger for the disk guard's transitions. */
  readonly log?: Pick<Logger, 'warn' | 'info'>;
  /** Where to count recordings stopped early (the gateway's metrics own it); default: a fresh object. */
  readonly stats?: RecordingStats;
  /**
   * Starts whose inodes (call directory, .partial, sidecar) the I/O thread keeps made ahead in
   * the data directory (io-worker.ts "Spare inodes"; `ready` resolves once they are, and they are
   * made again in quiet moments): a burst of that many starts renames and links instead of
   * creating (default 0: none; the gateway keeps {@link GATEWAY_SPARE_STREAMS}). Removed at shutdown().
   * As many starting rings are kept made and backed in memory (ring-slabs.ts reserveRingSlots).
   */
  readonly spareStreams?: number;
  /** Channels of those spare rings: 1 (default; an inbound or outbound stream) or 2 (both_tracks). */
  readonly spareChannels?: 1 | 2;
}

/** Recordings stopped early (or refused at open), by reason; exported as recording_stopped_total. */
export interface RecordingStats {
  stopped: Record<RecordingStopReason, number>;
}

/** A SinkFactory whose sinks are {@link RecordingSink}s. */
export interface RecordingSinkFactory extends SinkFactory {
  open(info: StreamInfo, ctx: SinkContext): RecordingSink | null;
  /** 'disk_low' while the data directory is below its free-space floor. */
  admission(): string | null;
  readonly stats: RecordingStats;
  /** Resolves once the spare inodes are made (spareStreams; at once without), never rejects: the gateway listens after it. */
  readonly ready: Promise<void>;
  /** Stops the flush ticker and waits for closes and archiving still under way. */
  shutdown(): Promise<void>;
}

export const DEFAULT_MAX_GAP_MS = 5000;
/** 4095 MiB: a WAV's RIFF and data sizes are 32-bit, so no recording may pass 4 GiB. */
export const MAX_RECORDING_BYTES = 4095 * 2 ** 20;

const SAMPLES_PER_MS = 8;
/** Buckets the flush ticker cycles through (see the diagram above). */
const FLUSH_PHASES = 8;
/**
 * Most of a loop turn that opens and finishes may take before the rest wait for the next turn
 * (core/turn-queue.ts): well under the 10 ms loop-delay target, so a burst of 500 never holds the
 * loop much longer than one slice.
 */
const TURN_BUDGET_MS = 3;
/**
 * Opens the I/O thread holds at once. Each makes a directory and the .partial (~0.8 ms of CPU on
 * the loop's core); a burst's opens let through all at once held that core for most of a second
 * (bench/RESULTS.md, "the burst's 749 ms probe"), this many at a time they alternate with the loop.
 */
const OPENS_IN_FLIGHT = 4;
/** The gateway's spare inodes (app.ts): a burst of 500 starts (bench/burst.bench.ts) and some. */
export const GATEWAY_SPARE_STREAMS = 512;

/** Makes the recording sink factory. Throws ConfigError on bad options. */
export function createRecordingSinkFactory(opts: RecordingSinkOptions): RecordingSinkFactory {
  const format = opts.format ?? 'pcm16';
  if (format !== 'pcm16' && format !== 'mulaw') throw new ConfigError(`recording format must be pcm16 or mulaw, got ${String(format)}`);
  if (typeof opts.dataDir !== 'string' || opts.dataDir === '') throw new ConfigError('recording dataDir must be a directory path');
  const bufferMs = checkRange('bufferMs', opts.bufferMs ?? 5000, 20, 600_000);
  const flushIntervalMs = checkRange('flushIntervalMs', opts.flushIntervalMs ?? 500, 1, 1000);
  const headerIntervalMs = checkRange('headerIntervalMs', opts.headerIntervalMs ?? Math.max(1000, flushIntervalMs), flushIntervalMs, 1000);
  const maxTrackLagMs = checkRange('maxTrackLagMs', opts.maxTrackLagMs ?? 500, 0, 60_000);
  const capacityFrames = Math.ceil(bufferMs * SAMPLES_PER_MS);
  const lagFrames = Math.min(Math.round(maxTrackLagMs * SAMPLES_PER_MS), capacityFrames >> 1);
  // What a stream holds while the disk keeps up: two flush intervals. The ring starts there and
  // grows toward capacityFrames only when it does not, or when one of two tracks lags (the horizon
  // then holds up to lagFrames back: a two-track ring no longer starts with room for a lag most
  // calls never have, 16 KiB per stream); past it (and at most a quarter of the buffer, or 1 s)
  // the writer starts without waiting for its tick.
  const steadyFrames = 2 * flushIntervalMs * SAMPLES_PER_MS;
  const flushThresholdFrames = Math.max(160, Math.min(capacityFrames >> 2, 8000, steadyFrames));
  const tickMs = Math.max(1, Math.round(flushIntervalMs / FLUSH_PHASES));
  const archiver = opts.archiver ?? new LocalDirectoryArchiver();
  const dataDir = opts.dataDir;
  const maxGapFrames = checkRange('maxGapMs', opts.maxGapMs ?? DEFAULT_MAX_GAP_MS, 0, 86_400_000) * SAMPLES_PER_MS;
  const maxBytes = checkRange('maxBytes', opts.maxBytes ?? MAX_RECORDING_BYTES, 1024, MAX_RECORDING_BYTES);
  const minFreeBytes = checkRange('minFreeBytes', opts.minFreeBytes ?? 0, 0, Number.MAX_SAFE_INTEGER);
  const stats: RecordingStats = opts.stats ?? { stopped: { disk_low: 0, size_limit: 0 } };

  // Booting the I/O thread takes tens of ms: not on the first stream's path.
  startIoThread();
  const spareStreams = checkRange('spareStreams', opts.spareStreams ?? 0, 0, 100_000);
  const root = recordingsRoot(dataDir);
  // Spares that cannot be made (a read-only root, say) leave starts creating their inodes as before.
  const ready =
    spareStreams > 0
      ? ioRequest({ op: 'spares', root, under: dataDir, count: spareStreams }).then(
          () => undefined,
          () => undefined,
        )
      : Promise.resolve();
  // The same starts' ring memory, made and backed now (ring-slabs.ts).
  const ringFrames = Math.min(capacityFrames, steadyFrames);
  const spareChannels = opts.spareChannels === 2 ? 2 : 1;
  const releaseRings = SampleRing.reserve(format, spareChannels, ringFrames, spareStreams);
  const turns = new TurnQueue(TURN_BUDGET_MS);
  const opens = new TurnQueue(TURN_BUDGET_MS, { maxInFlight: OPENS_IN_FLIGHT });
  const buckets: Set<RecordingSink>[] = [];
  for (let i = 0; i < FLUSH_PHASES; i++) buckets.push(new Set());
  /** Live sinks and the bucket each is flushed from. */
  const bucketOf = new Map<RecordingSink, Set<RecordingSink>>();
  let phase = 0;
  /** Closes and archives under way; shutdown() waits for them. */
  const pending = new Set<Promise<void>>();
  const background = (work: Promise<void>): void => {
    pending.add(work);
    void work.finally(() => pending.delete(work));
  };
  let timer: NodeJS.Timeout | null = null;

  const tick = (): void => {
    phase = (phase + 1) % FLUSH_PHASES;
    for (const sink of buckets[phase]!) sink.flushTick();
  };
  const onStopped = (reason: RecordingStopReason): void => {
    stats.stopped[reason]++;
  };
  const guard =
    minFreeBytes > 0
      ? new DiskGuard({
          path: dataDir,
          minFreeBytes,
          intervalMs: checkRange('diskCheckIntervalMs', opts.diskCheckIntervalMs ?? 1000, 10, 60_000),
          log: opts.log,
          onLow: () => {
            for (const sink of bucketOf.keys()) sink.stopRecording('disk_low');
          },
        })
      : null;
  guard?.start();
  const onClosing = (sink: RecordingSink, done: Promise<void>): void => {
    // A closing sink drives its own last flush; it needs no more ticks.
    bucketOf.get(sink)?.delete(sink);
    bucketOf.delete(sink);
    if (bucketOf.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
    background(done);
  };

  return {
    name: 'recording',
    stats,
    ready,
    admission: () => (guard?.low === true ? 'disk_low' : null),
    open(info: StreamInfo, ctx: SinkContext): RecordingSink | null {
      if (guard?.low === true) {
        // Admission refuses these; a stream admitted just before the disk ran low lands here.
        stats.stopped.disk_low++;
        ctx.log.warn({ freeMb: Math.floor(guard.freeBytes / 2 ** 20) }, 'recording refused: data directory below its free-space floor');
        return null;
      }
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
        initialFrames: ringFrames,
        lagFrames,
        flushThresholdFrames,
        headerIntervalMs,
        maxGapFrames,
        maxBytes,
        archiver,
        onClosing,
        onStopped,
        background,
        turns,
        opens,
      });
      let emptiest = buckets[0]!;
      for (const bucket of buckets) if (bucket.size < emptiest.size) emptiest = bucket;
      emptiest.add(sink);
      bucketOf.set(sink, emptiest);
      if (timer === null) {
        timer = setInterval(tick, tickMs);
        timer.unref();
      }
      return sink;
    },
    async shutdown(): Promise<void> {
      guard?.stop();
      if (timer !== null) clearInterval(timer);
      timer = null;
      // Archiving starts when a close ends, so wait until nothing new appears.
      while (pending.size > 0) await Promise.all([...pending]);
      if (spareStreams > 0) {
        releaseRings();
        await ready;
        await ioRequest({ op: 'spares', root, under: dataDir, count: 0 }).catch(() => undefined);
      }
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
