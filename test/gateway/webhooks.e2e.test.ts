import { afterEach, describe, expect, it } from 'vitest';
import type { ConferenceEndEvent } from '../../src/core/conference.js';
import { parseForm } from '../../src/gateway/control/webhook-routes.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { newSid } from '../../src/twilio/sids.js';
import { verifyStreamToken, deriveStreamTokenSecret } from '../../src/twilio/stream-token.js';
import { startSim, type Sim } from '../../src/emulator/index.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { startFakeTwilio, type FakeTwilio } from '../helpers/fake-twilio.js';
import { freePort } from '../helpers/ports.js';
import { metricValue, waitFor, startTwilioGateway, type TwilioTestGateway } from '../helpers/gateway.js';

const PUBLIC = 'https://gw.example.com';
const ADMIN = 'admin-token-webhooks';

let gw: TwilioTestGateway | undefined;
let tw: FakeTwilio | undefined;
afterEach(async () => {
  await gw?.close();
  await tw?.close();
  gw = tw = undefined;
});

async function setup(env: Record<string, string> = {}, authToken?: string): Promise<{ gw: TwilioTestGateway; tw: FakeTwilio }> {
  tw = await startFakeTwilio(undefined, authToken);
  gw = await startTwilioGateway({
    PUBLIC_URL: PUBLIC,
    ADMIN_TOKEN: ADMIN,
    TWILIO_ACCOUNT_SID: tw.accountSid,
    TWILIO_AUTH_TOKEN: tw.authToken,
    TWILIO_API_URL: tw.baseUrl,
    ...env,
  });
  return { gw, tw };
}

/** POSTs a form as Twilio does; `sign` = the auth token to sign with (null: no header). */
async function post(path: string, params: Record<string, string>, sign: string | null, opts: { signature?: string; signedUrl?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
  if (opts.signature !== undefined) headers['x-twilio-signature'] = opts.signature;
  else if (sign !== null) headers['x-twilio-signature'] = computeSignature(sign, opts.signedUrl ?? PUBLIC + path, params);
  return fetch(gw!.http + path, { method: 'POST', headers, body: new URLSearchParams(params).toString() });
}

async function liveStreams(): Promise<Record<string, unknown>[]> {
  const res = await fetch(`${gw!.http}/v1/streams`, { headers: { authorization: `Bearer ${ADMIN}` } });
  return ((await res.json()) as { streams: Record<string, unknown>[] }).streams;
}

function streamStatus(event: string, extra: Record<string, string> = {}, callSid = newSid('call'), streamSid = newSid('stream')): Record<string, string> {
  return {
    AccountSid: tw!.accountSid,
    CallSid: callSid,
    StreamSid: streamSid,
    StreamName: streamSid,
    StreamEvent: event,
    Timestamp: '2024-11-29T00:09:39.602648368Z',
    ...extra,
  };
}

function conferenceEvent(event: string, conferenceSid: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AccountSid: tw!.accountSid,
    ConferenceSid: conferenceSid,
    FriendlyName: 'room-1',
    SequenceNumber: '2',
    StatusCallbackEvent: event,
    Timestamp: 'Thu, 1 Jun 2017 20:48:32 +0000',
    ...extra,
  };
}

describe('POST /twilio/stream-status', () => {
  it("accepts the protocol doc's signed vector (token 12345) and counts the event", async () => {
    await setup({}, '12345');
    const a = 'a'.repeat(32);
    const params = {
      AccountSid: `AC${a}`,
      CallSid: `CA${a}`,
      StreamSid: `MZ${a}`,
      StreamName: `MZ${a}`,
      StreamEvent: 'stream-started',
      Timestamp: '2024-11-29T00:09:39.602648368Z',
    };
    // Computed independently in docs/twilio-protocol.md §8.1.
    const res = await post('/twilio/stream-status', params, null, { signature: '9w7oRY9rxW2p90/Sp0PObirvXTg=' });
    expect(res.status).toBe(204);
    expect(await metricValue(gw!.http, 'streamgate_stream_callbacks_total', { event: 'stream-started' })).toBe(1);
    expect(gw!.lines().some((l) => l.msg === 'stream status callback' && l.streamSid === `MZ${a}` && l.event === 'stream-started')).toBe(true);
  });

  it('marks a stream the gateway started: started, then gone from the list once stopped', async () => {
    const { tw } = await setup();
    const callSid = newSid('call');
    await fetch(`${gw!.http}/v1/calls/${callSid}/streams`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    const streamSid = tw.streams[0]!.sid;
    expect(await liveStreams()).toMatchObject([{ streamSid, state: 'pending', lastCallback: null }]);

    expect((await post('/twilio/stream-status', streamStatus('stream-started', {}, callSid, streamSid), tw.authToken)).status).toBe(204);
    expect(await liveStreams()).toMatchObject([{ streamSid, state: 'pending', lastCallback: 'stream-started', origin: 'admin' }]);
    expect(gw!.twilio.starter.get(streamSid)!.status).toBe('started');

    expect((await post('/twilio/stream-status', streamStatus('stream-stopped', {}, callSid, streamSid), tw.authToken)).status).toBe(204);
    expect(gw!.twilio.starter.get(streamSid)!.status).toBe('stopped');
    expect(await liveStreams()).toEqual([]);
    expect(await metricValue(gw!.http, 'streamgate_stream_callbacks_total', { event: 'stream-stopped' })).toBe(1);
  });

  it('records a stream-error with its message and logs it as a warning', async () => {
    const { tw } = await setup();
    const params = streamStatus('stream-error', { StreamError: 'Stream - WebSocket - Connection Refused' });
    expect((await post('/twilio/stream-status', params, tw.authToken)).status).toBe(204);
    const entry = gw!.twilio.starter.get(params.StreamSid!)!;
    expect(entry).toMatchObject({ status: 'error', error: 'Stream - WebSocket - Connection Refused', origin: 'callback', name: null });
    expect(gw!.lines().some((l) => l.level === 40 && l.streamError === 'Stream - WebSocket - Connection Refused')).toBe(true);
    expect(await metricValue(gw!.http, 'streamgate_stream_callbacks_total', { event: 'stream-error' })).toBe(1);
  });

  it('counts an unknown StreamEvent under a fixed label', async () => {
    const { tw } = await setup();
    expect((await post('/twilio/stream-status', streamStatus('stream-paused'), tw.authToken)).status).toBe(204);
    expect(await metricValue(gw!.http, 'streamgate_stream_callbacks_total', { event: 'other' })).toBe(1);
  });

  it.each([
    ['no signature', null, undefined, 'webhook_signature_missing'],
    ['a signature by another token', 'not-the-token', undefined, 'webhook_signature_invalid'],
    ['a signature over the http:// URL', 'TOKEN', 'http://gw.example.com/twilio/stream-status', 'webhook_signature_invalid'],
    ['a signature over another path', 'TOKEN', 'https://gw.example.com/twilio/conference-events', 'webhook_signature_invalid'],
  ])('refuses %s with 403 and counts it', async (_what, signWith, signedUrl, reason) => {
    const { tw } = await setup();
    const params = streamStatus('stream-started');
    const res = await post('/twilio/stream-status', params, signWith === 'TOKEN' ? tw.authToken : signWith, { signedUrl });
    expect(res.status).toBe(403);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason })).toBe(1);
    expect(await metricValue(gw!.http, 'streamgate_stream_callbacks_total', { event: 'stream-started' })).toBe(0);
    expect(gw!.twilio.starter.get(params.StreamSid!)).toBeUndefined();
  });

  it('refuses a signed body whose parameters were changed afterwards', async () => {
    const { tw } = await setup();
    const params = streamStatus('stream-started');
    const signature = computeSignature(tw.authToken, PUBLIC + '/twilio/stream-status', params);
    const res = await post('/twilio/stream-status', { ...params, StreamEvent: 'stream-stopped' }, null, { signature });
    expect(res.status).toBe(403);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'webhook_signature_invalid' })).toBe(1);
  });

  it('accepts unsigned callbacks when no auth token is set', async () => {
    gw = await startTwilioGateway({ PUBLIC_URL: PUBLIC });
    tw = await startFakeTwilio();
    const res = await post('/twilio/stream-status', streamStatus('stream-started'), null);
    expect(res.status).toBe(204);
    expect(await metricValue(gw.http, 'streamgate_stream_callbacks_total', { event: 'stream-started' })).toBe(1);
  });

  it('answers 400 naming a missing or malformed field, and 415 for a JSON body', async () => {
    const { tw } = await setup();
    const missing = streamStatus('stream-started');
    delete missing.StreamSid;
    const r1 = await post('/twilio/stream-status', missing, tw.authToken);
    expect(r1.status).toBe(400);
    expect(await r1.json()).toMatchObject({ error: 'invalid_request', field: 'StreamSid' });
    const r2 = await post('/twilio/stream-status', streamStatus('stream-started', { CallSid: '../../etc' }), tw.authToken);
    expect(r2.status).toBe(400);
    expect(await r2.json()).toMatchObject({ field: 'CallSid' });
    const r3 = await fetch(`${gw!.http}/twilio/stream-status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(streamStatus('stream-started')) });
    expect(r3.status).toBe(415);
  });
});

describe('POST /twilio/conference-events', () => {
  it('starts an inbound stream for a joining participant, with the conference and a valid token, answering before Twilio does', async () => {
    const { tw } = await setup();
    const conferenceSid = newSid('conference');
    const callSid = newSid('call');
    tw.delay(1500);
    const t0 = performance.now();
    const res = await post('/twilio/conference-events', conferenceEvent('participant-join', conferenceSid, { CallSid: callSid }), tw.authToken);
    const answeredMs = performance.now() - t0;
    expect(res.status).toBe(204);
    expect(answeredMs).toBeLessThan(1000);
    await waitFor(() => tw.requests.length === 1, 3000, 'CreateStream request');
    await waitFor(() => gw!.twilio.starter.active().length === 1, 5000, 'stream tracked');
    const f = tw.requests[0]!.form;
    expect(tw.requests[0]!.path).toBe(`/2010-04-01/Accounts/${tw.accountSid}/Calls/${callSid}/Streams.json`);
    expect(f.get('Url')).toBe('wss://gw.example.com/media');
    expect(f.get('Track')).toBe('inbound_track');
    expect(f.get('StatusCallback')).toBe('https://gw.example.com/twilio/stream-status');
    expect(f.get('Parameter1.Name')).toBe('sgToken');
    expect(verifyStreamToken(deriveStreamTokenSecret(tw.authToken), f.get('Parameter1.Value'), callSid, conferenceSid)).toBe(true);
    expect([f.get('Parameter2.Name'), f.get('Parameter2.Value')]).toEqual(['conferenceSid', conferenceSid]);
    expect(await liveStreams()).toMatchObject([{ callSid, conferenceSid, origin: 'participant-join', state: 'pending', tracks: ['inbound'] }]);
  });

  it('does not start a second stream when participant-join repeats for the same call', async () => {
    const { tw } = await setup();
    const conferenceSid = newSid('conference');
    const callSid = newSid('call');
    tw.delay(200);
    const join = conferenceEvent('participant-join', conferenceSid, { CallSid: callSid });
    // One while the first CreateStream is in flight, one after it succeeded.
    await post('/twilio/conference-events', join, tw.authToken);
    await post('/twilio/conference-events', join, tw.authToken);
    await waitFor(() => gw!.twilio.starter.active().length === 1, 3000, 'stream tracked');
    expect((await post('/twilio/conference-events', join, tw.authToken)).status).toBe(204);
    await new Promise((r) => setTimeout(r, 300));
    expect(tw.requests).toHaveLength(1);
  });

  it('uses AUTO_STREAM_TRACK, and streams nothing when it is off', async () => {
    const { tw } = await setup({ AUTO_STREAM_TRACK: 'both_tracks' });
    await post('/twilio/conference-events', conferenceEvent('participant-join', newSid('conference'), { CallSid: newSid('call') }), tw.authToken);
    await waitFor(() => tw.requests.length === 1, 3000, 'CreateStream request');
    expect(tw.requests[0]!.form.get('Track')).toBe('both_tracks');
    await gw!.close();
    await tw.close();

    const off = await setup({ AUTO_STREAM_TRACK: 'off' });
    const res = await post('/twilio/conference-events', conferenceEvent('participant-join', newSid('conference'), { CallSid: newSid('call') }), off.tw.authToken);
    expect(res.status).toBe(204);
    await new Promise((r) => setTimeout(r, 300));
    expect(off.tw.requests).toHaveLength(0);
  });

  it('logs a failed CreateStream and still answers 204', async () => {
    const { tw } = await setup();
    tw.failNext(400, { code: 21220, message: 'Invalid call state', status: 400 });
    const callSid = newSid('call');
    const res = await post('/twilio/conference-events', conferenceEvent('participant-join', newSid('conference'), { CallSid: callSid }), tw.authToken);
    expect(res.status).toBe(204);
    await waitFor(() => gw!.lines().some((l) => l.msg === 'could not start the stream of a joining participant' && l.callSid === callSid), 3000, 'failure logged');
    expect(gw!.twilio.starter.active()).toEqual([]);
  });

  it('publishes conference-end on the bus and streams no late joiner of that conference', async () => {
    const { tw } = await setup();
    const ended: ConferenceEndEvent[] = [];
    gw!.gw.bus.on('conference-end', (e) => ended.push(e));
    gw!.gw.bus.on('conference-end', () => {
      throw new Error('a broken listener');
    });
    const conferenceSid = newSid('conference');
    const ender = newSid('call');
    const res = await post(
      '/twilio/conference-events',
      conferenceEvent('conference-end', conferenceSid, { ReasonConferenceEnded: 'last-participant-left', CallSidEndingConference: ender, Reason: 'Participant left' }),
      tw.authToken,
    );
    expect(res.status).toBe(204);
    expect(ended).toEqual([
      { conferenceSid, accountSid: tw.accountSid, friendlyName: 'room-1', reason: 'last-participant-left', callSidEndingConference: ender, timestamp: 'Thu, 1 Jun 2017 20:48:32 +0000' },
    ]);
    expect(gw!.lines().some((l) => l.msg === 'event listener threw' && l.event === 'conference-end')).toBe(true);
    // Callbacks can arrive out of order: a join after the end must not fork a dead call.
    await post('/twilio/conference-events', conferenceEvent('participant-join', conferenceSid, { CallSid: newSid('call') }), tw.authToken);
    await new Promise((r) => setTimeout(r, 300));
    expect(tw.requests).toHaveLength(0);
  });

  it('checks the signature over the URL with its query string', async () => {
    const { tw } = await setup();
    const params = conferenceEvent('participant-leave', newSid('conference'), { CallSid: newSid('call') });
    const path = '/twilio/conference-events?tenant=acme&x=1';
    expect((await post(path, params, tw.authToken)).status).toBe(204);
    expect((await post(path, params, tw.authToken, { signedUrl: PUBLIC + '/twilio/conference-events' })).status).toBe(403);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'webhook_signature_invalid' })).toBe(1);
  });

  it('refuses an unsigned conference callback before acting on it', async () => {
    const { tw } = await setup();
    const res = await post('/twilio/conference-events', conferenceEvent('participant-join', newSid('conference'), { CallSid: newSid('call') }), null);
    expect(res.status).toBe(403);
    await new Promise((r) => setTimeout(r, 200));
    expect(tw.requests).toHaveLength(0);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'webhook_signature_missing' })).toBe(1);
  });

  it('answers 400 for participant-join without a CallSid', async () => {
    const { tw } = await setup();
    const res = await post('/twilio/conference-events', conferenceEvent('participant-join', newSid('conference')), tw.authToken);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', field: 'CallSid' });
  });
});

describe('parseForm', () => {
  it('keeps repeated names as arrays in order, and treats __proto__ as a plain name', () => {
    const f = parseForm('a=1&b=x+y&a=2&a=3&__proto__=p&c=%26');
    expect(f.a).toEqual(['1', '2', '3']);
    expect(f.b).toBe('x y');
    expect(f.c).toBe('&');
    expect(Object.getPrototypeOf(f)).toBeNull();
    expect(f['__proto__']).toBe('p');
  });

  it('signs repeated keys the way Twilio does, end to end', async () => {
    gw = await startTwilioGateway({ PUBLIC_URL: PUBLIC, TWILIO_AUTH_TOKEN: 'tok' });
    const body = 'StreamSid=' + newSid('stream') + '&CallSid=' + newSid('call') + '&StreamEvent=stream-started&Extra=b&Extra=a';
    const params = parseForm(body);
    const signature = computeSignature('tok', PUBLIC + '/twilio/stream-status', params);
    const res = await fetch(`${gw.http}/twilio/stream-status`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
      body,
    });
    expect(res.status).toBe(204);
    // Dropping one of the repeated values breaks the signature.
    const res2 = await fetch(`${gw.http}/twilio/stream-status`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
      body: body.replace('&Extra=a', ''),
    });
    expect(res2.status).toBe(403);
  });
});

describe('with the Twilio emulator (src/emulator)', () => {
  let sim: Sim | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    await sim?.close();
    sim = undefined;
  });

  it('conference join → signed callback → CreateStream with token → signed /media → audio; admin end → conference-end', async () => {
    const accountSid = newSid('account');
    const authToken = 'sim-auth-token-0123456789';
    sim = await startSim({ accountSid, authToken, speed: 10 });
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const sink = collectingSinkFactory();
    gw = await startTwilioGateway(
      {
        PORT: String(port),
        PUBLIC_URL: publicUrl,
        TWILIO_ACCOUNT_SID: accountSid,
        TWILIO_AUTH_TOKEN: authToken,
        TWILIO_API_URL: sim.url,
        STREAM_TOKEN_REQUIRED: 'true',
        ADMIN_TOKEN: ADMIN,
      },
      [sink],
    );
    const ended: ConferenceEndEvent[] = [];
    gw.gw.bus.on('conference-end', (e) => ended.push(e));

    const conf = await sim.createConference({
      statusCallback: `${publicUrl}/twilio/conference-events`,
      statusCallbackEvent: 'start end join leave',
      participants: [{ audio: { type: 'tone', hz: 440, ms: 60_000 } }, { audio: { type: 'tone', hz: 660, ms: 60_000 } }],
    });
    const callSids = conf.participants.map((p) => p.callSid);
    // Both participants streamed (each once), and the gateway accepted both sockets.
    await waitFor(() => sink.streams.length === 2 && sink.streams.every((c) => c.frames.length >= 10), 10_000, 'audio from both participants');
    expect(sink.streams.map((c) => c.info.callSid).sort()).toEqual([...callSids].sort());
    expect(sink.streams.every((c) => c.info.conferenceSid === conf.sid)).toBe(true);
    const simStreams = sim.streams();
    expect(simStreams).toHaveLength(2);
    for (const st of simStreams) {
      expect(st.url).toBe(`ws://127.0.0.1:${port}/media`);
      expect(st.track).toBe('inbound_track');
      expect(st.statusCallback).toBe(`${publicUrl}/twilio/stream-status`);
      expect(st.parameters.conferenceSid).toBe(conf.sid);
      expect(verifyStreamToken(deriveStreamTokenSecret(authToken), st.parameters.sgToken, st.callSid, conf.sid)).toBe(true);
    }
    // The emulator's signed stream-started callbacks were accepted and filed.
    await waitFor(() => simStreams.every((st) => gw!.twilio.starter.get(st.sid)?.status === 'started'), 5000, 'stream-started callbacks');
    const live = await liveStreams();
    expect(live.map((l) => l.state)).toEqual(['streaming', 'streaming']);
    expect(live.every((l) => (l.frames as number) > 0)).toBe(true);

    const res = await fetch(`${gw.http}/v1/conferences/${conf.sid}/end`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ conferenceSid: conf.sid, result: 'ended', status: 'completed' });
    await sim.waitForConferenceStatus(conf.sid, 'completed');
    await waitFor(() => ended.length === 1, 5000, 'conference-end callback');
    expect(ended[0]).toMatchObject({ conferenceSid: conf.sid, accountSid, reason: 'conference-ended-via-api' });
    await waitFor(() => sink.streams.every((c) => c.closed !== null), 5000, 'streams closed');
    expect(await metricValue(gw.http, 'streamgate_protocol_errors_total', { reason: 'webhook_signature_invalid' })).toBe(0);
    expect(await metricValue(gw.http, 'streamgate_upgrade_rejected_total', { reason: 'signature_invalid' })).toBe(0);
    expect(await metricValue(gw.http, 'streamgate_stream_callbacks_total', { event: 'stream-started' })).toBe(2);
  });
});
