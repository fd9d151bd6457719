/**
 * The emulator's mutable state records (owned by one Sim's engine) and their JSON snapshots.
 * Records never leave the Sim: the public API hands out snapshots.
 */
import type { CallMedia } from './call-media.js';
import type { TwimlSource } from './twiml.js';
import type { MediaStreamer, StreamError } from './media-streamer.js';
import type {
  CallSnapshot,
  CallStatus,
  ConferenceEndReason,
  ConferenceSnapshot,
  ConferenceStatus,
  HttpMethod,
  ParticipantOptions,
  ParticipantSnapshot,
  StreamFaults,
  StreamSnapshot,
  StreamTrack,
} from './types.js';

export interface CallRecord {
  sid: string;
  accountSid: string;
  from: string;
  to: string;
  status: CallStatus;
  direction: 'inbound' | 'outbound-api';
  dateCreated: Date;
  dateUpdated: Date;
  startTime: Date | null;
  endTime: Date | null;
  media: CallMedia;
  conferenceSid: string | null;
  streamSids: string[];
  streamFaults: StreamFaults | undefined;
  /** Paced end-of-audio timer for calls nobody streams. */
  endTimer: NodeJS.Timeout | null;
  /** Runs the call's TwiML; null for calls driven only by the control API (they hang up when their conference ends). */
  runner: TwimlRunner | null;
  /** TwiML waiting for the call to be answered. */
  pendingTwiml: TwimlSource | null;
  /** Call progress callbacks (StatusCallback); `sequence` is the last SequenceNumber sent. */
  progress: { url: string; method: HttpMethod; events: Set<string>; sequence: number } | null;
}

/** Runs a call's TwiML (call-runner.ts). */
export interface TwimlRunner {
  /** Runs `source`, interrupting what the call was doing. */
  start(source: TwimlSource): void;
  /** Ends the current document. */
  stop(): void;
}

/** A validated CreateStream request (REST, or TwiML `<Stream>`). */
export interface StreamRequest {
  url: string;
  name: string | null;
  track: StreamTrack;
  statusCallback: string | null;
  statusCallbackMethod: HttpMethod;
  parameters: Record<string, string>;
  /** `<Connect><Stream>`: two-way (media, mark and clear accepted back; dtmf delivered). */
  bidirectional?: boolean;
}

/** A stream as created: its request (two-way or not, decided), then what became of it. */
export interface StreamRecord extends Required<StreamRequest> {
  sid: string;
  accountSid: string;
  callSid: string;
  status: 'in-progress' | 'stopped';
  dateCreated: Date;
  dateUpdated: Date;
  signature: string;
  error: StreamError | null;
  endReason: string | null;
  faults: StreamFaults | null;
  streamer: MediaStreamer;
}

/** A participant as its snapshot shows it, with the account and both dates kept as Dates. */
export interface ParticipantRecord extends Omit<ParticipantSnapshot, 'dateCreated'> {
  accountSid: string;
  dateCreated: Date;
  dateUpdated: Date;
}

/** A connected participant of `conf` for call `callSid`, with Twilio's defaults for unset options. */
export function newParticipant(conf: ConferenceRecord, callSid: string, opts: ParticipantOptions, now = new Date()): ParticipantRecord {
  return {
    callSid,
    conferenceSid: conf.sid,
    accountSid: conf.accountSid,
    label: opts.label ?? null,
    muted: opts.muted ?? false,
    hold: opts.hold ?? false,
    coaching: opts.coaching ?? false,
    endConferenceOnExit: opts.endConferenceOnExit ?? false,
    startConferenceOnEnter: opts.startConferenceOnEnter ?? true,
    status: 'connected',
    dateCreated: now,
    dateUpdated: now,
  };
}

export interface ConferenceRecord {
  sid: string;
  accountSid: string;
  friendlyName: string;
  status: ConferenceStatus;
  region: string;
  dateCreated: Date;
  dateUpdated: Date;
  reasonConferenceEnded: ConferenceEndReason | null;
  callSidEndingConference: string | null;
  statusCallback: string | null;
  statusCallbackMethod: HttpMethod;
  /** Subscribed events: start, end, join, leave (others accepted and ignored). */
  events: Set<string>;
  /** Every participant that ever joined, by CallSid. */
  participants: Map<string, ParticipantRecord>;
  /** Last conference callback SequenceNumber. */
  sequence: number;
  announcements: { url: string; method: HttpMethod }[];
}

export function streamSnapshot(s: StreamRecord): StreamSnapshot {
  const st = s.streamer.stats;
  return {
    sid: s.sid,
    accountSid: s.accountSid,
    callSid: s.callSid,
    name: s.name,
    track: s.track,
    url: s.url,
    statusCallback: s.statusCallback,
    statusCallbackMethod: s.statusCallbackMethod,
    parameters: { ...s.parameters },
    bidirectional: s.bidirectional,
    status: s.status,
    dateCreated: s.dateCreated.toISOString(),
    dateUpdated: s.dateUpdated.toISOString(),
    signature: s.signature,
    handshakeStatus: st.handshakeStatus,
    connected: st.connected,
    error: s.error === null ? null : { ...s.error },
    endReason: s.endReason,
    messagesSent: st.messagesSent,
    messagesReceived: st.messagesReceived,
    mediaSent: { ...st.mediaSent },
    dtmfSent: st.dtmfSent,
    twoWay: st.playback === null ? null : { ...st.playback, pendingMarks: [...st.playback.pendingMarks], warnings: { ...st.playback.warnings } },
    lastSequenceNumber: st.lastSequenceNumber,
    stopSent: st.stopSent,
    closeCode: st.closeCode,
    faults: s.faults === null ? null : structuredClone(s.faults),
  };
}

export function participantSnapshot(p: ParticipantRecord): ParticipantSnapshot {
  return {
    callSid: p.callSid,
    conferenceSid: p.conferenceSid,
    label: p.label,
    muted: p.muted,
    hold: p.hold,
    coaching: p.coaching,
    endConferenceOnExit: p.endConferenceOnExit,
    startConferenceOnEnter: p.startConferenceOnEnter,
    status: p.status,
    dateCreated: p.dateCreated.toISOString(),
  };
}

export function callSnapshot(c: CallRecord): CallSnapshot {
  return {
    sid: c.sid,
    accountSid: c.accountSid,
    status: c.status,
    from: c.from,
    to: c.to,
    conferenceSid: c.conferenceSid,
    dateCreated: c.dateCreated.toISOString(),
    endTime: c.endTime?.toISOString() ?? null,
    streamSids: [...c.streamSids],
    audio: c.media.speaks.description,
  };
}

export function conferenceSnapshot(c: ConferenceRecord): ConferenceSnapshot {
  return {
    sid: c.sid,
    accountSid: c.accountSid,
    friendlyName: c.friendlyName,
    status: c.status,
    reasonConferenceEnded: c.reasonConferenceEnded,
    callSidEndingConference: c.callSidEndingConference,
    statusCallback: c.statusCallback,
    statusCallbackEvents: [...c.events],
    participants: [...c.participants.values()].map(participantSnapshot),
    announcements: c.announcements.map((a) => ({ ...a })),
    dateCreated: c.dateCreated.toISOString(),
    dateUpdated: c.dateUpdated.toISOString(),
  };
}
