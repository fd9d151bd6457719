/**
 * What every layer calls a stream: its tracks, its identity as the `start` message gave it, and
 * why it ended. The media path fills these in; sinks, the conditions engine and the routes read them.
 */

export type Track = 'inbound' | 'outbound';

/** Index of a track in per-track arrays: inbound 0, outbound 1 (stereo left/right). */
export const TRACK_INDEX: Readonly<Record<Track, 0 | 1>> = { inbound: 0, outbound: 1 };
export const TRACKS: readonly Track[] = ['inbound', 'outbound'];

/** Samples per millisecond at Twilio's 8 kHz. */
export const SAMPLES_PER_MS = 8;

/** Custom parameter naming the stream's conference: set by the stream starter, read by the session. */
export const CONFERENCE_PARAMETER = 'conferenceSid';

export interface StreamInfo {
  readonly accountSid: string;
  readonly callSid: string;
  readonly streamSid: string;
  /** Tracks announced in `start.tracks` (a subset of inbound/outbound). */
  readonly tracks: readonly Track[];
  readonly customParameters: Readonly<Record<string, string>>;
  /** From the `conferenceSid` custom parameter, when present and valid. */
  readonly conferenceSid: string | null;
  /** Wall-clock time (ms since epoch) the `start` message arrived. */
  readonly startedAtMs: number;
}

/** The ids that name a stream wherever it is reported (bus events, files, the events stream). */
export type StreamIds = Pick<StreamInfo, 'accountSid' | 'callSid' | 'streamSid' | 'conferenceSid'>;

/** `info`'s ids alone, in Twilio's order (account, call, stream), then the conference. */
export function streamIds(info: StreamIds): StreamIds {
  return { accountSid: info.accountSid, callSid: info.callSid, streamSid: info.streamSid, conferenceSid: info.conferenceSid };
}

export type CloseReason = 'stopped' | 'aborted' | 'protocol-error' | 'rejected' | 'shutdown' | 'stalled';
