/**
 * A bench-only Sink that the bench gateway adds after the production sinks: it counts frames and
 * records each frame's ingest lag, send time (stamped into the payload by the load generator,
 * bench/lib/stamp.ts) to the moment the fan-out hands the frame over, after the recording sink
 * has copied it. Both ends read CLOCK_MONOTONIC (bench/lib/clock.ts), so the lag is on one clock.
 *
 * One Sink object serves every stream: accept() allocates nothing and keeps no reference.
 */
import type { MediaFrame, Sink, SinkFactory } from '../src/sinks/sink.js';
import { toMonoMs } from './lib/clock.js';
import type { LagRecorder } from './lib/lag.js';
import { readStampBytes } from './lib/stamp.js';

export interface LagSinkFactory extends SinkFactory {
  /** Frames accepted over all streams. */
  readonly frames: number;
}

export function createLagSinkFactory(lag: LagRecorder): LagSinkFactory {
  let frames = 0;
  const sink: Sink = {
    name: 'bench-lag',
    accept(frame: MediaFrame): void {
      frames++;
      lag.record(toMonoMs(performance.now()) - readStampBytes(frame.mulaw));
    },
    async close(): Promise<void> {},
  };
  return {
    name: 'bench-lag',
    get frames() {
      return frames;
    },
    open: () => sink,
  };
}
