/** Builds Twilio-shaped Media Streams messages for tests (string counters, as Twilio sends). */
import { newSid } from '../../src/twilio/sids.js';

export interface StreamIds {
  accountSid: string;
  callSid: string;
  streamSid: string;
}

export function ids(): StreamIds {
  return { accountSid: newSid('account'), callSid: newSid('call'), streamSid: newSid('stream') };
}

export const connected = (version = '1.0.0') => JSON.stringify({ event: 'connected', protocol: 'Call', version });

export function start(s: StreamIds, opts: { tracks?: string[]; customParameters?: Record<string, string>; seq?: number } = {}): string {
  return JSON.stringify({
    event: 'start',
    sequenceNumber: String(opts.seq ?? 1),
    start: {
      accountSid: s.accountSid,
      streamSid: s.streamSid,
      callSid: s.callSid,
      tracks: opts.tracks ?? ['inbound'],
      customParameters: opts.customParameters ?? {},
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
    streamSid: s.streamSid,
  });
}

export function media(s: StreamIds, seq: number, chunk: number, timestamp: number, bytes: Uint8Array, track = 'inbound'): string {
  return JSON.stringify({
    event: 'media',
    sequenceNumber: String(seq),
    media: { track, chunk: String(chunk), timestamp: String(timestamp), payload: Buffer.from(bytes).toString('base64') },
    streamSid: s.streamSid,
  });
}

export function stop(s: StreamIds, seq: number): string {
  return JSON.stringify({ event: 'stop', sequenceNumber: String(seq), streamSid: s.streamSid, stop: { accountSid: s.accountSid, callSid: s.callSid } });
}

/** A frame of `n` bytes whose content encodes its index, so tests can tell frames apart. */
export function tone(index: number, n = 160): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (index * 7 + i) & 0xff;
  return b;
}
