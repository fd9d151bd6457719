/**
 * The Sink contract. A stream session decodes each media frame once and hands the same
 * borrowed frame to every sink of the stream, in order, synchronously:
 *
 *   socket ─► session ─► decode ─► fan-out ─┬─► recording.accept(frame)   (copies into its ring)
 *                                           ├─► transcription.accept(frame)
 *                                           └─► level.accept(frame)
 *
 * `accept` must not block, await or keep a reference to the frame: the session reuses its
 * buffers for the next message. A sink does its I/O off the hot path, bounds its own buffer,
 * and when that buffer is full applies its overflow policy and counts the drop in its stats.
 */
import type { Logger } from 'pino';
import type { CloseReason, StreamInfo, Track } from '../core/stream.js';

/**
 * One decoded media frame. Borrowed: valid only for the duration of `accept`.
 * Times are on the stream's media clock (`media.timestamp`), never arrival time.
 */
export interface MediaFrame {
  track: Track;
  trackIndex: 0 | 1;
  /** Media-clock start of the frame, ms (Twilio `media.timestamp`). */
  timestampMs: number;
  chunk: number;
  sequenceNumber: number;
  /** Number of samples (= mu-law bytes) in this frame; usually 160. */
  samples: number;
  /** Decoded linear PCM, exactly `samples` long (a view over a reused buffer). */
  pcm: Int16Array;
  /** The raw mu-law bytes as Twilio sent them, exactly `samples` long. */
  mulaw: Uint8Array;
  /** Sum of squared PCM samples, computed while decoding (see twilio/mulaw.ts). */
  energy: number;
  /** `performance.now()` when the message arrived, for ingest-lag measurement. */
  receivedAt: number;
  /** True when this frame arrived after a later frame of the stream (out of order). */
  late: boolean;
}

/** What the session saw on the wire that no sink can see: duplicates are dropped before fan-out. */
export interface WireStats {
  /** Messages missing from the stream-wide sequence (gaps in sequenceNumber). */
  lost: number;
  /** Messages repeated on the wire (same sequenceNumber), dropped before fan-out. */
  duplicate: number;
  /** Messages that arrived after a later one (delivered with `late: true`). */
  late: number;
}

export interface Sink {
  readonly name: string;
  /** Takes one frame. Must not throw, block or retain `frame`; the fan-out still guards it. */
  accept(frame: MediaFrame): void;
  /**
   * Flushes and finalises. Idempotent. Never rejects for the stream's sake: errors are counted.
   * `wire` carries the session's own accounting, for sinks that report it (the manifest).
   */
  close(reason: CloseReason, wire?: WireStats): Promise<void>;
}

/** Counters a sink kind shares across all its streams; folded into metrics at scrape time. */
export interface SinkStats {
  dropped: number;
  errors: number;
  /** Frames currently queued in this kind's buffers, over all streams. */
  queued: number;
}

export interface SinkContext {
  /** The stream's child logger (carries streamSid and callSid). */
  readonly log: Logger;
  readonly stats: SinkStats;
}

/** Makes one sink per stream. */
export interface SinkFactory {
  readonly name: string;
  /** Returns null when this sink does not take the stream (e.g. a cap reached); that is not an error. */
  open(info: StreamInfo, ctx: SinkContext): Sink | null;
  /**
   * Asked at each WebSocket upgrade, synchronously: a reason to refuse new streams now (e.g.
   * 'disk_low'; it becomes the upgrade_rejected_total label, so a small fixed set), or null.
   */
  admission?(): string | null;
  /** How this sink handles a live stream's tracks now (shown in `GET /v1/streams`), or null. */
  status?(streamSid: string): Partial<Record<Track, string>> | null;
  /** Called once at gateway shutdown, after every stream's sinks closed. */
  shutdown?(): Promise<void>;
}
