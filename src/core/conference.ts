/**
 * What ending a conference means to every layer: the verified `conference-end` callback the
 * webhook routes publish on the bus, and the one "end this conference now" operation the admin
 * API and the rules share (the conditions engine implements it at most once per conference).
 */

/** A verified `conference-end` status callback (ARCHITECTURE.md "Life of one conference"). */
export interface ConferenceEndEvent {
  conferenceSid: string;
  accountSid: string | null;
  friendlyName: string | null;
  /** ReasonConferenceEnded, e.g. `last-participant-left`. */
  reason: string | null;
  callSidEndingConference: string | null;
  /** Twilio's Timestamp (RFC 2822), as sent. */
  timestamp: string | null;
}

export interface ConferenceEndResult {
  conferenceSid: string;
  /** `ended` by this request, or `already-ended` (a once-only implementation found it done). */
  result: 'ended' | 'already-ended';
  /** The conference's status as Twilio reported it, when known. */
  status: string | null;
}

/** Ends a conference now. `source` says who asks (`admin`, or a rule name); rejects with the REST client's errors. */
export type EndConference = (conferenceSid: string, source: string) => Promise<ConferenceEndResult>;
