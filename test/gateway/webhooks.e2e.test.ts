import { afterEach, describe, expect, it } from 'vitest';
import type { ConferenceEndEvent } from '../../src/core/conference.js';
import type { StreamFaults } from '../../src/emulator/index.js';
import { parseForm } from '../../src/twilio/form.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { newSid } from '../../src/twilio/sids.js';
import { verifyStreamToken, deriveStreamTokenSecret } from '../../src/twilio/stream-token.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { metricValue, waitFor, startTwilioGateway, startTwilioStack, type TwilioStack, type TwilioTestGateway } from '../helpers/gateway.js';

const ADMIN = 'admin-token-webhooks';
/** Holds an emulator stream between `connected` and `start`: the gateway lists it as pending. */
const HELD: StreamFaults = { startDelayMs: 60_000 };

let gw: TwilioTestGateway | undefined;
/** PUBLIC_URL of the gateway under test: what callbacks are signed over. */
let publicUrl = 'https://gw.example.com';
/** The account the callbacks speak for. */
let accountSid = newSid('account');
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** The gateway with the emulator as its Twilio (callbacks signed with the emulator's auth token). */
async function setup(env: Record<string, string> = {}): Promise<TwilioStack> {
  const stack = await startTwilioStack({ ADMIN_TOKEN: ADMIN, ...env });
  gw = stack;
  publicUrl = stack.publicUrl;
  accountSid = stack.sim.accountSid;
  return stack;
}

/** POSTs a form as Twilio does; `sign` = the auth token to sign with (null: no header). */
async function post(path: string, params: Record<string, string>, sign: string | null, opts: { signature?: string; signedUrl?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
  if (opts.signature !== undefined) headers['x-twilio-signature'] = opts.signature;
  else if (sign !== null) headers['x-twilio-signature'] = computeSignature(sign, opts.signedUrl ?? publicUrl + path, params);
  return fetch(gw!.http + path, { method: 'POST', headers, body: new URLSearchParams(params).toString() });
}

async function liveStreams(): Promise<Record<string, unknown>[]> {
  const res = await fetch(`${gw!.http}/v1/streams`, { headers: { authorization: `Bearer ${ADMIN}` } });
  return ((await res.json()) as { streams: Record<string, unknown>[] }).streams;
}

/**
 * The positive signal behind "no CreateStream": a later stream asked for through the admin API
 * (which answers after Twilio did). A CreateStream an earlier callback caused would have been
 * asked first, so once this one is in the emulator's log, such a one would be too.
 * Returns the later call's SID.
 */
async function laterStream(stack: TwilioStack): Promise<string> {
  const callSid = (await stack.sim.createCall({ streamFaults: HELD })).sid;
  const res = await fetch(`${stack.http}/v1/calls/${callSid}/streams`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
  expect(res.status).toBe(201);
  return callSid;
}

/** The calls Twilio was asked to stream, in order. */
function streamedCalls(stack: TwilioStack): string[] {
  return stack.sim.requests({ operation: 'CreateStream' }).map((r) => /\/Calls\/(CA[0-9a-f]{32})\//.exec(r.path)![1]!);
}

function streamStatus(event: string, extra: Record<string, string> = {}, callSid = newSid('call'), streamSid = newSid('stream')): Record<string, string> {
  return {
    AccountSid: accountSid,
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
    AccountSid: accountSid,
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
    gw = await startTwilioGateway({ PUBLIC_URL: 'https://gw.example.com', TWILIO_AUTH_TOKEN: '12345' });
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
    const stack = await setup();
    const { sim } = stack;
    const callSid = await laterStream(stack);
    const streamSid = sim.streams()[0]!.sid;
    expect(await liveStreams()).toMatchObject([{ streamSid, state: 'pending', lastCallback: null }]);

    expect((await post('/twilio/stream-status', streamStatus('stream-started', {}, callSid, streamSid), sim.authToken)).status).toBe(204);
    expect(await liveStreams()).toMatchObject([{ streamSid, state: 'pending', lastCallback: 'stream-started', origin: 'admin' }]);
    expect(gw!.twilio.starter.get(streamSid)!.status).toBe('started');

    expect((await post('/twilio/stream-status', streamStatus('stream-stopped', {}, callSid, streamSid), sim.authToken)).status).toBe(204);
    expect(gw!.twilio.starter.get(streamSid)!.status).toBe('stopped');
    expect(await liveStreams()).toEqual([]);
    expect(await metricValue(gw!.http, 'streamgate_stream_callbacks_total', { event: 'stream-stopped' })).toBe(1);
  });

  it('records a stream-error with its message and logs it as a warning', async () => {
    const { sim } = await setup();
    const params = streamStatus('stream-error', { StreamError: 'Stream - WebSocket - Connection Refused' });
    expect((await post('/twilio/stream-status', params, sim.authToken)).status).toBe(204);
    const entry = gw!.twilio.starter.get(params.StreamSid!)!;
    expect(entry).toMatchObject({ status: 'error', error: 'Stream - WebSocket - Connection Refused', origin: 'callback', name: null });
    expect(gw!.lines().some((l) => l.level === 40 && l.streamError === 'Stream - WebSocket - Connection Refused')).toBe(true);
    expect(await metricValue(gw!.http, 'streamgate_stream_callbacks_total', { event: 'stream-error' })).toBe(1);
  });

  it('counts an unknown StreamEvent under a fixed label', async () => {
    const { sim } = await setup();
    expect((await post('/twilio/stream-status', streamStatus('stream-paused'), sim.authToken)).status).toBe(204);
    expect(await metricValue(gw!.http, 'streamgate_stream_callbacks_total', { event: 'other' })).toBe(1);
  });

  it.each([
    ['no signature', null, undefined, 'webhook_signature_missing'],
    ['a signature by another token', 'not-the-token', undefined, 'webhook_signature_invalid'],
    ['a signature over the URL with the other scheme (https:// for http://)', 'TOKEN', 'https:', 'webhook_signature_invalid'],
    ['a signature over another path', 'TOKEN', '/twilio/conference-events', 'webhook_signature_invalid'],
  ])('refuses %s with 403 and counts it', async (_what, signWith, signedOver, reason) => {
    const { sim } = await setup();
    const params = streamStatus('stream-started');
    const signedUrl =
      signedOver === undefined ? undefined : signedOver === 'https:' ? publicUrl.replace(/^http:/, 'https:') + '/twilio/stream-status' : publicUrl + signedOver;
    const res = await post('/twilio/stream-status', params, signWith === 'TOKEN' ? sim.authToken : signWith, { signedUrl });
    expect(res.status).toBe(403);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason })).toBe(1);
    expect(await metricValue(gw!.http, 'streamgate_stream_callbacks_total', { event: 'stream-started' })).toBe(0);
    expect(gw!.twilio.starter.get(params.StreamSid!)).toBeUndefined();
  });

  it('refuses a signed body whose parameters were changed afterwards', async () => {
    const { sim } = await setup();
    const params = streamStatus('stream-started');
    const signature = computeSignature(sim.authToken, publicUrl + '/twilio/stream-status', params);
    const res = await post('/twilio/stream-status', { ...params, StreamEvent: 'stream-stopped' }, null, { signature });
    expect(res.status).toBe(403);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'webhook_signature_invalid' })).toBe(1);
  });

  it('accepts unsigned callbacks when no auth token is set', async () => {
    gw = await startTwilioGateway({ PUBLIC_URL: 'https://gw.example.com' });
    const res = await post('/twilio/stream-status', streamStatus('stream-started'), null);
    expect(res.status).toBe(204);
    expect(await metricValue(gw.http, 'streamgate_stream_callbacks_total', { event: 'stream-started' })).toBe(1);
  });

  it('answers 400 naming a missing or malformed field, and 415 for a JSON body', async () => {
    const { sim } = await setup();
    const missing = streamStatus('stream-started');
    delete missing.StreamSid;
    const r1 = await post('/twilio/stream-status', missing, sim.authToken);
    expect(r1.status).toBe(400);
    expect(await r1.json()).toMatchObject({ error: 'invalid_request', field: 'StreamSid' });
    const r2 = await post('/twilio/stream-status', streamStatus('stream-started', { CallSid: '../../etc' }), sim.authToken);
    expect(r2.status).toBe(400);
    expect(await r2.json()).toMatchObject({ field: 'CallSid' });
    const r3 = await fetch(`${gw!.http}/twilio/stream-status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(streamStatus('stream-started')) });
    expect(r3.status).toBe(415);
  });
});

describe('POST /twilio/conference-events', () => {
  it('starts an inbound stream for a joining participant, with the conference and a valid token, answering before Twilio does', async () => {
    const { sim } = await setup();
    const conferenceSid = newSid('conference');
    const callSid = (await sim.createCall({ streamFaults: HELD })).sid;
    sim.faults.addRestFault({ operation: 'CreateStream', latencyMs: 1500 });
    const t0 = performance.now();
    const res = await post('/twilio/conference-events', conferenceEvent('participant-join', conferenceSid, { CallSid: callSid }), sim.authToken);
    const answeredMs = performance.now() - t0;
    expect(res.status).toBe(204);
    expect(answeredMs).toBeLessThan(1000);
    const [req] = await sim.waitForRequests({ operation: 'CreateStream' }, 1, { timeoutMs: 5000 });
    await waitFor(() => gw!.twilio.starter.active().length === 1, 5000, 'stream tracked');
    const f = req!.params as Record<string, string>;
    expect(req!.path).toBe(`/2010-04-01/Accounts/${sim.accountSid}/Calls/${callSid}/Streams.json`);
    expect(f.Url).toBe(`${publicUrl.replace(/^http:/, 'ws:')}/media`);
    expect(f.Track).toBe('inbound_track');
    expect(f.StatusCallback).toBe(`${publicUrl}/twilio/stream-status`);
    expect(f['Parameter1.Name']).toBe('sgToken');
    expect(verifyStreamToken(deriveStreamTokenSecret(sim.authToken), f['Parameter1.Value'], callSid, conferenceSid)).toBe(true);
    expect([f['Parameter2.Name'], f['Parameter2.Value']]).toEqual(['conferenceSid', conferenceSid]);
    expect(await liveStreams()).toMatchObject([{ callSid, conferenceSid, origin: 'participant-join', state: 'pending', tracks: ['inbound'] }]);
  });

  it('does not start a second stream when participant-join repeats for the same call', async () => {
    const stack = await setup();
    const { sim } = stack;
    const conferenceSid = newSid('conference');
    const callSid = (await sim.createCall({ streamFaults: HELD })).sid;
    sim.faults.addRestFault({ operation: 'CreateStream', latencyMs: 200 });
    // Each a new callback (its own SequenceNumber), so the replay window does not drop it.
    const join = (sequence: number) => conferenceEvent('participant-join', conferenceSid, { CallSid: callSid, SequenceNumber: String(sequence) });
    // One while the first CreateStream is in flight, one after it succeeded.
    await post('/twilio/conference-events', join(2), sim.authToken);
    await post('/twilio/conference-events', join(3), sim.authToken);
    await waitFor(() => gw!.twilio.starter.active().length === 1, 3000, 'stream tracked');
    expect((await post('/twilio/conference-events', join(4), sim.authToken)).status).toBe(204);
    const later = await laterStream(stack);
    expect(streamedCalls(stack)).toEqual([callSid, later]);
  });

  it('uses AUTO_STREAM_TRACK, and streams nothing when it is off', async () => {
    const both = await setup({ AUTO_STREAM_TRACK: 'both_tracks' });
    const joined = (await both.sim.createCall({ streamFaults: HELD })).sid;
    await post('/twilio/conference-events', conferenceEvent('participant-join', newSid('conference'), { CallSid: joined }), both.sim.authToken);
    const [req] = await both.sim.waitForRequests({ operation: 'CreateStream' });
    expect(req!.params.Track).toBe('both_tracks');
    await both.close();

    const off = await setup({ AUTO_STREAM_TRACK: 'off' });
    const offJoined = (await off.sim.createCall({ streamFaults: HELD })).sid;
    const res = await post('/twilio/conference-events', conferenceEvent('participant-join', newSid('conference'), { CallSid: offJoined }), off.sim.authToken);
    expect(res.status).toBe(204);
    const later = await laterStream(off);
    expect(streamedCalls(off)).toEqual([later]);
  });

  it('logs a failed CreateStream (Twilio: the call is not in progress) and still answers 204', async () => {
    const { sim } = await setup();
    const callSid = (await sim.createCall({ status: 'ringing' })).sid;
    const res = await post('/twilio/conference-events', conferenceEvent('participant-join', newSid('conference'), { CallSid: callSid }), sim.authToken);
    expect(res.status).toBe(204);
    await waitFor(() => gw!.lines().some((l) => l.msg === 'could not start the stream of a joining participant' && l.callSid === callSid), 3000, 'failure logged');
    expect(gw!.twilio.starter.active()).toEqual([]);
    expect(sim.requests()).toMatchObject([{ operation: 'CreateStream', status: 400, twilioCode: 21220 }]);
  });

  it('publishes conference-end on the bus and streams no late joiner of that conference', async () => {
    const stack = await setup();
    const { sim } = stack;
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
      sim.authToken,
    );
    expect(res.status).toBe(204);
    expect(ended).toEqual([
      { conferenceSid, accountSid: sim.accountSid, friendlyName: 'room-1', reason: 'last-participant-left', callSidEndingConference: ender, timestamp: 'Thu, 1 Jun 2017 20:48:32 +0000' },
    ]);
    expect(gw!.lines().some((l) => l.msg === 'event listener threw' && l.event === 'conference-end')).toBe(true);
    // Callbacks can arrive out of order: a join after the end must not fork a dead call.
    const lateJoiner = (await sim.createCall({ streamFaults: HELD })).sid;
    expect((await post('/twilio/conference-events', conferenceEvent('participant-join', conferenceSid, { CallSid: lateJoiner }), sim.authToken)).status).toBe(204);
    const later = await laterStream(stack);
    expect(streamedCalls(stack)).toEqual([later]);
  });

  it('checks the signature over the URL with its query string', async () => {
    const { sim } = await setup();
    const params = conferenceEvent('participant-leave', newSid('conference'), { CallSid: newSid('call') });
    const path = '/twilio/conference-events?tenant=acme&x=1';
    expect((await post(path, params, sim.authToken)).status).toBe(204);
    expect((await post(path, params, sim.authToken, { signedUrl: publicUrl + '/twilio/conference-events' })).status).toBe(403);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'webhook_signature_invalid' })).toBe(1);
  });

  it('refuses an unsigned conference callback before acting on it', async () => {
    const stack = await setup();
    const joined = (await stack.sim.createCall({ streamFaults: HELD })).sid;
    const res = await post('/twilio/conference-events', conferenceEvent('participant-join', newSid('conference'), { CallSid: joined }), null);
    expect(res.status).toBe(403);
    const later = await laterStream(stack);
    expect(streamedCalls(stack)).toEqual([later]);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'webhook_signature_missing' })).toBe(1);
  });

  it('answers 400 for participant-join without a CallSid', async () => {
    const { sim } = await setup();
    const res = await post('/twilio/conference-events', conferenceEvent('participant-join', newSid('conference')), sim.authToken);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', field: 'CallSid' });
  });
});

describe('parseForm', () => {
  it('keeps repeated names as arrays in order, and treats __proto__ and constructor as plain names', () => {
    const f = parseForm('a=1&b=x+y&a=2&a=3&__proto__=p&c=%26&constructor=k&constructor=l');
    expect(f.a).toEqual(['1', '2', '3']);
    expect(f.b).toBe('x y');
    expect(f.c).toBe('&');
    expect(Object.getPrototypeOf(f)).toBeNull();
    expect(f['__proto__']).toBe('p');
    expect(f['constructor']).toEqual(['k', 'l']);
    // The emulator's REST API reads query strings with the same parser.
    expect(parseForm(new URLSearchParams('a=1&a=2'))).toEqual(Object.assign(Object.create(null), { a: ['1', '2'] }));
  });

  it('signs repeated keys the way Twilio does, end to end', async () => {
    gw = await startTwilioGateway({ PUBLIC_URL: 'https://gw.example.com', TWILIO_AUTH_TOKEN: 'tok' });
    const body = 'StreamSid=' + newSid('stream') + '&CallSid=' + newSid('call') + '&StreamEvent=stream-started&Extra=b&Extra=a';
    const params = parseForm(body);
    const signature = computeSignature('tok', 'https://gw.example.com/twilio/stream-status', params);
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

describe('with the Twilio emulator calling the conference', () => {
  it('conference join → signed callback → CreateStream with token → signed /media → audio; admin end → conference-end', async () => {
    const sink = collectingSinkFactory();
    const stack = await startTwilioStack({ STREAM_TOKEN_REQUIRED: 'true', ADMIN_TOKEN: ADMIN }, [sink], { sim: { speed: 10 } });
    gw = stack;
    const { sim, publicUrl, http } = stack;
    const { accountSid, authToken } = sim;
    const ended: ConferenceEndEvent[] = [];
    stack.gw.bus.on('conference-end', (e) => ended.push(e));

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
      expect(st.url).toBe(`${publicUrl.replace(/^http:/, 'ws:')}/media`);
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

    const res = await fetch(`${http}/v1/conferences/${conf.sid}/end`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ conferenceSid: conf.sid, result: 'ended', status: 'completed' });
    await sim.waitForConferenceStatus(conf.sid, 'completed');
    await waitFor(() => ended.length === 1, 5000, 'conference-end callback');
    expect(ended[0]).toMatchObject({ conferenceSid: conf.sid, accountSid, reason: 'conference-ended-via-api' });
    await waitFor(() => sink.streams.every((c) => c.closed !== null), 5000, 'streams closed');
    expect(await metricValue(http, 'streamgate_protocol_errors_total', { reason: 'webhook_signature_invalid' })).toBe(0);
    expect(await metricValue(http, 'streamgate_upgrade_rejected_total', { reason: 'signature_invalid' })).toBe(0);
    expect(await metricValue(http, 'streamgate_stream_callbacks_total', { event: 'stream-started' })).toBe(2);
  });
});
