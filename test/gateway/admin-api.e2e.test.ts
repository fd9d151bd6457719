import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RequestLogEntry, StreamFaults } from '../../src/emulator/index.js';
import { isLoopback } from '../../src/gateway/control/admin-routes.js';
import { FieldError } from '../../src/gateway/control/route-errors.js';
import { publicUrlAs } from '../../src/gateway/control/stream-starter.js';
import { createStreamToken, deriveStreamTokenSecret } from '../../src/twilio/stream-token.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { newSid } from '../../src/twilio/sids.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { metricValue, startTwilioGateway, startTwilioStack, waitFor, type TwilioStack, type TwilioTestGateway, type TwilioTestOptions } from '../helpers/gateway.js';
import { connected, ids, media, start, stop, tone } from '../helpers/messages.js';

const ADMIN = 'admin-token-for-tests-0123456789';
/** Holds an emulator stream between `connected` and `start`: the gateway lists it as pending. */
const HELD: StreamFaults = { startDelayMs: 60_000 };

let gw: TwilioTestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** The gateway with the emulator as its Twilio; `sim.requests()` is what Twilio was asked. */
async function setup(env: Record<string, string> = {}, opts: TwilioTestOptions = {}): Promise<TwilioStack> {
  const stack = await startTwilioStack({ ADMIN_TOKEN: ADMIN, ...env }, [], opts);
  gw = stack;
  return stack;
}

/** A request's form parameter (the first, when repeated). */
function form(req: RequestLogEntry, name: string): string | undefined {
  const v = req.params[name];
  return Array.isArray(v) ? v[0] : v;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function call(method: string, path: string, opts: { body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? ADMIN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(gw!.http + path, { method, headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

describe('POST /v1/calls/{CallSid}/streams', () => {
  it('calls CreateStream with the media URL, the status callback, the per-call token and the conference; the stream it asked for is admitted', async () => {
    const { sim, publicUrl } = await setup();
    const callSid = (await sim.createCall()).sid;
    const conferenceSid = newSid('conference');
    const res = await call('POST', `/v1/calls/${callSid}/streams`, {
      body: { track: 'both_tracks', name: 'rec-1', conferenceSid, parameters: { tenant: 'acme' } },
    });
    expect(res.status).toBe(201);
    const requests = sim.requests();
    expect(requests).toHaveLength(1);
    const req = requests[0]!;
    expect(req).toMatchObject({ method: 'POST', operation: 'CreateStream', status: 200, authUser: sim.accountSid });
    expect(req.path).toBe(`/2010-04-01/Accounts/${sim.accountSid}/Calls/${callSid}/Streams.json`);
    expect(form(req, 'Url')).toBe(`${publicUrl.replace(/^http:/, 'ws:')}/media`);
    expect(form(req, 'StatusCallback')).toBe(`${publicUrl}/twilio/stream-status`);
    expect(form(req, 'StatusCallbackMethod')).toBe('POST');
    expect(form(req, 'Track')).toBe('both_tracks');
    expect(form(req, 'Name')).toBe('rec-1');
    const expectedToken = createStreamToken(deriveStreamTokenSecret(sim.authToken), callSid, conferenceSid);
    expect([form(req, 'Parameter1.Name'), form(req, 'Parameter1.Value')]).toEqual(['sgToken', expectedToken]);
    expect([form(req, 'Parameter2.Name'), form(req, 'Parameter2.Value')]).toEqual(['conferenceSid', conferenceSid]);
    expect([form(req, 'Parameter3.Name'), form(req, 'Parameter3.Value')]).toEqual(['tenant', 'acme']);
    expect(req.params).not.toHaveProperty('Parameter4.Name');
    const streamSid = sim.streams()[0]!.sid;
    expect(res.body).toMatchObject({ streamSid, callSid, name: 'rec-1', conferenceSid, track: 'both_tracks', status: 'requested' });
    expect(JSON.stringify(res.body)).not.toContain(expectedToken);
    expect(await metricValue(gw!.http, 'streamgate_twilio_requests_total', { operation: 'CreateStream', status: '200' })).toBe(1);
    // Twilio dials back with those parameters, and the gateway admits the stream with its conference.
    await waitFor(async () => ((await call('GET', '/v1/streams')).body.streams as { state: string }[])[0]?.state === 'streaming', 10_000, 'the stream admitted');
    expect((await call('GET', '/v1/streams')).body.streams).toMatchObject([{ streamSid, callSid, conferenceSid, tracks: ['inbound', 'outbound'], name: 'rec-1', origin: 'admin' }]);
    // The token is a secret: it never reaches a log line.
    expect(gw!.logs.join('')).not.toContain(expectedToken);
  });

  it('gives Twilio the wss:// form of an https:// PUBLIC_URL (Twilio dials wss only)', () => {
    expect(publicUrlAs('https://gw.example.com/', 'ws')).toBe('wss://gw.example.com');
    expect(publicUrlAs('wss://gw.example.com/base/', 'http')).toBe('https://gw.example.com/base');
    expect(publicUrlAs('http://127.0.0.1:8080', 'ws')).toBe('ws://127.0.0.1:8080');
  });

  it('treats an empty POST as all defaults: token bound to the call alone, no conference parameter', async () => {
    const { sim } = await setup();
    const callSid = (await sim.createCall({ streamFaults: HELD })).sid;
    const res = await fetch(`${gw!.http}/v1/calls/${callSid}/streams`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(201);
    const req = sim.requests()[0]!;
    expect(req.params).not.toHaveProperty('Track');
    expect(req.params).not.toHaveProperty('Name');
    expect(form(req, 'Parameter1.Value')).toBe(createStreamToken(deriveStreamTokenSecret(sim.authToken), callSid));
    expect(req.params).not.toHaveProperty('Parameter2.Name');
    expect(sim.streams()[0]).toMatchObject({ callSid, track: 'inbound_track', name: null });
  });

  it.each([
    ['a CallSid that is not a call SID', `/v1/calls/CA123/streams`, { track: 'inbound_track' }, 'CallSid'],
    ['an unknown track', null, { track: 'inbound' }, 'track'],
    ['a conference SID of the wrong kind', null, { conferenceSid: newSid('call') }, 'conferenceSid'],
    ['an unknown body field', null, { trak: 'inbound_track' }, 'trak'],
    ['a parameter value that is not a string', null, { parameters: { tenant: { nested: true } } }, 'parameters.tenant'],
    ['a reserved parameter', null, { parameters: { sgToken: 'forged' } }, 'parameters.sgToken'],
    ['an empty name', null, { name: '' }, 'name'],
  ])('answers 400 naming the field for %s, and never calls Twilio', async (_what, path, body, field) => {
    // The admin API answers only after Twilio did: a request made would be in the log by then.
    const { sim } = await setup();
    const res = await call('POST', path ?? `/v1/calls/${newSid('call')}/streams`, { body });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', field });
    expect(typeof res.body.message).toBe('string');
    expect(sim.requests()).toHaveLength(0);
  });

  it('answers 400 for a body that is not JSON', async () => {
    const { sim } = await setup();
    const res = await call('POST', `/v1/calls/${newSid('call')}/streams`, { raw: '{"track":' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', field: 'body' });
    expect(sim.requests()).toHaveLength(0);
  });

  it('answers 502 with Twilio code and message when Twilio refuses (a call not yet answered: 21220)', async () => {
    const { sim } = await setup();
    const ringing = await sim.createCall({ status: 'ringing' });
    const res = await call('POST', `/v1/calls/${ringing.sid}/streams`, { body: {} });
    expect(res.status).toBe(502);
    expect(res.body).toEqual({ error: 'twilio_error', twilioCode: 21220, message: expect.stringMatching(/not in-progress/), status: 400 });
    expect(sim.requests()).toMatchObject([{ operation: 'CreateStream', status: 400, twilioCode: 21220 }]);
  });

  it.each([500, 503] as const)('answers 502 with Twilio\'s code when Twilio answers %i, without retrying a CreateStream', async (status) => {
    const { sim } = await setup();
    const callSid = (await sim.createCall()).sid;
    sim.faults.addRestFault({ operation: 'CreateStream', status, next: 1 });
    const res = await call('POST', `/v1/calls/${callSid}/streams`, { body: {} });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ error: 'twilio_error', twilioCode: 20000 + status, status });
    expect(sim.requests()).toMatchObject([{ operation: 'CreateStream', status, injected: true }]);
    expect(sim.streams()).toEqual([]);
  });

  it('retries a CreateStream Twilio answered 429 (Twilio did not process it) and answers 201', async () => {
    const { sim } = await setup();
    const callSid = (await sim.createCall({ streamFaults: HELD })).sid;
    sim.faults.addRestFault({ operation: 'CreateStream', status: 429, next: 1 });
    const res = await call('POST', `/v1/calls/${callSid}/streams`, { body: {} });
    expect(res.status).toBe(201);
    expect(sim.requests().map((r) => r.status)).toEqual([429, 200]);
    expect(sim.streams()).toHaveLength(1);
  });

  it('answers 502 when Twilio cannot be reached', async () => {
    const { sim } = await setup();
    await sim.close();
    const res = await call('POST', `/v1/calls/${newSid('call')}/streams`, { body: {} });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ error: 'twilio_unreachable', twilioCode: null });
  });

  it('answers 503 with a clear message when no Twilio credentials are configured', async () => {
    gw = await startTwilioGateway({ ADMIN_TOKEN: ADMIN });
    for (const [method, path] of [
      ['POST', `/v1/calls/${newSid('call')}/streams`],
      ['DELETE', `/v1/calls/${newSid('call')}/streams/rec-1`],
      ['POST', `/v1/conferences/${newSid('conference')}/end`],
    ] as const) {
      const res = await call(method, path, method === 'POST' && path.endsWith('streams') ? { body: {} } : {});
      expect(res.status, `${method} ${path}`).toBe(503);
      expect(res.body.error).toBe('twilio_not_configured');
      expect(res.body.message).toMatch(/TWILIO_ACCOUNT_SID/);
    }
  });
});

describe('DELETE /v1/calls/{CallSid}/streams/{nameOrSid}', () => {
  it('stops a stream by name with UpdateStream Status=stopped', async () => {
    const { sim } = await setup();
    const callSid = (await sim.createCall({ streamFaults: HELD })).sid;
    await call('POST', `/v1/calls/${callSid}/streams`, { body: { name: 'rec 1/a' } });
    expect((await call('GET', '/v1/streams')).body.streams).toMatchObject([{ name: 'rec 1/a', state: 'pending' }]);
    const res = await call('DELETE', `/v1/calls/${callSid}/streams/${encodeURIComponent('rec 1/a')}`);
    expect(res.status).toBe(200);
    const stop = sim.requests()[1]!;
    expect(stop).toMatchObject({ operation: 'UpdateStream', status: 200, params: { Status: 'stopped' } });
    expect(stop.path).toBe(`/2010-04-01/Accounts/${sim.accountSid}/Calls/${callSid}/Streams/rec%201%2Fa.json`);
    const stream = sim.streams()[0]!;
    expect(stream).toMatchObject({ status: 'stopped', endReason: 'api' });
    expect(res.body).toEqual({ streamSid: stream.sid, callSid, name: 'rec 1/a', status: 'stopped' });
    // A stopped stream is no longer listed.
    expect((await call('GET', '/v1/streams')).body.streams).toEqual([]);
  });

  it('stops a stream by SID, and answers 404 (Twilio 20404) for one Twilio does not know', async () => {
    const { sim } = await setup();
    const callSid = (await sim.createCall({ streamFaults: HELD })).sid;
    const created = await call('POST', `/v1/calls/${callSid}/streams`, { body: {} });
    const sid = created.body.streamSid as string;
    expect((await call('DELETE', `/v1/calls/${callSid}/streams/${sid}`)).status).toBe(200);
    expect(sim.stream(sid)!.status).toBe('stopped');
    const missing = await call('DELETE', `/v1/calls/${callSid}/streams/nope`);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: 'not_found', twilioCode: 20404, status: 404 });
  });

  it('validates the CallSid', async () => {
    const { sim } = await setup();
    const res = await call('DELETE', `/v1/calls/${newSid('conference')}/streams/x`);
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('CallSid');
    expect(sim.requests()).toHaveLength(0);
  });
});

describe('POST /v1/conferences/{ConferenceSid}/end', () => {
  it('ends the conference with UpdateConference Status=completed', async () => {
    const { sim } = await setup();
    const conferenceSid = (await sim.createConference({ participants: [{}, {}] })).sid;
    const res = await call('POST', `/v1/conferences/${conferenceSid}/end`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ conferenceSid, result: 'ended', status: 'completed' });
    const [req] = sim.requests();
    expect(req!.path).toBe(`/2010-04-01/Accounts/${sim.accountSid}/Conferences/${conferenceSid}.json`);
    expect(req!.params).toEqual({ Status: 'completed' });
    expect(sim.conference(conferenceSid)).toMatchObject({ status: 'completed', reasonConferenceEnded: 'conference-ended-via-api' });
    expect(await metricValue(gw!.http, 'streamgate_twilio_requests_total', { operation: 'UpdateConference', status: '200' })).toBe(1);
  });

  it('uses an injected endConference (the conditions engine ends a conference once)', async () => {
    const done = new Map<string, Promise<unknown>>();
    const sources: string[] = [];
    const { sim } = await setup({}, {
      endConference: (rest) => async (sid, source) => {
        sources.push(source);
        if (done.has(sid)) return { conferenceSid: sid, result: 'already-ended', status: 'completed' };
        const p = rest(sid, source);
        done.set(sid, p);
        await p;
        return { conferenceSid: sid, result: 'ended', status: 'completed' };
      },
    });
    const conferenceSid = (await sim.createConference({ participants: [{}] })).sid;
    expect((await call('POST', `/v1/conferences/${conferenceSid}/end`)).body.result).toBe('ended');
    expect((await call('POST', `/v1/conferences/${conferenceSid}/end`)).body.result).toBe('already-ended');
    expect(sim.requests()).toMatchObject([{ operation: 'UpdateConference', status: 200 }]);
    expect(sources).toEqual(['admin', 'admin']);
  });

  it('answers 404 (Twilio 20404) for an unknown conference and 400 for a bad SID', async () => {
    const { sim } = await setup();
    const unknown = newSid('conference');
    const res = await call('POST', `/v1/conferences/${unknown}/end`);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: 'not_found', twilioCode: 20404, status: 404, message: `The requested resource /2010-04-01/Accounts/${sim.accountSid}/Conferences/${unknown}.json was not found` });
    const bad = await call('POST', '/v1/conferences/CFxyz/end');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: 'invalid_request', field: 'ConferenceSid' });
    expect(sim.requests()).toHaveLength(1);
  });
});

describe('GET /v1/streams', () => {
  it('lists live streams with SIDs, conference, tracks, start time and frames so far, and pending ones', async () => {
    const sink = collectingSinkFactory();
    const stack = await startTwilioStack({ ADMIN_TOKEN: ADMIN }, [sink]);
    gw = stack;
    const { sim } = stack;
    // The test plays Twilio for this one, to send exactly these frames; the signature is over the public URL.
    // Our account: a start for another one is refused (stream-binding.e2e.test.ts).
    const s = { ...ids(), accountSid: sim.accountSid };
    const conferenceSid = newSid('conference');
    const token = createStreamToken(deriveStreamTokenSecret(sim.authToken), s.callSid, conferenceSid);
    const ws = new WebSocket(gw.ws, { headers: { 'x-twilio-signature': computeSignature(sim.authToken, `${stack.publicUrl.replace(/^http:/, 'ws:')}/media`) } });
    await new Promise((r) => ws.on('open', r));
    ws.send(connected());
    ws.send(start(s, { tracks: ['inbound', 'outbound'], customParameters: { sgToken: token, conferenceSid } }));
    for (let i = 0; i < 7; i++) ws.send(media(s, i + 2, i + 1, 100 + 20 * i, tone(i)));
    await waitFor(() => sink.streams[0]?.frames.length === 7);

    const pendingCall = (await sim.createCall({ streamFaults: HELD })).sid;
    await call('POST', `/v1/calls/${pendingCall}/streams`, { body: { name: 'later', track: 'outbound_track' } });
    const pendingSid = sim.streams()[0]!.sid;

    const before = Date.now();
    const res = await call('GET', '/v1/streams');
    expect(res.status).toBe(200);
    const streams = res.body.streams as Record<string, unknown>[];
    expect(streams).toHaveLength(2);
    expect(streams[0]).toMatchObject({
      streamSid: s.streamSid,
      callSid: s.callSid,
      accountSid: s.accountSid,
      conferenceSid,
      tracks: ['inbound', 'outbound'],
      frames: 7,
      state: 'streaming',
    });
    const startedAt = Date.parse(streams[0]!.startedAt as string);
    expect(startedAt).toBeGreaterThan(before - 10_000);
    expect(startedAt).toBeLessThanOrEqual(before);
    expect(streams[1]).toMatchObject({ streamSid: pendingSid, callSid: pendingCall, accountSid: sim.accountSid, name: 'later', tracks: ['outbound'], frames: 0, state: 'pending', startedAt: null });
    expect(JSON.stringify(res.body)).not.toContain(token);

    ws.send(stop(s, 9));
    await waitFor(() => sink.streams[0]?.closed === 'stopped');
    const after = (await call('GET', '/v1/streams')).body.streams as Record<string, unknown>[];
    expect(after.map((x) => x.streamSid)).toEqual([pendingSid]);
    ws.close();
  });
});

describe('/v1 auth', () => {
  it('answers 401 without a token and with a wrong one, 200 with the right one (any case of "Bearer")', async () => {
    await setup();
    const none = await call('GET', '/v1/streams', { token: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.body.error).toBe('unauthorized');
    expect((await call('GET', '/v1/streams', { token: ADMIN + 'x' })).status).toBe(401);
    expect((await call('GET', '/v1/streams', { token: ADMIN.slice(0, -1) })).status).toBe(401);
    expect((await call('GET', '/v1/streams', { token: null, headers: { authorization: `Basic ${ADMIN}` } })).status).toBe(401);
    expect((await call('GET', '/v1/streams', { token: null, headers: { authorization: `bearer ${ADMIN}` } })).status).toBe(200);
    expect((await call('GET', '/v1/streams')).status).toBe(200);
  });

  it('checks the token before validating or calling Twilio', async () => {
    const { sim } = await setup();
    const conferenceSid = (await sim.createConference({ participants: [{}] })).sid;
    expect((await call('POST', '/v1/calls/bad/streams', { token: 'wrong', body: { track: 'x' } })).status).toBe(401);
    expect((await call('POST', `/v1/conferences/${conferenceSid}/end`, { token: null })).status).toBe(401);
    expect(sim.requests()).toHaveLength(0);
    expect(sim.conference(conferenceSid)!.status).not.toBe('completed');
  });

  it('without ADMIN_TOKEN answers loopback clients only, and not through a proxy', async () => {
    gw = await startTwilioGateway({});
    expect((await call('GET', '/v1/streams', { token: null })).status).toBe(200);
    const proxied = await call('GET', '/v1/streams', { token: null, headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(proxied.status).toBe(403);
    expect(proxied.body.message).toMatch(/ADMIN_TOKEN/);
    // A remote peer, through fastify's own request pipeline.
    const remote = await gw.gw.app.inject({ method: 'GET', url: '/v1/streams', remoteAddress: '203.0.113.7' });
    expect(remote.statusCode).toBe(403);
    const local = await gw.gw.app.inject({ method: 'GET', url: '/v1/streams', remoteAddress: '::ffff:127.0.0.1' });
    expect(local.statusCode).toBe(200);
  });

  it('puts extension routes (e.g. /v1/transcripts) behind the same auth and error handling', async () => {
    gw = await startTwilioGateway({ ADMIN_TOKEN: ADMIN }, [], {
      adminExtensions: [
        (scope) => {
          scope.get('/things', async () => ({ ok: true }));
          scope.get('/broken', async () => {
            throw new FieldError('callSid', 'callSid must match ^CA[0-9a-fA-F]{32}$');
          });
        },
      ],
    });
    expect((await call('GET', '/v1/things', { token: null })).status).toBe(401);
    const ok = await call('GET', '/v1/things');
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ ok: true });
    expect(ok.headers.get('cache-control')).toBe('no-store');
    const bad = await call('GET', '/v1/broken');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: 'invalid_request', field: 'callSid' });
  });

  it('recognises loopback addresses', () => {
    expect(['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', '::2', '1127.0.0.1', undefined].map(isLoopback)).toEqual([false, false, false, false, false, false]);
  });
});

describe('security headers', () => {
  it('sets nosniff, DENY and no-referrer everywhere, and no-store on /v1 (errors included)', async () => {
    await setup();
    for (const res of [await fetch(`${gw!.http}/v1/streams`, { headers: { authorization: `Bearer ${ADMIN}` } }), await fetch(`${gw!.http}/v1/streams`)]) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
    const health = await fetch(`${gw!.http}/healthz`);
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
    expect(health.headers.get('x-frame-options')).toBe('DENY');
    expect(health.headers.get('cache-control')).toBeNull();
  });
});
