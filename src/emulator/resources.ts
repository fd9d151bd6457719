/**
 * Twilio REST JSON for the emulator's resources, field for field as the 2010-04-01 API
 * answers (the OpenAPI extract's schemas; the Call resource from Twilio's docs). Dates are
 * RFC 2822, booleans are JSON booleans, URIs are relative to https://api.twilio.com.
 */
import { rfc2822 } from './dates.js';
import type { CallRecord, ConferenceRecord, ParticipantRecord, StreamRecord } from './records.js';

const API = '/2010-04-01';

export function accountPath(accountSid: string): string {
  return `${API}/Accounts/${accountSid}`;
}

export function streamJson(s: StreamRecord): Record<string, unknown> {
  return {
    account_sid: s.accountSid,
    call_sid: s.callSid,
    sid: s.sid,
    name: s.name,
    status: s.status,
    date_updated: rfc2822(s.dateUpdated),
    uri: `${accountPath(s.accountSid)}/Calls/${s.callSid}/Streams/${s.sid}.json`,
  };
}

export function conferenceJson(c: ConferenceRecord): Record<string, unknown> {
  const base = `${accountPath(c.accountSid)}/Conferences/${c.sid}`;
  return {
    account_sid: c.accountSid,
    api_version: '2010-04-01',
    call_sid_ending_conference: c.callSidEndingConference,
    date_created: rfc2822(c.dateCreated),
    date_updated: rfc2822(c.dateUpdated),
    friendly_name: c.friendlyName,
    reason_conference_ended: c.reasonConferenceEnded,
    region: c.region,
    sid: c.sid,
    status: c.status,
    subresource_uris: {
      participants: `${base}/Participants.json`,
      recordings: `${base}/Recordings.json`,
    },
    uri: `${base}.json`,
  };
}

/** `status` overrides the participant's status (CreateParticipant answers `queued`). */
export function participantJson(p: ParticipantRecord, status?: string): Record<string, unknown> {
  return {
    account_sid: p.accountSid,
    call_sid: p.callSid,
    call_sid_to_coach: null,
    coaching: p.coaching,
    conference_sid: p.conferenceSid,
    date_created: rfc2822(p.dateCreated),
    date_updated: rfc2822(p.dateUpdated),
    end_conference_on_exit: p.endConferenceOnExit,
    hold: p.hold,
    label: p.label,
    muted: p.muted,
    queue_time: null,
    start_conference_on_enter: p.startConferenceOnEnter,
    status: status ?? p.status,
    uri: `${accountPath(p.accountSid)}/Conferences/${p.conferenceSid}/Participants/${p.callSid}.json`,
  };
}

export function callJson(c: CallRecord): Record<string, unknown> {
  const base = `${accountPath(c.accountSid)}/Calls/${c.sid}`;
  const duration = c.startTime !== null && c.endTime !== null ? String(Math.round((c.endTime.getTime() - c.startTime.getTime()) / 1000)) : null;
  return {
    account_sid: c.accountSid,
    annotation: null,
    answered_by: null,
    api_version: '2010-04-01',
    caller_name: null,
    date_created: rfc2822(c.dateCreated),
    date_updated: rfc2822(c.dateUpdated),
    direction: c.direction,
    duration,
    end_time: c.endTime === null ? null : rfc2822(c.endTime),
    forwarded_from: null,
    from: c.from,
    from_formatted: c.from,
    group_sid: null,
    parent_call_sid: null,
    phone_number_sid: null,
    price: null,
    price_unit: 'USD',
    queue_time: '0',
    sid: c.sid,
    start_time: c.startTime === null ? null : rfc2822(c.startTime),
    status: c.status,
    subresource_uris: {
      notifications: `${base}/Notifications.json`,
      recordings: `${base}/Recordings.json`,
      payments: `${base}/Payments.json`,
      events: `${base}/Events.json`,
      siprec: `${base}/Siprec.json`,
      streams: `${base}/Streams.json`,
      transcriptions: `${base}/Transcriptions.json`,
      user_defined_message_subscriptions: `${base}/UserDefinedMessageSubscriptions.json`,
      user_defined_messages: `${base}/UserDefinedMessages.json`,
    },
    to: c.to,
    to_formatted: c.to,
    trunk_sid: null,
    uri: `${base}.json`,
  };
}

/**
 * A page of a list resource (Page/PageSize paging, as the 2010 API does). `query` holds the
 * filters to repeat in the page URIs.
 */
export function page(
  path: string,
  key: string,
  items: readonly Record<string, unknown>[],
  pageNo: number,
  pageSize: number,
  query: Record<string, string> = {},
): Record<string, unknown> {
  const start = pageNo * pageSize;
  const slice = items.slice(start, start + pageSize);
  const uri = (n: number): string => {
    const q = new URLSearchParams({ ...query, PageSize: String(pageSize), Page: String(n) });
    return `${path}?${q.toString()}`;
  };
  return {
    [key]: slice,
    end: slice.length === 0 ? start : start + slice.length - 1,
    first_page_uri: uri(0),
    next_page_uri: start + pageSize < items.length ? uri(pageNo + 1) : null,
    page: pageNo,
    page_size: pageSize,
    previous_page_uri: pageNo > 0 ? uri(pageNo - 1) : null,
    start,
    uri: uri(pageNo),
  };
}
