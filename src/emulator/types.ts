/**
 * Public types of the Twilio emulator: options, audio specs, fault configuration, and the
 * JSON snapshots the programmatic and control APIs return.
 */
import type { Logger } from 'pino';

/** CreateStream `Track` values (docs/twilio-protocol.md §4.1). */
export type StreamTrack = 'inbound_track' | 'outbound_track' | 'both_tracks';
/** `media.track` values on the wire. */
export type MediaTrack = 'inbound' | 'outbound';
export type HttpMethod = 'GET' | 'POST';
export type CallStatus = 'queued' | 'ringing' | 'in-progress' | 'completed' | 'busy' | 'failed' | 'no-answer' | 'canceled';
export type ConferenceStatus = 'init' | 'in-progress' | 'completed';
export type ConferenceEndReason =
  | 'conference-ended-via-api'
  | 'participant-with-end-conference-on-exit-left'
  | 'participant-with-end-conference-on-exit-kicked'
  | 'last-participant-kicked'
  | 'last-participant-left';

/** The subset of a pino logger the emulator writes to. */
export type SimLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

/**
 * Audio a participant speaks or hears. A string is a file path:
 * `.wav` (PCM 8/16-bit, float32, mu-law or A-law; any rate and channel count, mixed to 8 kHz
 * mono), `.ulaw`/`.mulaw`/`.ul`/`.raw` (raw 8 kHz mu-law), or `.jsonl` (a Twilio capture,
 * replayed byte for byte: exact payload strings and timestamps of its inbound media).
 */
export type AudioSpec =
  | string
  | { type: 'file'; path: string }
  /** Silence; endless when `ms` is absent. */
  | { type: 'silence'; ms?: number }
  /** A sine tone; `amplitude` is 0..1 of full scale (default 0.5). */
  | { type: 'tone'; hz: number; ms: number; amplitude?: number }
  /** Raw 8 kHz mu-law bytes (or their standard base64). */
  | { type: 'mulaw'; data: Uint8Array | string };

/** Picks frames by 1-based ordinal (`frames`) or at random with probability `rate` (0..1). */
export interface FrameSelector {
  rate?: number;
  frames?: number[];
}

/**
 * Per-stream faults. Frame ordinals count the stream's media messages before any fault is
 * applied, starting at 1 (equal to `chunk` for a single-track stream).
 */
export interface StreamFaults {
  /** Seed of the PRNG behind every `rate`, so a run can be repeated. Default 1. */
  seed?: number;
  /** Lost frames: generated (sequenceNumber, chunk and timestamp are consumed) but never sent. */
  drop?: FrameSelector;
  /** Frames sent twice, identical (same sequenceNumber). */
  duplicate?: FrameSelector;
  /** Frames held back and sent after `by` (default 1) later messages. */
  reorder?: FrameSelector & { by?: number };
  /** At each selected frame, sending stalls for `ms` real milliseconds, then the backlog is sent in a burst. */
  delay?: FrameSelector & { ms: number };
  /**
   * Twilio-style silence suppression: all-silence frames (every byte 0xFF or 0x7F) are not
   * sent; timestamps keep advancing, so the next frame shows a gap. sequenceNumber and chunk
   * stay contiguous (nothing was generated).
   */
  silenceGaps?: boolean;
  /** Payload sizes in bytes, cycled, instead of 160; timestamps advance by size/8 ms. */
  chunkSizes?: number[];
  /** After this many media messages the socket is destroyed without `stop` (network drop). */
  closeAfterFrames?: number;
  /** Real milliseconds between the WebSocket opening and `connected`. */
  handshakeDelayMs?: number;
  /** Real milliseconds between `connected` and `start`. */
  startDelayMs?: number;
}

/** Faults for streams created later that match (all given fields must match). */
export interface StreamFaultRule {
  match?: { callSid?: string; name?: string; track?: StreamTrack };
  /** Apply to the first matching stream only, then drop the rule. */
  once?: boolean;
  faults: StreamFaults;
}

/** Twilio REST operations the emulator serves (OpenAPI operation ids). */
export type RestOperation =
  | 'CreateCall'
  | 'CreateStream'
  | 'UpdateStream'
  | 'FetchCall'
  | 'UpdateCall'
  | 'ListCall'
  | 'FetchConference'
  | 'UpdateConference'
  | 'ListConference'
  | 'ListParticipant'
  | 'FetchParticipant'
  | 'CreateParticipant';

/**
 * A REST fault: requests to `operation` (default every operation) wait `latencyMs`, and/or
 * fail with `status` (429 → 20429, 500 → 20500, 503 → 20503). It applies to the `next` N
 * matching requests (then is removed), or to each one with probability `rate`, or, with
 * neither, to every matching request.
 */
export interface RestFault {
  operation?: RestOperation | '*';
  status?: 429 | 500 | 503;
  latencyMs?: number;
  next?: number;
  rate?: number;
}

export interface FaultConfig {
  streams?: StreamFaultRule[];
  rest?: RestFault[];
}

/** A call's audio and behaviour. */
export interface CreateCallOptions {
  /** What the caller says: the call's inbound track. Default: endless silence. */
  audio?: AudioSpec;
  /** What the caller hears when not in a conference: the outbound track. Default: silence. */
  hears?: AudioSpec;
  /** Repeat `audio` forever. */
  loop?: boolean;
  /** Hang up when `audio` ends (default true). When false, silence follows the audio. */
  hangupOnAudioEnd?: boolean;
  /**
   * When the audio starts playing: at its first use (the first stream or mix that reads it;
   * default, so a stream started later still gets the audio from its first frame) or at creation.
   */
  audioStartsAt?: 'first-use' | 'create';
  /** Initial status; anything but `in-progress` makes CreateStream answer 21220. */
  status?: 'queued' | 'ringing' | 'in-progress';
  from?: string;
  to?: string;
  /** Faults for every stream of this call. */
  streamFaults?: StreamFaults;
  /**
   * The call's TwiML: the URL Twilio fetches (as for a call to your number, or CreateCall
   * `Url`), with `method` (default POST), or the document itself (`twiml`, at most 4000 chars).
   */
  url?: string;
  method?: HttpMethod;
  twiml?: string;
  /** Call progress callbacks (CreateCall `StatusCallback`). */
  statusCallback?: string;
  statusCallbackMethod?: HttpMethod;
  /** `initiated ringing answered completed`, space-separated or a list. Default `completed`. */
  statusCallbackEvent?: string | string[];
}

export interface ParticipantOptions extends CreateCallOptions {
  /** Join an existing call instead of creating one. */
  callSid?: string;
  label?: string;
  muted?: boolean;
  hold?: boolean;
  coaching?: boolean;
  endConferenceOnExit?: boolean;
  /** Default true. */
  startConferenceOnEnter?: boolean;
}

export interface CreateConferenceOptions {
  friendlyName?: string;
  statusCallback?: string;
  statusCallbackMethod?: HttpMethod;
  /** `start end join leave`, space-separated or as a list. Default `start end` when a callback is set. */
  statusCallbackEvent?: string | string[];
  participants?: ParticipantOptions[];
}

export interface SimOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  accountSid: string;
  authToken: string;
  /** API keys accepted as REST credentials for this account. */
  apiKeys?: { sid: string; secret: string }[];
  /** Media pacing: 1 = real time (default), 10 = ten times faster, 0 or Infinity = unpaced. */
  speed?: number;
  logger?: SimLogger;
  faults?: FaultConfig;
  /** Refuse `ws://` stream URLs with 31922 as Twilio does. Default false (loopback tests use ws://). */
  requireWss?: boolean;
  /** WebSocket connect timeout (31901). Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Callback and TwiML request timeout. Default 15 000 ms (Twilio's default). */
  callbackTimeoutMs?: number;
  /** Whether `media.chunk` counts per track (default) or across both tracks (undocumented, §12). */
  chunkCounting?: 'per-track' | 'shared';
  /** First `media.timestamp` of a stream (real captures: 99..171). Default 99. */
  timestampOffsetMs?: number;
  /** Verify TLS certificates of wss:// and https:// targets. Default true. */
  tlsRejectUnauthorized?: boolean;
}

export interface StreamSnapshot {
  sid: string;
  accountSid: string;
  callSid: string;
  name: string | null;
  track: StreamTrack;
  url: string;
  statusCallback: string | null;
  statusCallbackMethod: HttpMethod;
  parameters: Record<string, string>;
  /** A `<Connect><Stream>` (two-way) stream. */
  bidirectional: boolean;
  status: 'in-progress' | 'stopped';
  dateCreated: string;
  dateUpdated: string;
  /** The X-Twilio-Signature sent on the upgrade. */
  signature: string;
  /** HTTP status of a refused upgrade. */
  handshakeStatus: number | null;
  connected: boolean;
  error: { code: number; message: string } | null;
  /** Why the stream ended: `api` (UpdateStream), `hangup`, `conference-ended`, `audio-ended`, `server-closed`, `fault`, `error`, `sim-closed`. */
  endReason: string | null;
  /** Messages written to the socket (duplicates counted). */
  messagesSent: number;
  /** Messages the server sent on the socket (a one-way stream ignores them). */
  messagesReceived: number;
  mediaSent: { inbound: number; outbound: number };
  /** `dtmf` events sent (two-way streams). */
  dtmfSent: number;
  /** Two-way streams: what the server sent back and what became of it; null for one-way streams. */
  twoWay: {
    mediaReceived: number;
    marksReceived: number;
    marksEchoed: number;
    /** Names of marks whose audio has not played yet. */
    pendingMarks: string[];
    clears: number;
    framesPlayed: number;
    framesDiscarded: number;
    /** Warnings by code: 31950 binary frame, 31951 invalid message, 31931 audio discarded. */
    warnings: Record<string, number>;
  } | null;
  lastSequenceNumber: number;
  stopSent: boolean;
  closeCode: number | null;
  faults: StreamFaults | null;
}

export interface ParticipantSnapshot {
  callSid: string;
  conferenceSid: string;
  label: string | null;
  muted: boolean;
  hold: boolean;
  coaching: boolean;
  endConferenceOnExit: boolean;
  startConferenceOnEnter: boolean;
  status: 'connected' | 'complete';
  dateCreated: string;
}

export interface CallSnapshot {
  sid: string;
  accountSid: string;
  status: CallStatus;
  from: string;
  to: string;
  conferenceSid: string | null;
  dateCreated: string;
  endTime: string | null;
  streamSids: string[];
  audio: string;
}

export interface ConferenceSnapshot {
  sid: string;
  accountSid: string;
  friendlyName: string;
  status: ConferenceStatus;
  reasonConferenceEnded: ConferenceEndReason | null;
  callSidEndingConference: string | null;
  statusCallback: string | null;
  statusCallbackEvents: string[];
  participants: ParticipantSnapshot[];
  announcements: { url: string; method: HttpMethod }[];
  dateCreated: string;
  dateUpdated: string;
}

/** One Twilio REST request as received. */
export interface RequestLogEntry {
  seq: number;
  time: string;
  method: string;
  path: string;
  /** Null for paths no operation serves. */
  operation: RestOperation | null;
  /** Form body (POST) or query (GET); repeated names become arrays. */
  params: Record<string, string | string[]>;
  /** Basic-auth username, when one was sent. */
  authUser: string | null;
  status: number;
  twilioCode: number | null;
  /** Set when a REST fault decided the answer. */
  injected: boolean;
}

/** One callback the emulator sent. */
export interface CallbackLogEntry {
  seq: number;
  time: string;
  kind: 'stream' | 'conference' | 'call';
  /** Stream, conference or call SID the callback is about. */
  subject: string;
  event: string;
  url: string;
  method: HttpMethod;
  params: Record<string, string>;
  signature: string;
  status: number | null;
  error: string | null;
}

export interface SimStateSnapshot {
  accountSid: string;
  speed: number;
  calls: CallSnapshot[];
  conferences: ConferenceSnapshot[];
  streams: StreamSnapshot[];
}
