/**
 * Conference mixing: what one participant hears is the sum of the other participants'
 * frames, decoded from mu-law, added with clipping and encoded again. With one speaker the
 * frame is passed through unchanged, so a two-party call is bit-exact in both directions.
 */
import { encodeMulaw, MULAW_TO_PCM } from '../twilio/mulaw.js';
import { FRAME_BYTES, SILENCE_FRAME } from './audio-source.js';

/**
 * Mixes `frames` (each 160 mu-law bytes; shorter ones count as silence past their end).
 * Returns a borrowed frame: one of the inputs, the shared silence frame, or `scratch`.
 */
export function mixFrames(frames: readonly Uint8Array[], scratch: MixScratch): Uint8Array {
  if (frames.length === 0) return SILENCE_FRAME;
  if (frames.length === 1) return frames[0]!;
  const sum = scratch.pcm;
  sum.fill(0);
  for (let f = 0; f < frames.length; f++) {
    const frame = frames[f]!;
    const n = Math.min(frame.length, FRAME_BYTES);
    for (let i = 0; i < n; i++) sum[i]! += MULAW_TO_PCM[frame[i]!]!;
  }
  const pcm = scratch.clipped;
  for (let i = 0; i < FRAME_BYTES; i++) {
    const v = sum[i]!;
    pcm[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return encodeMulaw(pcm, scratch.out);
}

/** Buffers one mixer reuses from frame to frame. */
export class MixScratch {
  readonly pcm = new Int32Array(FRAME_BYTES);
  readonly clipped = new Int16Array(FRAME_BYTES);
  readonly out = new Uint8Array(FRAME_BYTES);
}
