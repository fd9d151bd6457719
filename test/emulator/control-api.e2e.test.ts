import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CallSnapshot, ConferenceSnapshot, Sim } from '../../src/emulator/index.js';
import { closeSimBench, HELLO_WORLD, startSimBench } from './helpers/fixture.js';
import type { CallbackReceiver, StreamReceiver } from './helpers/receivers.js';
import { restCaller } from './helpers/rest.js';
import { createStream, media } from './helpers/streams.js';

describe('control API (/sim/)', () => {
  let sim: Sim;
  let rx: StreamReceiver;
  let cb: CallbackReceiver;

  async function control(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(sim.url + path, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } } : {}),
    });
    return { status: res.status, body: await res.json() };
  }

  beforeEach(async () => ({ sim, rx, cb } = await startSimBench(0)));
  afterEach(() => closeSimBench({ sim, rx, cb }));

  it('creates a conference with participants, ends it, and shows state', async () => {
    const created = await control('POST', '/sim/conferences', {
      friendlyName: 'room-9',
      statusCallback: `${cb.origin}/conf`,
      statusCallbackEvent: 'start end join leave',
      participants: [{ audio: HELLO_WORLD, label: 'caller' }, { audio: { type: 'tone', hz: 440, ms: 500 }, endConferenceOnExit: true }],
    });
    expect(created.status).toBe(201);
    const conf = created.body as ConferenceSnapshot;
    expect(conf).toMatchObject({ friendlyName: 'room-9', status: 'in-progress', statusCallbackEvents: ['start', 'end', 'join', 'leave'] });
    expect(conf.participants.map((p) => p.label)).toEqual(['caller', null]);

    const got = await control('GET', `/sim/conferences/${conf.sid}`);
    expect(got.body).toMatchObject({ sid: conf.sid, status: 'in-progress' });
    const ended = await control('POST', `/sim/conferences/${conf.sid}/end`);
    expect(ended.body).toMatchObject({ status: 'completed', reasonConferenceEnded: 'conference-ended-via-api' });
    const state = (await control('GET', '/sim/state')).body as { calls: CallSnapshot[]; conferences: unknown[] };
    expect(state.calls.map((c) => c.status)).toEqual(['completed', 'completed']);
    expect(state.conferences).toHaveLength(1);
    // Not a REST request: the request log stays empty.
    expect((await control('GET', '/sim/requests')).body).toEqual([]);
  });

  it('creates, answers and hangs up calls', async () => {
    const call = (await control('POST', '/sim/calls', { status: 'ringing', from: '+15551230000' })).body as CallSnapshot;
    expect(call).toMatchObject({ status: 'ringing', from: '+15551230000' });
    expect(((await control('POST', `/sim/calls/${call.sid}/answer`)).body as CallSnapshot).status).toBe('in-progress');
    expect(((await control('POST', `/sim/calls/${call.sid}/hangup`)).body as CallSnapshot).status).toBe('completed');
    expect((await control('GET', `/sim/calls/${call.sid}`)).body).toMatchObject({ status: 'completed' });
    expect((await control('GET', '/sim/calls')).body).toHaveLength(1);
  });

  it('adds a participant to a running conference', async () => {
    const conf = (await control('POST', '/sim/conferences', { participants: [{}] })).body as ConferenceSnapshot;
    expect(conf.status).toBe('init');
    const p = await control('POST', `/sim/conferences/${conf.sid}/participants`, { muted: true });
    expect(p.status).toBe(201);
    expect(p.body).toMatchObject({ conferenceSid: conf.sid, muted: true, status: 'connected' });
    expect(sim.conference(conf.sid)!.status).toBe('in-progress');
  });

  it('configures faults, lists requests and callbacks', async () => {
    const faults = await control('POST', '/sim/faults', {
      streams: [{ faults: { drop: { frames: [1] } } }],
      rest: [{ operation: 'CreateStream', latencyMs: 1 }],
    });
    expect(faults.body).toEqual({ streams: [{ faults: { drop: { frames: [1] } } }], rest: [{ operation: 'CreateStream', latencyMs: 1 }] });
    const call = (await control('POST', '/sim/calls', { audio: { type: 'tone', hz: 440, ms: 100 } })).body as CallSnapshot;
    await createStream(sim, call.sid, { Url: `${rx.origin}/m`, StatusCallback: `${cb.origin}/s` });
    const conn = await rx.connection();
    await conn.closed;
    expect(media(conn).map((m) => m.json.media!.chunk)).toEqual(['2', '3', '4', '5']);
    const requests = (await control('GET', '/sim/requests?operation=CreateStream')).body as { status: number }[];
    expect(requests.map((r) => r.status)).toEqual([200]);
    await sim.callbacksIdle();
    const callbacks = (await control('GET', '/sim/callbacks?kind=stream')).body as { event: string }[];
    expect(callbacks.map((c) => c.event)).toEqual(['stream-started', 'stream-stopped']);
    const streams = (await control('GET', `/sim/streams?callSid=${call.sid}`)).body as { sid: string; endReason: string }[];
    expect(streams).toHaveLength(1);
    expect((await control('GET', `/sim/streams/${streams[0]!.sid}`)).body).toMatchObject({ endReason: 'audio-ended', stopSent: true });
    expect((await control('DELETE', '/sim/faults')).body).toEqual({ streams: [], rest: [] });
    expect((await control('DELETE', '/sim/requests')).status).toBe(200);
    expect((await control('GET', '/sim/requests')).body).toEqual([]);
  });

  it('registers API keys usable on the REST API', async () => {
    const key = (await control('POST', '/sim/api-keys', {})).body as { sid: string; secret: string };
    const call = await sim.createCall();
    const r = await restCaller(sim.url, key.sid, key.secret).get(`/2010-04-01/Accounts/${sim.accountSid}/Calls/${call.sid}.json`);
    expect(r.status).toBe(200);
    expect(sim.requests()[0]!.authUser).toBe(key.sid);
  });

  it('answers 400 to bad input and 404 to unknown things', async () => {
    expect((await control('POST', '/sim/calls', { audoi: 'x.wav' })).status).toBe(400);
    expect((await control('POST', '/sim/calls', { audio: { type: 'nope' } })).status).toBe(400);
    const missing = await control('POST', '/sim/calls', { audio: '/no/such/file.wav' });
    expect(missing).toEqual({ status: 400, body: { error: 'cannot read audio file /no/such/file.wav: ENOENT' } });
    expect((await control('POST', '/sim/faults', { streams: [{ faults: { drop: { rate: 3 } } }] })).status).toBe(400);
    expect((await control('POST', '/sim/conferences', { statusCallback: 'not a url' })).status).toBe(400);
    const bad = await fetch(`${sim.url}/sim/calls`, { method: 'POST', body: '{' });
    expect(bad.status).toBe(400);
    expect((await control('GET', '/sim/calls/CA00000000000000000000000000000000')).status).toBe(404);
    expect((await control('POST', '/sim/calls/CA00000000000000000000000000000000/hangup')).status).toBe(404);
    expect((await control('GET', '/sim/nothing')).status).toBe(404);
    expect((await control('DELETE', '/sim/state')).status).toBe(405);
  });

  it('lists every control route at GET /sim/, and a wrong method names the right one', async () => {
    const index = await control('GET', '/sim/');
    expect(index.status).toBe(200);
    const routes = (index.body as { routes: string[] }).routes;
    expect(routes).toContain('GET /sim/state: calls, conferences and streams, as JSON');
    expect(routes.some((r) => r.startsWith('POST /sim/calls/{CallSid}/digits: '))).toBe(true);
    expect(routes.length).toBeGreaterThanOrEqual(24);
    const wrong = await control('PUT', '/sim/calls');
    expect(wrong.status).toBe(405);
    expect((wrong.body as { error: string }).error).toBe('PUT is not allowed on /sim/calls; use GET /sim/calls or POST /sim/calls');
    const rest = await restCaller(sim.url, sim.accountSid, sim.authToken).get(`/2010-04-01/Accounts/${sim.accountSid}/Calls/CA${'0'.repeat(32)}/Streams.json`);
    expect(rest.status).toBe(405);
    expect(rest.body.code).toBe(20004);
    expect(String(rest.body.message)).toContain('accepts POST (CreateStream)');
  });
});
