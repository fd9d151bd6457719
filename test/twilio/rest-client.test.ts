import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, InvalidInputError } from '../../src/errors.js';
import { TwilioApiError, TwilioResponseError, TwilioTransportError } from '../../src/twilio/errors.js';
import { TwilioRestClient, type TwilioRestClientOptions } from '../../src/twilio/rest-client.js';

const ACCOUNT = `AC${'a'.repeat(32)}`;
const CALL = `CA${'b'.repeat(32)}`;
const STREAM = `MZ${'c'.repeat(32)}`;
const CONF = `CF${'d'.repeat(32)}`;
const API_KEY = `SK${'e'.repeat(32)}`;
const AUTH_TOKEN = 'auth-token-0123456789abcdef-secret';
const STREAM_TOKEN = 'per-call-token-VALUE-4f1a9c';

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A scripted answer: JSON (object), raw text, or a misbehaviour. */
type Reply =
  | { status: number; json: unknown }
  | { status: number; text: string; contentType?: string }
  | 'hang'
  | 'destroy';

interface FakeTwilio {
  baseUrl: string;
  requests: Recorded[];
}

const servers: Server[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

/** A real HTTP server on 127.0.0.1:0 that records each request and answers `replies[n]` (the last one repeats). */
async function fakeTwilio(...replies: Reply[]): Promise<FakeTwilio> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const reply = replies[Math.min(requests.length - 1, replies.length - 1)]!;
      if (reply === 'hang') return;
      if (reply === 'destroy') {
        req.socket.destroy();
        return;
      }
      if ('json' in reply) {
        res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(reply.json));
      } else {
        res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'text/html' });
        res.end(reply.text);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}`, requests };
}

/** A port on which nothing listens (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function client(baseUrl: string, extra: Partial<TwilioRestClientOptions> = {}): TwilioRestClient {
  return new TwilioRestClient({
    baseUrl,
    accountSid: ACCOUNT,
    username: ACCOUNT,
    password: AUTH_TOKEN,
    retryBaseMs: 1,
    retryMaxMs: 5,
    ...extra,
  });
}

function stream(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sid: STREAM,
    account_sid: ACCOUNT,
    call_sid: CALL,
    name: null,
    status: 'in-progress',
    date_updated: 'Thu, 30 Jul 2015 20:00:00 +0000',
    uri: `/2010-04-01/Accounts/${ACCOUNT}/Calls/${CALL}/Streams/${STREAM}.json`,
    ...overrides,
  };
}

function conference(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    account_sid: ACCOUNT,
    api_version: '2010-04-01',
    call_sid_ending_conference: null,
    date_created: 'Mon, 22 Aug 2011 20:58:45 +0000',
    date_updated: 'Mon, 22 Aug 2011 20:58:46 +0000',
    friendly_name: 'room-1',
    reason_conference_ended: null,
    region: 'us1',
    sid: CONF,
    status: 'in-progress',
    subresource_uris: {
      participants: `/2010-04-01/Accounts/${ACCOUNT}/Conferences/${CONF}/Participants.json`,
      recordings: `/2010-04-01/Accounts/${ACCOUNT}/Conferences/${CONF}/Recordings.json`,
    },
    uri: `/2010-04-01/Accounts/${ACCOUNT}/Conferences/${CONF}.json`,
    ...overrides,
  };
}

function basicAuth(headers: IncomingHttpHeaders): string {
  const value = headers.authorization ?? '';
  expect(value.startsWith('Basic ')).toBe(true);
  return Buffer.from(value.slice(6), 'base64').toString('utf8');
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

const STREAMS_PATH = `/2010-04-01/Accounts/${ACCOUNT}/Calls/${CALL}/Streams.json`;
const CONF_PATH = `/2010-04-01/Accounts/${ACCOUNT}/Conferences/${CONF}.json`;

describe('TwilioRestClient requests', () => {
  it('form-encodes CreateStream exactly, parameters as ParameterN.Name/Value', async () => {
    const tw = await fakeTwilio({ status: 200, json: stream({ name: 'rec-1' }) });
    const res = await client(tw.baseUrl).createStream(CALL, {
      url: 'wss://gw.example.com/media',
      name: 'rec-1',
      track: 'both_tracks',
      statusCallback: 'https://gw.example.com/twilio/stream-status',
      statusCallbackMethod: 'POST',
      parameters: { conferenceSid: CONF, sgToken: STREAM_TOKEN, note: 'a b&c=d/é' },
    });
    expect(tw.requests).toHaveLength(1);
    const req = tw.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe(STREAMS_PATH);
    expect(req.body).toBe(
      'Url=wss%3A%2F%2Fgw.example.com%2Fmedia&Name=rec-1&Track=both_tracks' +
        '&StatusCallback=https%3A%2F%2Fgw.example.com%2Ftwilio%2Fstream-status&StatusCallbackMethod=POST' +
        `&Parameter1.Name=conferenceSid&Parameter1.Value=${CONF}` +
        `&Parameter2.Name=sgToken&Parameter2.Value=${STREAM_TOKEN}` +
        '&Parameter3.Name=note&Parameter3.Value=a+b%26c%3Dd%2F%C3%A9',
    );
    expect(new URLSearchParams(req.body).get('Parameter3.Value')).toBe('a b&c=d/é');
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req.headers.accept).toBe('application/json');
    expect(req.headers['user-agent']).toMatch(/^streamgate\/\d+\.\d+\.\d+/);
    expect(basicAuth(req.headers)).toBe(`${ACCOUNT}:${AUTH_TOKEN}`);
    expect(res).toEqual(stream({ name: 'rec-1' }));
  });

  it('sends only Url when nothing else is given', async () => {
    const tw = await fakeTwilio({ status: 200, json: stream() });
    await client(tw.baseUrl).createStream(CALL, { url: 'wss://gw.example.com/media' });
    expect(tw.requests[0]!.body).toBe('Url=wss%3A%2F%2Fgw.example.com%2Fmedia');
  });

  it('accepts 99 parameters and refuses 100 before sending anything', async () => {
    const tw = await fakeTwilio({ status: 200, json: stream() });
    const c = client(tw.baseUrl);
    const make = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, `v${i}`]));
    await c.createStream(CALL, { url: 'wss://x/media', parameters: make(99) });
    const form = new URLSearchParams(tw.requests[0]!.body);
    expect(form.get('Parameter99.Name')).toBe('p98');
    expect(form.get('Parameter99.Value')).toBe('v98');
    expect(form.has('Parameter100.Name')).toBe(false);
    await expect(c.createStream(CALL, { url: 'wss://x/media', parameters: make(100) })).rejects.toBeInstanceOf(InvalidInputError);
    expect(tw.requests).toHaveLength(1);
  });

  it('authenticates with an API key while keeping the account SID in the path', async () => {
    const tw = await fakeTwilio({ status: 200, json: stream() });
    await client(tw.baseUrl, { username: API_KEY, password: 'key-secret' }).createStream(CALL, { url: 'wss://x/media' });
    expect(basicAuth(tw.requests[0]!.headers)).toBe(`${API_KEY}:key-secret`);
    expect(tw.requests[0]!.url).toBe(STREAMS_PATH);
  });

  it('stops a stream by SID and by a name that needs encoding', async () => {
    const tw = await fakeTwilio({ status: 200, json: stream({ status: 'stopped' }) });
    const c = client(tw.baseUrl);
    const bySid = await c.updateStream(CALL, STREAM, { status: 'stopped' });
    expect(bySid.status).toBe('stopped');
    await c.updateStream(CALL, 'rec 1/ä?x#y', { status: 'stopped' });
    const base = `/2010-04-01/Accounts/${ACCOUNT}/Calls/${CALL}/Streams`;
    expect(tw.requests.map((r) => r.url)).toEqual([`${base}/${STREAM}.json`, `${base}/rec%201%2F%C3%A4%3Fx%23y.json`]);
    expect(tw.requests.map((r) => r.body)).toEqual(['Status=stopped', 'Status=stopped']);
  });

  it('ends a conference with Status, AnnounceUrl and AnnounceMethod', async () => {
    const done = conference({ status: 'completed', reason_conference_ended: 'conference-ended-via-api' });
    const tw = await fakeTwilio({ status: 200, json: done });
    const res = await client(tw.baseUrl).updateConference(CONF, {
      status: 'completed',
      announceUrl: 'https://gw.example.com/bye.xml',
      announceMethod: 'GET',
    });
    expect(tw.requests[0]!.url).toBe(CONF_PATH);
    expect(tw.requests[0]!.body).toBe('Status=completed&AnnounceUrl=https%3A%2F%2Fgw.example.com%2Fbye.xml&AnnounceMethod=GET');
    expect(res).toEqual(done);
  });

  it('fetches a conference with GET, no body and no content type', async () => {
    const tw = await fakeTwilio({ status: 200, json: conference() });
    const res = await client(tw.baseUrl).fetchConference(CONF);
    const req = tw.requests[0]!;
    expect(req.method).toBe('GET');
    expect(req.url).toBe(CONF_PATH);
    expect(req.body).toBe('');
    expect(req.headers['content-type']).toBeUndefined();
    expect(basicAuth(req.headers)).toBe(`${ACCOUNT}:${AUTH_TOKEN}`);
    expect(res.status).toBe('in-progress');
    expect(res.subresource_uris?.participants).toMatch(/Participants\.json$/);
  });

  it('validates path SIDs and enum inputs before sending', async () => {
    const tw = await fakeTwilio({ status: 200, json: stream() });
    const c = client(tw.baseUrl);
    await expect(c.createStream('CA123', { url: 'wss://x/media' })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(c.createStream(`CA${'g'.repeat(32)}`, { url: 'wss://x/media' })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(c.updateStream(`../${CALL}`, STREAM, { status: 'stopped' })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(c.updateStream(CALL, '', { status: 'stopped' })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(c.fetchConference(`CA${'d'.repeat(32)}`)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(c.updateConference(CONF, {})).rejects.toBeInstanceOf(InvalidInputError);
    const badTrack = { url: 'wss://x/media', track: 'left' } as unknown as Parameters<TwilioRestClient['createStream']>[1];
    await expect(c.createStream(CALL, badTrack)).rejects.toBeInstanceOf(InvalidInputError);
    expect(tw.requests).toHaveLength(0);
  });

  it('refuses bad options at construction', () => {
    const base = { accountSid: ACCOUNT, username: ACCOUNT, password: 'x' };
    expect(() => new TwilioRestClient({ ...base, accountSid: 'AC1' })).toThrow(InvalidInputError);
    expect(() => new TwilioRestClient({ ...base, username: 'bob' })).toThrow(ConfigError);
    expect(() => new TwilioRestClient({ ...base, password: '' })).toThrow(ConfigError);
    expect(() => new TwilioRestClient({ ...base, baseUrl: 'ftp://x' })).toThrow(ConfigError);
    expect(() => new TwilioRestClient({ ...base, baseUrl: 'https://u:p@api.twilio.com' })).toThrow(ConfigError);
    expect(() => new TwilioRestClient({ ...base, maxRetries: -1 })).toThrow(ConfigError);
  });

  it('tolerates a trailing slash on the base URL', async () => {
    const tw = await fakeTwilio({ status: 200, json: conference() });
    await client(`${tw.baseUrl}/`).fetchConference(CONF);
    expect(tw.requests[0]!.url).toBe(CONF_PATH);
  });
});

describe('TwilioRestClient errors', () => {
  it('maps 404/20404 to TwilioApiError with the Twilio fields', async () => {
    const body = {
      code: 20404,
      message: `The requested resource ${CONF_PATH} was not found`,
      more_info: 'https://www.twilio.com/docs/errors/20404',
      status: 404,
    };
    const tw = await fakeTwilio({ status: 404, json: body });
    const err = await rejection(client(tw.baseUrl).fetchConference(CONF));
    expect(err).toBeInstanceOf(TwilioApiError);
    const e = err as TwilioApiError;
    expect(e.code).toBe('SG_ERR_TWILIO_API');
    expect(e.status).toBe(404);
    expect(e.twilioCode).toBe(20404);
    expect(e.moreInfo).toBe('https://www.twilio.com/docs/errors/20404');
    expect(e.twilioMessage).toBe(body.message);
    expect(e.operation).toBe('FetchConference');
    expect(e.attempts).toBe(1);
    expect(tw.requests).toHaveLength(1);
  });

  it('maps 401/20003 and does not retry it', async () => {
    const tw = await fakeTwilio({
      status: 401,
      json: { code: 20003, detail: '', message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 },
    });
    const e = (await rejection(client(tw.baseUrl).updateConference(CONF, { status: 'completed' }))) as TwilioApiError;
    expect(e).toBeInstanceOf(TwilioApiError);
    expect([e.status, e.twilioCode, e.twilioMessage, e.operation]).toEqual([401, 20003, 'Authenticate', 'UpdateConference']);
    expect(tw.requests).toHaveLength(1);
  });

  it('maps 400/21220 (invalid call state) on CreateStream', async () => {
    const tw = await fakeTwilio({
      status: 400,
      json: { code: 21220, message: 'Invalid call state', more_info: 'https://www.twilio.com/docs/errors/21220', status: 400 },
    });
    const e = (await rejection(client(tw.baseUrl).createStream(CALL, { url: 'wss://x/media' }))) as TwilioApiError;
    expect([e.status, e.twilioCode, e.operation]).toEqual([400, 21220, 'CreateStream']);
    expect(e.message).toContain('21220');
  });

  it('tolerates a non-JSON 502 body without quoting it', async () => {
    const tw = await fakeTwilio({ status: 502, text: '<html><body>Bad Gateway</body></html>' });
    const e = (await rejection(client(tw.baseUrl).createStream(CALL, { url: 'wss://x/media' }))) as TwilioApiError;
    expect(e).toBeInstanceOf(TwilioApiError);
    expect(e.status).toBe(502);
    expect(e.twilioCode).toBeNull();
    expect(e.moreInfo).toBeNull();
    expect(e.twilioMessage).toContain('non-JSON');
    expect(e.message).not.toContain('<html>');
  });

  it('reads an RFC 9457 problem body', async () => {
    const tw = await fakeTwilio({ status: 400, json: { type: 'https://www.twilio.com/docs/errors/21205', title: 'Invalid URL', status: 400, code: 21205 } });
    const e = (await rejection(client(tw.baseUrl).createStream(CALL, { url: 'wss://x/media' }))) as TwilioApiError;
    expect([e.twilioCode, e.twilioMessage, e.moreInfo]).toEqual([21205, 'Invalid URL', 'https://www.twilio.com/docs/errors/21205']);
  });

  it('rejects a 2xx body that is not the resource (bad SID, wrong call, unknown status, not JSON)', async () => {
    const cases: Reply[] = [
      { status: 200, json: stream({ sid: 'MZ-not-a-sid' }) },
      { status: 200, json: stream({ call_sid: `CA${'f'.repeat(32)}` }) },
      { status: 200, json: stream({ status: 'paused' }) },
      { status: 200, json: [stream()] },
      { status: 200, text: 'OK', contentType: 'text/plain' },
    ];
    for (const reply of cases) {
      const tw = await fakeTwilio(reply, { status: 200, json: stream() });
      const err = await rejection(client(tw.baseUrl).updateStream(CALL, STREAM, { status: 'stopped' }));
      expect(err).toBeInstanceOf(TwilioResponseError);
      expect((err as TwilioResponseError).code).toBe('SG_ERR_TWILIO_RESPONSE');
      // Twilio may have acted on it: never retried.
      expect(tw.requests).toHaveLength(1);
    }
  });

  it('rejects a conference resource for another conference or with a bad ending call SID', async () => {
    const other = await fakeTwilio({ status: 200, json: conference({ sid: `CF${'0'.repeat(32)}` }) });
    await expect(client(other.baseUrl).fetchConference(CONF)).rejects.toBeInstanceOf(TwilioResponseError);
    const bad = await fakeTwilio({ status: 200, json: conference({ call_sid_ending_conference: 'CA1' }) });
    await expect(client(bad.baseUrl).fetchConference(CONF)).rejects.toBeInstanceOf(TwilioResponseError);
  });

  it('uses distinct error codes per class', () => {
    const codes = [
      new TwilioApiError('CreateStream', 500, { twilioCode: null, message: 'x', moreInfo: null }, 1).code,
      new TwilioResponseError('CreateStream', 200, 'x', 1).code,
      new TwilioTransportError('CreateStream', 'timeout', null, false, 1).code,
    ];
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.every((c) => c.startsWith('SG_ERR_TWILIO_'))).toBe(true);
  });
});

describe('TwilioRestClient retries', () => {
  const tooMany = { status: 429, json: { code: 20429, message: 'Too Many Requests', more_info: 'https://www.twilio.com/docs/errors/20429', status: 429 } };

  const ops: { op: string; ok: unknown; run: (c: TwilioRestClient) => Promise<unknown> }[] = [
    { op: 'CreateStream', ok: stream(), run: (c) => c.createStream(CALL, { url: 'wss://x/media', parameters: { sgToken: STREAM_TOKEN } }) },
    { op: 'UpdateStream', ok: stream({ status: 'stopped' }), run: (c) => c.updateStream(CALL, STREAM, { status: 'stopped' }) },
    { op: 'UpdateConference', ok: conference({ status: 'completed' }), run: (c) => c.updateConference(CONF, { status: 'completed' }) },
    { op: 'FetchConference', ok: conference(), run: (c) => c.fetchConference(CONF) },
  ];

  it.each(ops)('retries $op after 429 and reports each attempt', async ({ op, ok, run }) => {
    const tw = await fakeTwilio(tooMany, { status: 200, json: ok });
    const seen: [string, string, number][] = [];
    const res = await run(client(tw.baseUrl, { observe: (o, s, t) => seen.push([o, s, t]) }));
    expect(res).toEqual(ok);
    expect(tw.requests).toHaveLength(2);
    // Identical requests: the retry resends the same body.
    expect(tw.requests[1]!.body).toBe(tw.requests[0]!.body);
    expect(seen.map(([o, s]) => [o, s])).toEqual([
      [op, '429'],
      [op, '200'],
    ]);
    for (const [, , seconds] of seen) expect(seconds).toBeGreaterThanOrEqual(0);
  });

  it('gives up after maxRetries 429s with the last TwilioApiError', async () => {
    const tw = await fakeTwilio(tooMany);
    const e = (await rejection(client(tw.baseUrl, { maxRetries: 2 }).createStream(CALL, { url: 'wss://x/media' }))) as TwilioApiError;
    expect([e.status, e.twilioCode, e.attempts]).toEqual([429, 20429, 3]);
    expect(tw.requests).toHaveLength(3);
  });

  it('retries UpdateConference after 500', async () => {
    const tw = await fakeTwilio({ status: 500, json: { code: 20500, message: 'Internal Server Error', status: 500 } }, { status: 200, json: conference({ status: 'completed' }) });
    const res = await client(tw.baseUrl).updateConference(CONF, { status: 'completed' });
    expect(res.status).toBe('completed');
    expect(tw.requests).toHaveLength(2);
  });

  it('does not retry CreateStream after 500 (Twilio may have started the stream)', async () => {
    const tw = await fakeTwilio({ status: 500, json: { code: 20500, message: 'Internal Server Error', status: 500 } }, { status: 200, json: stream() });
    const e = (await rejection(client(tw.baseUrl).createStream(CALL, { url: 'wss://x/media' }))) as TwilioApiError;
    expect(e).toBeInstanceOf(TwilioApiError);
    expect(e.status).toBe(500);
    expect(tw.requests).toHaveLength(1);
  });

  it('retries UpdateConference after a timeout', async () => {
    const tw = await fakeTwilio('hang', { status: 200, json: conference({ status: 'completed' }) });
    const seen: string[] = [];
    const res = await client(tw.baseUrl, { timeoutMs: 150, observe: (_o, s) => seen.push(s) }).updateConference(CONF, { status: 'completed' });
    expect(res.status).toBe('completed');
    expect(tw.requests).toHaveLength(2);
    expect(seen).toEqual(['timeout', '200']);
  });

  it('gives up on UpdateConference after maxRetries timeouts with a TwilioTransportError', async () => {
    const tw = await fakeTwilio('hang');
    const e = (await rejection(client(tw.baseUrl, { timeoutMs: 100, maxRetries: 2 }).updateConference(CONF, { status: 'completed' }))) as TwilioTransportError;
    expect(e).toBeInstanceOf(TwilioTransportError);
    expect([e.code, e.failure, e.mayHaveActed, e.retryable, e.attempts]).toEqual(['SG_ERR_TWILIO_TRANSPORT', 'timeout', true, true, 3]);
    expect(tw.requests).toHaveLength(3);
  });

  it('does not retry CreateStream after a timeout', async () => {
    const tw = await fakeTwilio('hang', { status: 200, json: stream() });
    const seen: string[] = [];
    const e = (await rejection(client(tw.baseUrl, { timeoutMs: 150, observe: (_o, s) => seen.push(s) }).createStream(CALL, { url: 'wss://x/media' }))) as TwilioTransportError;
    expect(e).toBeInstanceOf(TwilioTransportError);
    expect([e.failure, e.mayHaveActed, e.retryable, e.attempts]).toEqual(['timeout', true, false, 1]);
    expect(tw.requests).toHaveLength(1);
    expect(seen).toEqual(['timeout']);
  });

  it('does not retry CreateStream after a connection reset, but retries UpdateStream', async () => {
    const tw = await fakeTwilio('destroy', { status: 200, json: stream({ status: 'stopped' }) });
    const e = (await rejection(client(tw.baseUrl).createStream(CALL, { url: 'wss://x/media' }))) as TwilioTransportError;
    expect([e.failure, e.mayHaveActed, e.retryable]).toEqual(['reset', true, false]);
    expect(tw.requests).toHaveLength(1);
    const res = await client(tw.baseUrl).updateStream(CALL, STREAM, { status: 'stopped' });
    expect(res.status).toBe('stopped');
    expect(tw.requests).toHaveLength(2);
  });

  it('retries CreateStream on connection refused, maxRetries times', async () => {
    const port = await closedPort();
    const seen: [string, string][] = [];
    const c = client(`http://127.0.0.1:${port}`, { maxRetries: 3, observe: (o, s) => seen.push([o, s]) });
    const e = (await rejection(c.createStream(CALL, { url: 'wss://x/media' }))) as TwilioTransportError;
    expect(e).toBeInstanceOf(TwilioTransportError);
    expect([e.failure, e.systemCode, e.mayHaveActed, e.retryable, e.attempts]).toEqual(['refused', 'ECONNREFUSED', false, true, 4]);
    expect(seen).toEqual(Array.from({ length: 4 }, () => ['CreateStream', 'error']));
  });

  it('caps each backoff at retryMaxMs', async () => {
    const tw = await fakeTwilio(tooMany, tooMany, tooMany, { status: 200, json: conference() });
    const started = performance.now();
    await client(tw.baseUrl, { retryBaseMs: 60_000, retryMaxMs: 20 }).fetchConference(CONF);
    expect(tw.requests).toHaveLength(4);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('survives an observe hook that throws', async () => {
    const tw = await fakeTwilio({ status: 200, json: conference() });
    const res = await client(tw.baseUrl, {
      observe: () => {
        throw new Error('metrics broke');
      },
    }).fetchConference(CONF);
    expect(res.sid).toBe(CONF);
  });
});

describe('TwilioRestClient secrets', () => {
  it('logs each retry at warn without the password, the Authorization header or the body', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) });
    const authHeader = Buffer.from(`${ACCOUNT}:${AUTH_TOKEN}`).toString('base64');
    const tw = await fakeTwilio(
      { status: 429, json: { code: 20429, message: 'Too Many Requests', status: 429 } },
      { status: 503, json: { code: 20503, message: 'Service Unavailable', status: 503 } },
      { status: 200, json: conference() },
    );
    const c = client(tw.baseUrl, { logger });
    await c.fetchConference(CONF);
    await expect(c.createStream(CALL, { url: 'wss://x/media', parameters: { sgToken: STREAM_TOKEN } })).rejects.toBeInstanceOf(TwilioResponseError);
    const refused = client(`http://127.0.0.1:${await closedPort()}`, { logger, maxRetries: 1 });
    const transport = await rejection(refused.createStream(CALL, { url: 'wss://x/media', parameters: { sgToken: STREAM_TOKEN } }));

    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const retries = records.filter((r) => r.msg === 'twilio request retry');
    expect(retries.map((r) => [r.level, r.operation, r.status, r.attempt])).toEqual([
      [40, 'FetchConference', '429', 1],
      [40, 'FetchConference', '503', 2],
      [40, 'CreateStream', 'error', 1],
    ]);
    const everything = lines.join('\n') + inspect(c, { depth: 5 }) + inspect(transport, { depth: 5 }) + JSON.stringify(c);
    for (const secret of [AUTH_TOKEN, authHeader, STREAM_TOKEN, 'Basic ', 'uthorization']) expect(everything).not.toContain(secret);
  });
});
