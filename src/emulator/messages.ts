/**
 * The Media Streams messages the emulator writes, built as strings in the key order of the
 * real capture (docs/twilio-protocol.md §2). Counters are JSON strings; only sampleRate and
 * channels are numbers. Media messages are concatenated directly: they are the hot path of
 * load runs, and JSON.stringify of a fresh object per frame costs more than it says.
 */
import type { MediaTrack } from './types.js';

/** Protocol version announced in `connected` (docs: 1.0.0; older captures show 0.2.0). */
export const PROTOCOL_VERSION = '1.0.0';

export function connectedMessage(): string {
  return JSON.stringify({ event: 'connected', protocol: 'Call', version: PROTOCOL_VERSION });
}

export interface StartFields {
  accountSid: string;
  streamSid: string;
  callSid: string;
  tracks: readonly MediaTrack[];
  customParameters: Readonly<Record<string, string>>;
}

export function startMessage(sequenceNumber: number, f: StartFields): string {
  return JSON.stringify({
    event: 'start',
    sequenceNumber: String(sequenceNumber),
    start: {
      accountSid: f.accountSid,
      streamSid: f.streamSid,
      callSid: f.callSid,
      customParameters: f.customParameters,
      tracks: f.tracks,
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
    streamSid: f.streamSid,
  });
}

/** `payload` is standard base64 and `streamSid` a checked SID, so neither needs escaping. */
export function mediaMessage(
  sequenceNumber: number,
  track: MediaTrack,
  chunk: number,
  timestamp: number,
  payload: string,
  streamSid: string,
): string {
  return (
    '{"event":"media","sequenceNumber":"' +
    sequenceNumber +
    '","media":{"track":"' +
    track +
    '","chunk":"' +
    chunk +
    '","timestamp":"' +
    timestamp +
    '","payload":"' +
    payload +
    '"},"streamSid":"' +
    streamSid +
    '"}'
  );
}

export function stopMessage(sequenceNumber: number, accountSid: string, callSid: string, streamSid: string): string {
  return JSON.stringify({
    event: 'stop',
    sequenceNumber: String(sequenceNumber),
    streamSid,
    stop: { accountSid, callSid },
  });
}

/** Two-way streams: a key pressed on the call (docs/twilio-protocol.md §2.1; track is always inbound_track). */
export function dtmfMessage(sequenceNumber: number, streamSid: string, digit: string): string {
  return JSON.stringify({ event: 'dtmf', streamSid, sequenceNumber: String(sequenceNumber), dtmf: { track: 'inbound_track', digit } });
}

/** Two-way streams: the echo of a mark the server sent, once the audio before it has played. */
export function markMessage(sequenceNumber: number, streamSid: string, name: string): string {
  return JSON.stringify({ event: 'mark', sequenceNumber: String(sequenceNumber), streamSid, mark: { name } });
}
