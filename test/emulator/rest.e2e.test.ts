import twilio from 'twilio';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSim, type Sim } from '../../src/emulator/index.js';
import { newSid } from '../../src/twilio/sids.js';
import { credentials } from './helpers/fixture.js';
import { startStreamReceiver, type StreamReceiver } from './helpers/receivers.js';
import { restCaller, type RestCaller, type RestResult } from './helpers/rest.js';
import { loadValidators } from './helpers/schemas.js';
import { waitForMessages } from './helpers/streams.js';

const schemas = loadValidators();

function expectValid(operationId: string, r: RestResult): void {
  expect(r.status, JSON.stringify(r.body)).toBe(schemas.statusOf(operationId));
  const validate = schemas.validator(operationId);
  expect(validate(r.body), JSON.stringify(validate.errors)).toBe(true);
}

function expectTwilioError(r: RestResult, status: number, code: number): void {
  expect(r.status).toBe(status);
  expect(r.body).toMatchObject({ code, status, more_info: `https://www.twilio.com/docs/errors/${code}` });
  expect(typeof r.body.message).toBe('string');
}

describe('Twilio REST', () => {
  let sim: Sim;
  let rx: StreamReceiver;
  let rest: RestCaller;
  let base: string;

  beforeEach(async () => {
    sim = await startSim({ ...credentials(), speed: 0 });
    rx = await startStreamReceiver();
    rest = restCaller(sim.url, sim.accountSid, sim.authToken);
    base = `/2010-04-01/Accounts/${sim.accountSid}`;
  });
  afterEach(async () => {
    await sim.close();
    await rx.close();
  });

  it("checks with schemas that accept every example of the spec's own", () => {
    for (const op of ['CreateStream', 'UpdateStream', 'FetchConference', 'UpdateConference', 'CreateParticipant', 'ListParticipant']) {
      const validate = schemas.validator(op);
      const examples = schemas.exampleBodies(op);
      expect(examples.length).toBeGreaterThan(0);
      for (const body of examples) expect(validate(body), `${op}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it('answers every operation with a body valid against the OpenAPI schema', async () => {
    const conf = await sim.createConference({ friendlyName: 'room-1', participants: [{ label: 'agent' }, {}] });
    const [a, b] = conf.participants;
    const created = await rest.post(`${base}/Calls/${a!.callSid}/Streams.json`, { Url: `${rx.origin}/media` });
    expectValid('CreateStream', created);
    expect(created.body).toMatchObject({ account_sid: sim.accountSid, call_sid: a!.callSid, name: null, status: 'in-progress' });
    expect(created.body.uri).toBe(`${base}/Calls/${a!.callSid}/Streams/${created.body.sid as string}.json`);
    const named = await rest.post(`${base}/Calls/${b!.callSid}/Streams.json`, { Url: `${rx.origin}/media`, Name: 'rec', Track: 'both_tracks' });
    expectValid('CreateStream', named);
    expect(named.body.name).toBe('rec');

    expectValid('UpdateStream', await rest.post(`${base}/Calls/${a!.callSid}/Streams/${created.body.sid as string}.json`, { Status: 'stopped' }));
    const byName = await rest.post(`${base}/Calls/${b!.callSid}/Streams/rec.json`, { Status: 'stopped' });
    expectValid('UpdateStream', byName);
    expect(byName.body.status).toBe('stopped');

    const fetched = await rest.get(`${base}/Conferences/${conf.sid}.json`);
    expectValid('FetchConference', fetched);
    expect(fetched.body).toMatchObject({ status: 'in-progress', friendly_name: 'room-1', reason_conference_ended: null, region: 'us1' });

    const list = await rest.get(`${base}/Conferences/${conf.sid}/Participants.json`);
    expectValid('ListParticipant', list);
    expect((list.body.participants as unknown[]).length).toBe(2);
    expect(list.body).toMatchObject({ page: 0, page_size: 50, start: 0, end: 1, next_page_uri: null });

    const joined = await rest.post(`${base}/Conferences/${conf.sid}/Participants.json`, { From: '+15005550006', To: '+15005550009', Label: 'late' });
    expectValid('CreateParticipant', joined);
    expect(joined.body.status).toBe('queued');
    await sim.waitUntil(() => sim.conference(conf.sid)!.participants.length === 3);

    const ended = await rest.post(`${base}/Conferences/${conf.sid}.json`, { Status: 'completed' });
    expectValid('UpdateConference', ended);
    expect(ended.body).toMatchObject({ status: 'completed', reason_conference_ended: 'conference-ended-via-api', call_sid_ending_conference: null });
    const after = await rest.get(`${base}/Conferences/${conf.sid}/Participants.json`);
    expectValid('ListParticipant', after);
    expect(after.body.participants).toEqual([]);
  });

  it('writes RFC 2822 dates with a two-digit day and +0000', async () => {
    const call = await sim.createCall();
    const r = await rest.get(`${base}/Calls/${call.sid}.json`);
    expect(r.status).toBe(200);
    expect(r.body.date_created).toMatch(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    expect(r.body).toMatchObject({ sid: call.sid, status: 'in-progress', api_version: '2010-04-01', end_time: null });
  });

  it('lists conferences and calls with Twilio paging and filters', async () => {
    await sim.createConference({ friendlyName: 'a' });
    await sim.createConference({ friendlyName: 'b' });
    const all = await rest.get(`${base}/Conferences.json?PageSize=1`);
    expect(all.status).toBe(200);
    expect((all.body.conferences as unknown[]).length).toBe(1);
    expect(all.body.next_page_uri).toBe(`${base}/Conferences.json?PageSize=1&Page=1`);
    const byName = await rest.get(`${base}/Conferences.json?FriendlyName=a`);
    expect((byName.body.conferences as { friendly_name: string }[]).map((c) => c.friendly_name)).toEqual(['a']);
    const inProgress = await rest.get(`${base}/Conferences.json?Status=in-progress`);
    expect(inProgress.body.conferences).toEqual([]);
    await sim.createCall();
    const calls = await rest.get(`${base}/Calls.json`);
    expect((calls.body.calls as unknown[]).length).toBe(1);
  });

  it('answers 401/20003 to missing or wrong credentials, and accepts a registered API key', async () => {
    const call = await sim.createCall();
    const path = `${base}/Calls/${call.sid}.json`;
    const none = await fetch(sim.url + path);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect(await none.json()).toMatchObject({ code: 20003, message: 'Authenticate', status: 401 });
    expectTwilioError(await restCaller(sim.url, sim.accountSid, 'wrong').get(path), 401, 20003);

    const key = sim.addApiKey();
    expect(key.sid).toMatch(/^SK[0-9a-f]{32}$/);
    expect((await restCaller(sim.url, key.sid, key.secret).get(path)).status).toBe(200);
    expectTwilioError(await restCaller(sim.url, key.sid, 'nope').get(path), 401, 20003);
    expectTwilioError(await restCaller(sim.url, newSid('apiKey'), key.secret).get(path), 401, 20003);
  });

  it('answers 404/20404 for another account, unknown SIDs and unknown paths', async () => {
    const call = await sim.createCall();
    expectTwilioError(await rest.get(`/2010-04-01/Accounts/${newSid('account')}/Calls/${call.sid}.json`), 404, 20404);
    expectTwilioError(await rest.get(`${base}/Calls/${newSid('call')}.json`), 404, 20404);
    expectTwilioError(await rest.get(`${base}/Conferences/${newSid('conference')}.json`), 404, 20404);
    expectTwilioError(await rest.post(`${base}/Conferences/${newSid('conference')}.json`, { Status: 'completed' }), 404, 20404);
    expectTwilioError(await rest.post(`${base}/Calls/${newSid('call')}/Streams.json`, { Url: `${rx.origin}/m` }), 404, 20404);
    expectTwilioError(await rest.post(`${base}/Calls/${call.sid}/Streams/${newSid('stream')}.json`, { Status: 'stopped' }), 404, 20404);
    expectTwilioError(await rest.post(`${base}/Calls/${call.sid}/Streams/no-such-name.json`, { Status: 'stopped' }), 404, 20404);
    const missing = await rest.get(`${base}/Recordings.json`);
    expectTwilioError(missing, 404, 20404);
    expect(missing.body.message).toBe(`The requested resource ${base}/Recordings.json was not found`);
  });

  it('answers 404 to stopping a stream that already stopped', async () => {
    const call = await sim.createCall();
    const s = await rest.post(`${base}/Calls/${call.sid}/Streams.json`, { Url: `${rx.origin}/m` });
    const path = `${base}/Calls/${call.sid}/Streams/${s.body.sid as string}.json`;
    expect((await rest.post(path, { Status: 'stopped' })).status).toBe(200);
    expectTwilioError(await rest.post(path, { Status: 'stopped' }), 404, 20404);
  });

  it('answers 400/21220 to CreateStream on a call that is not in progress', async () => {
    const ringing = await sim.createCall({ status: 'ringing' });
    expectTwilioError(await rest.post(`${base}/Calls/${ringing.sid}/Streams.json`, { Url: `${rx.origin}/m` }), 400, 21220);
    sim.answer(ringing.sid);
    expect((await rest.post(`${base}/Calls/${ringing.sid}/Streams.json`, { Url: `${rx.origin}/m` })).status).toBe(200);
    const ended = await sim.createCall();
    sim.hangup(ended.sid);
    expectTwilioError(await rest.post(`${base}/Calls/${ended.sid}/Streams.json`, { Url: `${rx.origin}/m` }), 400, 21220);
  });

  it('allows at most 4 tracks per call (both_tracks counts 2)', async () => {
    const call = await sim.createCall();
    const url = `${rx.origin}/m`;
    const first = await rest.post(`${base}/Calls/${call.sid}/Streams.json`, { Url: url, Track: 'both_tracks' });
    expect(first.status).toBe(200);
    expect((await rest.post(`${base}/Calls/${call.sid}/Streams.json`, { Url: url, Track: 'inbound_track' })).status).toBe(200);
    expect((await rest.post(`${base}/Calls/${call.sid}/Streams.json`, { Url: url, Track: 'outbound_track' })).status).toBe(200);
    expectTwilioError(await rest.post(`${base}/Calls/${call.sid}/Streams.json`, { Url: url }), 400, 21220);
    await rest.post(`${base}/Calls/${call.sid}/Streams/${first.body.sid as string}.json`, { Status: 'stopped' });
    expect((await rest.post(`${base}/Calls/${call.sid}/Streams.json`, { Url: url, Track: 'both_tracks' })).status).toBe(200);
  });

  it('validates CreateStream and UpdateStream parameters', async () => {
    const call = await sim.createCall();
    const path = `${base}/Calls/${call.sid}/Streams.json`;
    expectTwilioError(await rest.post(path, {}), 400, 20001);
    expectTwilioError(await rest.post(path, { Url: 'not a url' }), 400, 21205);
    expectTwilioError(await rest.post(path, { Url: `${rx.origin}/m`, Track: 'inbound' }), 400, 20001);
    expectTwilioError(await rest.post(path, { Url: `${rx.origin}/m`, StatusCallbackMethod: 'PUT' }), 400, 20001);
    const ok = await rest.post(path, { Url: `${rx.origin}/m`, Name: 'x' });
    expectTwilioError(await rest.post(path, { Url: `${rx.origin}/m`, Name: 'x' }), 400, 21220);
    expectTwilioError(await rest.post(`${base}/Calls/${call.sid}/Streams/${ok.body.sid as string}.json`, {}), 400, 20001);
    expectTwilioError(await rest.post(`${base}/Calls/${call.sid}/Streams/${ok.body.sid as string}.json`, { Status: 'paused' }), 400, 20001);
  });

  it('takes Parameter1..Parameter99 as custom parameters and ignores Parameter100', async () => {
    const call = await sim.createCall();
    const params: Record<string, string> = { Url: `${rx.origin}/m` };
    for (let n = 1; n <= 100; n++) {
      params[`Parameter${n}.Name`] = `p${n}`;
      params[`Parameter${n}.Value`] = `v${n}`;
    }
    const r = await rest.post(`${base}/Calls/${call.sid}/Streams.json`, params);
    const conn = await rx.connection();
    await sim.waitForStream({ connected: true });
    await waitForMessages(conn, 1, (m) => m.json.event === 'start');
    const custom = conn.messages[1]!.json.start!.customParameters;
    expect(Object.keys(custom)).toHaveLength(99);
    expect(custom.p99).toBe('v99');
    expect(custom.p100).toBeUndefined();
    expect(sim.stream(r.body.sid as string)!.parameters.p1).toBe('v1');
  });

  it('answers 400/16022 to ending a conference that already completed', async () => {
    const conf = await sim.createConference({ participants: [{}, {}] });
    const path = `${base}/Conferences/${conf.sid}.json`;
    expect((await rest.post(path, { Status: 'completed' })).status).toBe(200);
    expectTwilioError(await rest.post(path, { Status: 'completed' }), 400, 16022);
    expectTwilioError(await rest.post(path, { Status: 'in-progress' }), 400, 20001);
    // Fetching still works and shows the end.
    expect((await rest.get(path)).body.status).toBe('completed');
  });

  it('records AnnounceUrl without ending the conference', async () => {
    const conf = await sim.createConference({ participants: [{}, {}] });
    const r = await rest.post(`${base}/Conferences/${conf.sid}.json`, { AnnounceUrl: 'https://example.com/announce.xml', AnnounceMethod: 'GET' });
    expectValid('UpdateConference', r);
    expect(r.body.status).toBe('in-progress');
    expect(sim.conference(conf.sid)!.announcements).toEqual([{ url: 'https://example.com/announce.xml', method: 'GET' }]);
  });

  it('logs every request with its operation, params and answer', async () => {
    const conf = await sim.createConference({ participants: [{}, {}] });
    await rest.post(`${base}/Conferences/${conf.sid}.json`, { Status: 'completed' });
    await rest.post(`${base}/Conferences/${conf.sid}.json`, { Status: 'completed' });
    await rest.get(`${base}/Conferences/${conf.sid}.json`);
    const updates = sim.requests({ operation: 'UpdateConference' });
    expect(updates).toHaveLength(2);
    expect(updates[0]).toMatchObject({ method: 'POST', params: { Status: 'completed' }, status: 200, twilioCode: null, authUser: sim.accountSid, injected: false });
    expect(updates[1]).toMatchObject({ status: 400, twilioCode: 16022 });
    expect(sim.requests({ operation: 'UpdateConference', status: 200 })).toHaveLength(1);
    expect(sim.requests({ method: 'GET' })).toHaveLength(1);
    expect(Date.parse(updates[0]!.time)).not.toBeNaN();
    sim.clearRequests();
    expect(sim.requests()).toEqual([]);
  });

  it('serves twilio-node: streams.create, stream update, conference fetch and update', async () => {
    const conf = await sim.createConference({ participants: [{}, {}] });
    const callSid = conf.participants[0]!.callSid;
    const client = twilio(sim.accountSid, sim.authToken);
    client.api.baseUrl = sim.url;
    const stream = await client.calls(callSid).streams.create({
      url: `${rx.origin}/media`,
      name: 'node',
      track: 'both_tracks',
      'parameter1.name': 'tenant',
      'parameter1.value': 'acme',
    } as Parameters<ReturnType<typeof client.calls>['streams']['create']>[0]);
    expect(stream.sid).toMatch(/^MZ[0-9a-f]{32}$/);
    expect(stream.dateUpdated).toBeInstanceOf(Date);
    expect(Number.isNaN(stream.dateUpdated.getTime())).toBe(false);
    const conn = await rx.connection();
    await sim.waitForStream({ connected: true });
    await waitForMessages(conn, 1, (m) => m.json.event === 'start');
    expect(conn.messages[1]!.json.start!.customParameters).toEqual({ tenant: 'acme' });
    const stopped = await client.calls(callSid).streams('node').update({ status: 'stopped' });
    expect(stopped.status).toBe('stopped');
    const fetched = await client.conferences(conf.sid).fetch();
    expect(fetched.status).toBe('in-progress');
    expect(fetched.dateCreated.getTime()).toBeGreaterThan(0);
    const ended = await client.conferences(conf.sid).update({ status: 'completed' });
    expect(ended.status).toBe('completed');
    expect(ended.reasonConferenceEnded).toBe('conference-ended-via-api');
    const again = client.conferences(conf.sid).update({ status: 'completed' });
    await expect(again).rejects.toMatchObject({ status: 400, code: 16022 });
    await expect(client.conferences(newSid('conference')).fetch()).rejects.toMatchObject({ status: 404, code: 20404 });
  });

  it('authenticates twilio-node with an API key', async () => {
    const key = sim.addApiKey();
    const conf = await sim.createConference({ participants: [{}, {}] });
    const client = twilio(key.sid, key.secret, { accountSid: sim.accountSid });
    client.api.baseUrl = sim.url;
    expect((await client.conferences(conf.sid).fetch()).sid).toBe(conf.sid);
  });

  describe('REST faults', () => {
    it('fails the next N requests of an operation with 429/20429, then recovers', async () => {
      const conf = await sim.createConference({ participants: [{}, {}] });
      sim.faults.addRestFault({ operation: 'UpdateConference', status: 429, next: 2 });
      const path = `${base}/Conferences/${conf.sid}.json`;
      // Other operations are not affected.
      expect((await rest.get(path)).status).toBe(200);
      const first = await rest.post(path, { Status: 'completed' });
      expectTwilioError(first, 429, 20429);
      expect(first.body.message).toBe('Too Many Requests');
      expectTwilioError(await rest.post(path, { Status: 'completed' }), 429, 20429);
      expect((await rest.post(path, { Status: 'completed' })).status).toBe(200);
      const log = sim.requests({ operation: 'UpdateConference' });
      expect(log.map((e) => [e.status, e.injected])).toEqual([
        [429, true],
        [429, true],
        [200, false],
      ]);
      // The injected failures did not end the conference: only the third request did.
      expect(sim.conference(conf.sid)!.status).toBe('completed');
      expect(sim.faults.list().rest).toEqual([]);
    });

    it('fails at a rate with 500/20500 and adds latency', async () => {
      const call = await sim.createCall();
      sim.faults.addRestFault({ operation: 'FetchCall', status: 500, rate: 1 });
      expectTwilioError(await rest.get(`${base}/Calls/${call.sid}.json`), 500, 20500);
      sim.faults.clear();
      sim.faults.addRestFault({ operation: '*', latencyMs: 150 });
      const t0 = performance.now();
      expect((await rest.get(`${base}/Calls/${call.sid}.json`)).status).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
      sim.faults.clear();
      sim.faults.addRestFault({ status: 503, rate: 0 });
      expect((await rest.get(`${base}/Calls/${call.sid}.json`)).status).toBe(200);
    });

    it('refuses malformed fault configuration', () => {
      expect(() => sim.faults.addRestFault({ operation: 'Nope' as never, status: 429 })).toThrow(/operation/);
      expect(() => sim.faults.addRestFault({ status: 418 as never })).toThrow(/status/);
      expect(() => sim.faults.addRestFault({})).toThrow(/status and\/or latencyMs/);
    });
  });
});
