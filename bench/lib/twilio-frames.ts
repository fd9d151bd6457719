/**
 * Twilio-shaped Media Streams messages for the benches, in the key order of the real capture
 * (docs/twilio-protocol.md §2.2): counters as JSON strings, 160-byte mu-law payloads (216 base64
 * characters), `streamSid` last. Media messages are concatenated, not JSON.stringify'd, because
 * the load generator builds 100 000 of them a second.
 */
import { encodeMulaw } from '../../src/twilio/mulaw.js';
import { newSid } from '../../src/twilio/sids.js';
import { mediaMessage as simMediaMessage } from '../../src/emulator/messages.js';
import type { MediaTrack } from '../../src/emulator/types.js';

export interface StreamIds {
  accountSid: string;
  callSid: string;
  streamSid: string;
}

/**
 * One account for every stream a bench process makes: a gateway checks signatures with one
 * account's auth token (TWILIO_AUTH_TOKEN), so its streams come from that account, and the
 * recording's account directory is made by the first of them, not by each (a fresh AccountSid
 * per stream had every start of a burst make one: ~0.2 ms of the I/O thread's kernel time each).
 */
const ACCOUNT_SID = newSid('account');

export function newStreamIds(): StreamIds {
  return { accountSid: ACCOUNT_SID, callSid: newSid('call'), streamSid: newSid('stream') };
}

export function connectedMessage(): string {
  return '{"event":"connected","protocol":"Call","version":"1.0.0"}';
}

export function startMessage(ids: StreamIds, tracks: readonly ('inbound' | 'outbound')[]): string {
  return JSON.stringify({
    event: 'start',
    sequenceNumber: '1',
    start: {
      accountSid: ids.accountSid,
      streamSid: ids.streamSid,
      callSid: ids.callSid,
      tracks,
      customParameters: {},
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
    streamSid: ids.streamSid,
  });
}

/** The emulator's builder (string concatenation: the load generator builds every frame up front). */
export function mediaMessage(streamSid: string, seq: number, track: string, chunk: number, timestamp: number, payload: string): string {
  return simMediaMessage(seq, track as MediaTrack, chunk, timestamp, payload, streamSid);
}

export function stopMessage(ids: StreamIds, seq: number): string {
  return JSON.stringify({ event: 'stop', sequenceNumber: String(seq), streamSid: ids.streamSid, stop: { accountSid: ids.accountSid, callSid: ids.callSid } });
}

/**
 * `count` frames of 160 mu-law bytes of speech-like audio: a few harmonics with a slow
 * amplitude envelope and noise, so every one of the 256 codes occurs (a table decoder's speed
 * does not depend on content, but the branchy peers' does).
 */
export function speechLikeFrames(count: number, seed = 1): Uint8Array[] {
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32) * 2 - 1;
  };
  const frames: Uint8Array[] = [];
  const pcm = new Int16Array(160);
  for (let f = 0; f < count; f++) {
    for (let i = 0; i < 160; i++) {
      const t = (f * 160 + i) / 8000;
      const env = 0.15 + 0.85 * Math.abs(Math.sin(2 * Math.PI * 3 * t));
      const v = Math.sin(2 * Math.PI * 180 * t) * 0.5 + Math.sin(2 * Math.PI * 360 * t) * 0.25 + Math.sin(2 * Math.PI * 1100 * t) * 0.1 + rnd() * 0.15;
      pcm[i] = Math.max(-32768, Math.min(32767, Math.round(v * env * 30000)));
    }
    frames.push(encodeMulaw(pcm));
  }
  return frames;
}
