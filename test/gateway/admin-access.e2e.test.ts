/**
 * The operator surfaces against a browser and a guesser (issue 13, finding 2 and 9), over real
 * sockets: DNS rebinding (a foreign Host), CSRF (a foreign Origin, a text/plain POST), proxy
 * headers, failed-auth throttling, and unknown query parameters.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { newSid } from '../../src/twilio/sids.js';
import { transcriptsSse } from '../../src/gateway/control/transcripts-sse.js';
import { metricValue, startTwilioGateway, startTwilioStack, type TwilioTestGateway } from '../helpers/gateway.js';

const ADMIN = 'admin-token-access-0123456789';

let gw: TwilioTestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with exactly these headers (Host included), from `localAddress` when given. */
function raw(method: string, path: string, headers: Record<string, string>, opts: { body?: string; localAddress?: string } = {}): Promise<Raw> {
  const url = new URL(gw!.http);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path, headers, localAddress: opts.localAddress, setHost: !('host' in headers) && !('Host' in headers) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        // An SSE answer never ends: its status and headers are enough.
        if (res.headers['content-type']?.startsWith('text/event-stream')) {
          resolve({ status: res.statusCode!, headers: res.headers, body: '' });
          res.destroy();
        }
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function local(): Record<string, string> {
  return { host: `127.0.0.1:${new URL(gw!.http).port}` };
}

async function refused(reason: string): Promise<number> {
  return metricValue(gw!.http, 'streamgate_admin_refused_total', { reason });
}

describe('/v1 without ADMIN_TOKEN', () => {
  it('refuses a foreign Host (DNS rebinding) and answers loopback names with any port', async () => {
    gw = await startTwilioGateway({}, [], { adminExtensions: [transcriptsSse] });
    const port = new URL(gw.http).port;
    for (const host of ['attacker.example', `attacker.example:${port}`, '127.0.0.1.nip.io', 'localhost.attacker.example', '10.0.0.1', '']) {
      const res = await raw('GET', '/v1/streams', { host });
      expect(res.status, host).toBe(403);
      expect(JSON.parse(res.body).message).toMatch(/ADMIN_TOKEN/);
    }
    // The SSE feed is behind the same rule.
    expect((await raw('GET', '/v1/transcripts', { host: 'attacker.example' })).status).toBe(403);
    for (const host of ['localhost', `localhost:${port}`, 'LOCALHOST', `127.0.0.1:${port}`, '127.1.2.3', `[::1]:${port}`]) {
      expect((await raw('GET', '/v1/streams', { host })).status, host).toBe(200);
    }
    expect((await raw('GET', '/v1/transcripts', local())).status).toBe(200);
    expect(await refused('host')).toBe(7);
  });

  it('refuses any other web Origin, also for a GET, and answers a loopback one', async () => {
    gw = await startTwilioGateway({});
    for (const origin of ['http://evil.example', 'null', 'https://127.0.0.1.evil.example', 'file://', 'chrome-extension://abc']) {
      const res = await raw('GET', '/v1/streams', { ...local(), origin });
      expect(res.status, origin).toBe(403);
    }
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8080', 'https://[::1]:9000']) {
      expect((await raw('GET', '/v1/streams', { ...local(), origin })).status, origin).toBe(200);
    }
    expect(await refused('origin')).toBe(5);
  });

  it('refuses a cross-site POST (text/plain, foreign Origin) before it ends the conference; a JSON POST from the operator ends it', async () => {
    const stack = await startTwilioStack();
    gw = stack;
    const { sim } = stack;
    const tone = { type: 'tone', hz: 440, ms: 60_000 } as const;
    const conf = await sim.createConference({ participants: [{ audio: tone }, { audio: tone }] });
    const path = `/v1/conferences/${conf.sid}/end`;
    // What a form or fetch(no-cors) on evil.example sends.
    const csrf = await raw('POST', path, { ...local(), origin: 'http://evil.example', 'content-type': 'text/plain' }, { body: '{}' });
    expect(csrf.status).toBe(403);
    // The same without an Origin (an old browser, a redirect) still is not JSON.
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await raw('POST', path, { ...local(), 'content-type': type }, { body: '' });
      expect(res.status, type).toBe(415);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'invalid_request', field: 'content-type' });
    }
    expect((await raw('POST', path, local())).status).toBe(415);
    expect(sim.conference(conf.sid)!.status).toBe('in-progress');
    expect(sim.requests({ method: 'POST', pathIncludes: '/Conferences/' })).toHaveLength(0);
    // The operator's curl: JSON, no body.
    const ok = await raw('POST', path, { ...local(), 'content-type': 'application/json' });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ conferenceSid: conf.sid, result: 'ended' });
    await sim.waitForConferenceStatus(conf.sid, 'completed');
    expect(await refused('content_type')).toBe(4);
    expect(await refused('origin')).toBe(1);
  });

  it.each([
    ['forwarded', 'for=203.0.113.9'],
    ['x-forwarded-for', '203.0.113.9'],
    ['x-forwarded-host', 'evil.example'],
    ['x-forwarded-proto', 'https'],
    ['x-real-ip', '203.0.113.9'],
    ['via', '1.1 proxy'],
    ['x-client-ip', '203.0.113.9'],
    ['true-client-ip', '203.0.113.9'],
    ['cf-connecting-ip', '203.0.113.9'],
    ['fastly-client-ip', '203.0.113.9'],
    ['x-cluster-client-ip', '203.0.113.9'],
    ['x-original-forwarded-for', '203.0.113.9'],
  ])('refuses a request carrying the proxy header %s', async (name, value) => {
    gw = await startTwilioGateway({});
    const res = await raw('GET', '/v1/streams', { ...local(), [name]: value });
    expect(res.status).toBe(403);
    expect(await refused('proxy')).toBe(1);
    expect((await raw('GET', '/v1/streams', local())).status).toBe(200);
  });
});

describe('/v1 with ADMIN_TOKEN', () => {
  it('throttles wrong-token guesses per client (429 + Retry-After, counted) while another client still gets in', async () => {
    gw = await startTwilioGateway({ ADMIN_TOKEN: ADMIN });
    const guess = (n: number, localAddress = '127.0.0.1') => raw('GET', '/v1/streams', { ...local(), authorization: `Bearer guess-${n}` }, { localAddress });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await guess(i)).status);
    const first429 = statuses.indexOf(429);
    expect(first429).toBeGreaterThan(0);
    expect(first429).toBeLessThanOrEqual(12);
    expect(statuses.slice(0, first429).every((s) => s === 401)).toBe(true);
    const limited = await guess(99);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // While throttled, even the right token is not looked at: a guesser learns nothing.
    expect((await raw('GET', '/v1/streams', { ...local(), authorization: `Bearer ${ADMIN}` })).status).toBe(429);
    // Another client address is not affected.
    expect((await raw('GET', '/v1/streams', { ...local(), authorization: `Bearer ${ADMIN}` }, { localAddress: '127.0.0.2' })).status).toBe(200);
    expect((await guess(1, '127.0.0.2')).status).toBe(401);
    expect(await refused('rate_limited')).toBe(40 - first429 + 2);
    expect(await refused('unauthorized')).toBe(first429 + 1);
  });

  it('keeps answering a foreign Host and a proxied request that carry the token (unchanged)', async () => {
    gw = await startTwilioGateway({ ADMIN_TOKEN: ADMIN });
    const res = await raw('GET', '/v1/streams', { host: 'gw.example.com', 'x-forwarded-for': '203.0.113.9', authorization: `Bearer ${ADMIN}` });
    expect(res.status).toBe(200);
  });
});

describe('/v1 query parameters', () => {
  it('answers 400 naming an unknown query parameter on /v1/transcripts and /v1/streams', async () => {
    gw = await startTwilioGateway({ ADMIN_TOKEN: ADMIN }, [], { adminExtensions: [transcriptsSse] });
    const auth = { ...local(), authorization: `Bearer ${ADMIN}` };
    const typo = await raw('GET', `/v1/transcripts?callsid=${newSid('call')}`, auth);
    expect(typo.status).toBe(400);
    expect(JSON.parse(typo.body)).toMatchObject({ error: 'invalid_request', field: 'callsid' });
    const extra = await raw('GET', '/v1/streams?state=pending', auth);
    expect(extra.status).toBe(400);
    expect(JSON.parse(extra.body)).toMatchObject({ error: 'invalid_request', field: 'state' });
    // Known parameters still work.
    const sse = await raw('GET', `/v1/transcripts?callSid=${newSid('call')}`, auth);
    expect(sse.status).toBe(200);
    expect(sse.headers['content-type']).toMatch(/^text\/event-stream/);
    expect((await raw('GET', '/v1/streams', auth)).status).toBe(200);
  });
});
