/**
 * The manifest beside each recording (`{StreamSid}.json`, docs/design.md "Files") and the sidecar
 * that tells recovery what a partial file holds.
 */
import type { CloseReason, Track } from '../../core/stream.js';
import { GAP_DROPPED, GAP_TIMESTAMP, type GapList } from './gap-list.js';
import type { Discontinuity } from './timeline-buffer.js';
import type { RecordingFormat } from './wav-header.js';

/** One stretch of a channel that holds silence instead of received audio. */
export interface RecordingGap {
  readonly track: Track;
  /** Media-clock start (same clock as `media.timestamp`), ms; may be fractional for odd chunks. */
  readonly startMs: number;
  readonly lengthMs: number;
  /** `timestamp-gap`: no frame covered it; `dropped`: a frame did, and the sink dropped it. */
  readonly cause: 'timestamp-gap' | 'dropped';
}

/**
 * A jump of the media clock longer than MAX_GAP_MS: the WAV goes on without the silence, so from
 * here on file time trails media time by the sum of `skippedMs` so far.
 */
export interface RecordingDiscontinuity {
  /** Where in the WAV (ms from its first sample) the audio after the jump starts. */
  readonly fileMs: number;
  /** Media time of that audio. */
  readonly mediaMs: number;
  /** Media time skipped (not in the file). */
  readonly skippedMs: number;
}

/** Why a recording stopped taking audio before its stream ended. */
export type RecordingStopReason = 'disk_low' | 'size_limit';

/**
 * `{StreamSid}.json`. Counters are null in a recovered manifest (the process that knew them died);
 * times are on the media clock unless named wall*.
 */
export interface RecordingManifest {
  readonly version: 1;
  readonly accountSid: string;
  readonly callSid: string;
  readonly streamSid: string;
  readonly conferenceSid: string | null;
  /** Recorded tracks in channel order: inbound is left, outbound right. */
  readonly tracks: readonly Track[];
  readonly customParameters: Readonly<Record<string, string>>;
  readonly format: RecordingFormat;
  readonly sampleRate: number;
  readonly channels: 1 | 2;
  /** Media time of the first frame (sample 0 of the file). */
  readonly mediaStartMs: number | null;
  /** Media time just after the last sample of the file. */
  readonly mediaEndMs: number | null;
  /** ISO wall-clock time the stream started / the recording was finished. */
  readonly wallStart: string | null;
  readonly wallEnd: string | null;
  readonly durationMs: number;
  /** Media frames handed to the sink, of any track. */
  readonly framesReceived: number | null;
  /** 20 ms frames' worth of audio missing in timestamp gaps between received frames. */
  readonly framesLost: number | null;
  /** Frames whose region was already written on their track; dropped. */
  readonly framesDuplicate: number | null;
  /** Frames that arrived after later audio of the stream; includes framesLateDropped. */
  readonly framesLate: number | null;
  /** Late frames that could not be placed any more (their stretch was on disk); dropped. */
  readonly framesLateDropped: number | null;
  /** Frames dropped because the buffer was full (the disk fell behind); their stretch is a gap. */
  readonly framesDropped: number | null;
  /** Frames of a track this recording does not hold, or malformed. */
  readonly framesIgnored: number | null;
  readonly gaps: readonly RecordingGap[] | null;
  /** Media-clock jumps not materialised as silence (null in a recovered manifest). */
  readonly discontinuities: readonly RecordingDiscontinuity[] | null;
  /** Set when the recording stopped before the stream ended; the file holds the audio up to then. */
  readonly stopped: RecordingStopReason | null;
  /** Size of the .wav file. */
  readonly bytes: number;
  /** SHA-256 of the .wav file, hex. */
  readonly sha256: string;
  readonly recovered: boolean;
  readonly closeReason: CloseReason | null;
  /** The first error that degraded the recording, if any. */
  readonly error: string | null;
}

/** `{StreamSid}.partial.json`: written at open (and once more when the first frame fixes zero). */
export interface RecordingSidecar {
  readonly version: 1;
  readonly accountSid: string;
  readonly callSid: string;
  readonly streamSid: string;
  readonly conferenceSid: string | null;
  readonly tracks: readonly Track[];
  readonly customParameters: Readonly<Record<string, string>>;
  readonly format: RecordingFormat;
  readonly channels: 1 | 2;
  readonly wallStart: string;
  readonly mediaStartMs: number | null;
}

const TWENTY_MS = 160;

/**
 * The reportable gaps of all channels, media-clock times, ordered by start then channel; and
 * framesLost, the 20 ms frames' worth of audio in timestamp gaps. Leading stretches (before a
 * track's first frame) are not gaps.
 */
export function reportGaps(
  gaps: readonly GapList[],
  trackOfChannel: readonly Track[],
  mediaStartMs: number,
  discontinuities: readonly Discontinuity[] = [],
): { gaps: RecordingGap[]; framesLost: number } {
  /** Media time of timeline position `pos`: past each discontinuity at or before it, add what it skipped. */
  const mediaMs = (pos: number): number => {
    let skew = 0;
    for (const d of discontinuities) if (d.pos <= pos) skew += d.skipped;
    return mediaStartMs + (pos + skew) / 8;
  };
  const out: { gap: RecordingGap; ch: number }[] = [];
  let lost = 0;
  for (let ch = 0; ch < trackOfChannel.length; ch++) {
    const list = gaps[ch];
    if (list === undefined) continue;
    for (const g of list.spans) {
      if (g.cause !== GAP_TIMESTAMP && g.cause !== GAP_DROPPED) continue;
      const len = g.end - g.start;
      if (g.cause === GAP_TIMESTAMP) lost += Math.round(len / TWENTY_MS);
      out.push({
        ch,
        gap: {
          track: trackOfChannel[ch]!,
          startMs: mediaMs(g.start),
          lengthMs: len / 8,
          cause: g.cause === GAP_TIMESTAMP ? 'timestamp-gap' : 'dropped',
        },
      });
    }
  }
  out.sort((a, b) => a.gap.startMs - b.gap.startMs || a.ch - b.ch);
  return { gaps: out.map((x) => x.gap), framesLost: lost };
}

/** The manifest's view of the buffer's discontinuities. */
export function reportDiscontinuities(discontinuities: readonly Discontinuity[], mediaStartMs: number): RecordingDiscontinuity[] {
  let skew = 0;
  return discontinuities.map((d) => {
    skew += d.skipped;
    return { fileMs: d.pos / 8, mediaMs: mediaStartMs + (d.pos + skew) / 8, skippedMs: d.skipped / 8 };
  });
}
