/**
 * The level meter: a sink that turns each track's frames into speech/silence transitions and a
 * coarse media clock for the conditions engine.
 *
 *   frame ─► LevelGate (energy vs thresholds, hysteresis) ─► bus 'level' on a transition only
 *        └─► media clock advanced ≥ progressMs since the last report ─► bus 'media-progress'
 *
 * It reads `frame.energy` (summed while the session decoded the frame), so the per-frame cost is
 * a few comparisons, and `accept` allocates nothing unless it emits (a transition, or one
 * progress report per `progressMs` of media per track).
 */
import type { EventBus } from '../../core/events.js';
import { energyToDbfs, LevelGate } from '../dsp/level.js';
import { type MediaFrame, type Sink, type SinkFactory } from '../sink.js';
import { type CloseReason, type StreamInfo, type Track } from '../../core/stream.js';

export interface LevelSinkOptions {
  /** The bus to emit on (built before the sinks: ARCHITECTURE.md "Assembly"). */
  bus: EventBus;
  /** Onset level: louder than this for `attackMs` is speech. Default −40 dBFS. */
  thresholdDbfs?: number;
  /** Release level: quieter than this for `hangoverMs` is silence. Default `thresholdDbfs − 5`. */
  releaseDbfs?: number;
  /** Default 60 ms. */
  attackMs?: number;
  /** Default 300 ms. */
  hangoverMs?: number;
  /** Media time between two 'media-progress' reports of one track. Default 250 ms. */
  progressMs?: number;
}

export const LEVEL_SINK_NAME = 'level';

/** A track's recent level in dBFS (smoothed over ~100 ms of media); null before its first frame. */
export type TrackLevels = Partial<Record<Track, number | null>>;

export interface LevelSinkFactory extends SinkFactory {
  /** The live levels of a stream open on this gateway (the console's meters), or null. */
  levels(streamSid: string): TrackLevels | null;
}

/** One level sink per stream: {@link LevelSink} for each stream the gateway opens. */
export function createLevelSinkFactory(opts: LevelSinkOptions): LevelSinkFactory {
  const progressMs = opts.progressMs ?? 250;
  if (!(progressMs > 0)) throw new RangeError('progressMs must be > 0');
  // Validates the thresholds once, at start-up, rather than at the first stream.
  void new LevelGate(gateOptions(opts));
  const open = new Map<string, LevelSink>();
  return {
    name: LEVEL_SINK_NAME,
    open(info: StreamInfo): Sink {
      const sink = new LevelSink(info, opts.bus, opts, progressMs, () => {
        if (open.get(info.streamSid) === sink) open.delete(info.streamSid);
      });
      open.set(info.streamSid, sink);
      return sink;
    },
    levels(streamSid) {
      return open.get(streamSid)?.levels() ?? null;
    },
  };
}

/** Weight of each new 20 ms frame in the meter: about 100 ms to settle, so meters move with speech. */
const METER_SMOOTHING = 0.2;

function gateOptions(opts: Omit<LevelSinkOptions, 'bus'>) {
  return { onDbfs: opts.thresholdDbfs, offDbfs: opts.releaseDbfs, attackMs: opts.attackMs, hangoverMs: opts.hangoverMs };
}

/**
 * One track's meter: its gate, smoothed power and next progress report, in one object, so a
 * frame touches the sink and this (not a gate, two arrays and their backing stores: with
 * hundreds of streams, each is a cache miss per frame).
 */
class TrackMeter extends LevelGate {
  /** Mean square per sample, smoothed frame to frame (−1 before the first frame). */
  power = -1;
  /** Media time at or after which the next progress report is due. */
  nextProgressMs = Number.NEGATIVE_INFINITY;
}

/** The level meter of one stream (both tracks). */
export class LevelSink implements Sink {
  readonly name = LEVEL_SINK_NAME;
  readonly #info: StreamInfo;
  readonly #bus: EventBus;
  readonly #inbound: TrackMeter;
  readonly #outbound: TrackMeter;
  readonly #progressMs: number;
  readonly #onClose: (() => void) | null;
  #closed = false;

  constructor(info: StreamInfo, bus: EventBus, opts: Omit<LevelSinkOptions, 'bus'>, progressMs = 250, onClose: (() => void) | null = null) {
    this.#info = info;
    this.#bus = bus;
    this.#inbound = new TrackMeter(gateOptions(opts));
    this.#outbound = new TrackMeter(gateOptions(opts));
    this.#progressMs = progressMs;
    this.#onClose = onClose;
  }

  accept(frame: MediaFrame): void {
    // A late frame belongs to media time already reported; judging it now would move the clock back.
    if (this.#closed || frame.late) return;
    const m = frame.trackIndex === 0 ? this.#inbound : this.#outbound;
    const samples = frame.samples;
    const energy = frame.energy;
    // The meter: one multiply-add per frame; the logarithm waits until someone reads it.
    const power = samples > 0 ? energy / samples : 0;
    const prev = m.power;
    m.power = prev < 0 ? power : prev + (power - prev) * METER_SMOOTHING;
    if (m.update(energy, samples, frame.timestampMs)) {
      this.#bus.emit('level', { info: this.#info, track: frame.track, speaking: m.speaking, atMs: m.changedAtMs, sinceMs: m.sinceMs });
    }
    const endMs = frame.timestampMs + samples * 0.125;
    if (endMs >= m.nextProgressMs) {
      m.nextProgressMs = endMs + this.#progressMs;
      this.#bus.emit('media-progress', this.#info, frame.track, endMs);
    }
  }

  /** Whether a track is currently speaking (for tests and introspection). */
  speaking(trackIndex: 0 | 1): boolean {
    return (trackIndex === 0 ? this.#inbound : this.#outbound).speaking;
  }

  /** Each of the stream's tracks' level in dBFS, one decimal (null until it has a frame). */
  levels(): TrackLevels {
    const out: TrackLevels = {};
    for (const track of this.#info.tracks) {
      const p = (track === 'inbound' ? this.#inbound : this.#outbound).power;
      out[track] = p < 0 ? null : Math.round(energyToDbfs(p, 1) * 10) / 10;
    }
    return out;
  }

  async close(_reason: CloseReason): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose?.();
  }
}
