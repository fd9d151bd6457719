/**
 * A real Sink that keeps what it is given, to observe the fan-out from the outside. It is the
 * test's instrument, not a stand-in for a production part.
 */
import type { MediaFrame, Sink, SinkFactory } from '../../src/sinks/sink.js';
import type { CloseReason, StreamInfo } from '../../src/core/stream.js';

export interface Collected {
  info: StreamInfo;
  frames: { track: string; timestampMs: number; samples: number; late: boolean; pcm: Int16Array; mulaw: Uint8Array }[];
  closed: CloseReason | null;
}

export function collectingSinkFactory(name = 'collect'): SinkFactory & { streams: Collected[] } {
  const streams: Collected[] = [];
  return {
    name,
    streams,
    open(info: StreamInfo): Sink {
      const c: Collected = { info, frames: [], closed: null };
      streams.push(c);
      return {
        name,
        accept(f: MediaFrame) {
          c.frames.push({ track: f.track, timestampMs: f.timestampMs, samples: f.samples, late: f.late, pcm: Int16Array.from(f.pcm), mulaw: Uint8Array.from(f.mulaw) });
        },
        async close(reason) {
          c.closed = reason;
        },
      };
    },
  };
}

export function pcmOf(c: Collected, track = 'inbound'): Int16Array {
  const parts = c.frames.filter((f) => f.track === track).map((f) => f.pcm);
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
