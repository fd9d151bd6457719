/**
 * A captured, validly signed Twilio callback sent again (issue 13, finding 7): answered 2xx so
 * Twilio would never retry it, but without a second effect, and counted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ConferenceEndEvent } from '../../src/core/conference.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { newSid } from '../../src/twilio/sids.js';
import { metricValue } from '../helpers/gateway.js';
import { startTwilioGateway, type TwilioTestGateway } from '../helpers/gateway.js';

const PUBLIC = 'https://gw.example.com';
const AUTH = 'replay-auth-token-0123456789abcdef';
const ACCOUNT = newSid('account');

let gw: TwilioTestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function post(path: string, params: Record<string, string>): Promise<number> {
  const res = await fetch(gw!.http + path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': computeSignature(AUTH, PUBLIC + path, params) },
    body: new URLSearchParams(params).toString(),
  });
  return res.status;
}

function conferenceEnd(conferenceSid: string, sequence: string): Record<string, string> {
  return {
    AccountSid: ACCOUNT,
    ConferenceSid: conferenceSid,
    FriendlyName: 'room-1',
    SequenceNumber: sequence,
    StatusCallbackEvent: 'conference-end',
    ReasonConferenceEnded: 'last-participant-left',
    Timestamp: 'Thu, 1 Jun 2017 20:48:32 +0000',
  };
}

describe('signed webhook replay', () => {
  it('acts on a signed conference-end once; the same delivery again gets 204, no effect, and is counted', async () => {
    gw = await startTwilioGateway({ PUBLIC_URL: PUBLIC, TWILIO_AUTH_TOKEN: AUTH });
    const ended: ConferenceEndEvent[] = [];
    gw.gw.bus.on('conference-end', (e) => ended.push(e));
    const a = newSid('conference');
    const delivery = conferenceEnd(a, '3');
    expect(await post('/twilio/conference-events', delivery)).toBe(204);
    expect(await post('/twilio/conference-events', delivery)).toBe(204);
    expect(await post('/twilio/conference-events', delivery)).toBe(204);
    // A genuine later delivery (another conference) is still acted on: the replays came first.
    const b = newSid('conference');
    expect(await post('/twilio/conference-events', conferenceEnd(b, '3'))).toBe(204);
    expect(ended.map((e) => e.conferenceSid)).toEqual([a, b]);
    expect(await metricValue(gw.http, 'streamgate_protocol_errors_total', { reason: 'webhook_replay' })).toBe(2);
  });

  it('files a signed stream status callback once; a replay is not counted as a second event', async () => {
    gw = await startTwilioGateway({ PUBLIC_URL: PUBLIC, TWILIO_AUTH_TOKEN: AUTH });
    const streamSid = newSid('stream');
    const callSid = newSid('call');
    const started = { AccountSid: ACCOUNT, CallSid: callSid, StreamSid: streamSid, StreamName: streamSid, StreamEvent: 'stream-started', Timestamp: '2024-11-29T00:09:39.602648368Z' };
    const stopped = { ...started, StreamEvent: 'stream-stopped', Timestamp: '2024-11-29T00:10:01.100000000Z' };
    expect(await post('/twilio/stream-status', started)).toBe(204);
    expect(await post('/twilio/stream-status', stopped)).toBe(204);
    // Replaying the start after the stop must not make the stream look live again.
    expect(await post('/twilio/stream-status', started)).toBe(204);
    expect(gw.twilio.starter.get(streamSid)).toMatchObject({ status: 'stopped', lastCallback: 'stream-stopped' });
    expect(await metricValue(gw.http, 'streamgate_stream_callbacks_total', { event: 'stream-started' })).toBe(1);
    expect(await metricValue(gw.http, 'streamgate_stream_callbacks_total', { event: 'stream-stopped' })).toBe(1);
    expect(await metricValue(gw.http, 'streamgate_protocol_errors_total', { reason: 'webhook_replay' })).toBe(1);
  });
});
