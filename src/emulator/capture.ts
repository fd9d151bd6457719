/**
 * Twilio capture replay: a `.jsonl` file with one Media Streams message per line (as recorded
 * from a real call). The inbound media frames become a RecordedSource that keeps each
 * payload string and timestamp exactly (audio-source.ts RecordedSource), so a replay is
 * byte-identical to the capture.
 */
import { InvalidInputError } from '../errors.js';

/** The frames of one track of a capture, in order. */
export interface CaptureFrames {
  track: 'inbound' | 'outbound';
  payloads: string[];
  timestamps: number[];
}

interface CaptureMedia {
  event?: unknown;
  media?: { track?: unknown; payload?: unknown; timestamp?: unknown };
}

/**
 * Parses a capture. Frames of the `inbound` track are used; a capture holding only outbound
 * frames is replayed from those. Unparseable lines are an error (a capture must be exact).
 */
export function parseCapture(text: string, name = 'capture'): CaptureFrames {
  const byTrack: Record<'inbound' | 'outbound', CaptureFrames> = {
    inbound: { track: 'inbound', payloads: [], timestamps: [] },
    outbound: { track: 'outbound', payloads: [], timestamps: [] },
  };
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '') continue;
    let msg: CaptureMedia;
    try {
      msg = JSON.parse(line) as CaptureMedia;
    } catch {
      throw new InvalidInputError(`${name}:${n + 1}: not JSON`);
    }
    if (msg.event !== 'media' || msg.media === undefined) continue;
    const { track, payload, timestamp } = msg.media;
    if (typeof payload !== 'string' || typeof timestamp !== 'string' || !/^\d+$/.test(timestamp)) {
      throw new InvalidInputError(`${name}:${n + 1}: media without string payload and timestamp`);
    }
    const list = track === 'outbound' ? byTrack.outbound : byTrack.inbound;
    list.payloads.push(payload);
    list.timestamps.push(Number(timestamp));
  }
  const chosen = byTrack.inbound.payloads.length > 0 ? byTrack.inbound : byTrack.outbound;
  if (chosen.payloads.length === 0) throw new InvalidInputError(`${name}: no media frames`);
  return chosen;
}
