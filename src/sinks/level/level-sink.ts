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

/** The level meter of one stream (both tracks). */
export class LevelSink implements Sink {
  readonly name = LEVEL_SINK_NAME;
  readonly #info: StreamInfo;
  readonly #bus: EventBus;
  readonly #gates: [LevelGate, LevelGate];
  /** Per track: media time at or after which the next progress report is due. */
  readonly #nextProgressMs = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  readonly #progressMs: number;
  /** Per track: mean square per sample, smoothed frame to frame (−1 before the first frame). */
  readonly #power = [-1, -1];
  readonly #onClose: (() => void) | null;
  #closed = false;

  constructor(info: StreamInfo, bus: EventBus, opts: Omit<LevelSinkOptions, 'bus'>, progressMs = 250, onClose: (() => void) | null = null) {
    this.#info = info;
    this.#bus = bus;
    this.#gates = [new LevelGate(gateOptions(opts)), new LevelGate(gateOptions(opts))];
    this.#progressMs = progressMs;
    this.#onClose = onClose;
  }

  accept(frame: MediaFrame): void {
    // A late frame belongs to media time already reported; judging it now would move the clock back.
    if (this.#closed || frame.late) return;
    const i = frame.trackIndex;
    // The meter: one multiply-add per frame; the logarithm waits until someone reads it.
    const power = frame.samples > 0 ? frame.energy / frame.samples : 0;
    const prev = this.#power[i]!;
    this.#power[i] = prev < 0 ? power : prev + (power - prev) * METER_SMOOTHING;
    const gate = this.#gates[i];
    if (gate.update(frame.energy, frame.samples, frame.timestampMs)) {
      this.#bus.emit('level', { info: this.#info, track: frame.track, speaking: gate.speaking, atMs: gate.changedAtMs, sinceMs: gate.sinceMs });
    }
    const endMs = frame.timestampMs + frame.samples * 0.125;
    if (endMs >= this.#nextProgressMs[i]!) {
      this.#nextProgressMs[i] = endMs + this.#progressMs;
      this.#bus.emit('media-progress', this.#info, frame.track, endMs);
    }
  }

  /** Whether a track is currently speaking (for tests and introspection). */
  speaking(trackIndex: 0 | 1): boolean {
    return this.#gates[trackIndex].speaking;
  }

  /** Each of the stream's tracks' level in dBFS, one decimal (null until it has a frame). */
  levels(): TrackLevels {
    const out: TrackLevels = {};
    for (const track of this.#info.tracks) {
      const p = this.#power[track === 'inbound' ? 0 : 1]!;
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
