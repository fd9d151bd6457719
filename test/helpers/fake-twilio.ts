/**
 * A real HTTP server on 127.0.0.1:0 that answers the three REST operations the gateway makes
 * the way Twilio does (docs/twilio-protocol.md §4, §6.1, §7.2) and records every request. Twilio's
 * cloud is the one boundary tests cannot reach; this stands at it, speaking HTTP for real.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { newSid } from '../../src/twilio/sids.js';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  form: URLSearchParams;
}

export interface FakeStream {
  sid: string;
  callSid: string;
  name: string | null;
  status: 'in-progress' | 'stopped';
}

export interface FakeTwilio {
  baseUrl: string;
  accountSid: string;
  authToken: string;
  requests: RecordedRequest[];
  streams: FakeStream[];
  /** Conferences ended through UpdateConference. */
  endedConferences: string[];
  /** The next request gets this answer instead (once). */
  failNext(status: number, body: unknown): void;
  /** Holds every answer for `ms` (to prove a caller does not wait for Twilio). */
  delay(ms: number): void;
  close(): Promise<void>;
}

const RFC2822 = 'Thu, 30 Jul 2015 20:00:00 +0000';

function twilioError(status: number, code: number, message: string): { status: number; body: unknown } {
  return { status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status } };
}

export async function startFakeTwilio(accountSid = newSid('account'), authToken = 'fake-twilio-auth-token'): Promise<FakeTwilio> {
  const requests: RecordedRequest[] = [];
  const streams: FakeStream[] = [];
  const endedConferences: string[] = [];
  let override: { status: number; body: unknown } | null = null;
  let delayMs = 0;
  const expectedAuth = 'Basic ' + Buffer.from(`${accountSid}:${authToken}`).toString('base64');
  const base = `/2010-04-01/Accounts/${accountSid}`;

  function answer(req: RecordedRequest): { status: number; body: unknown } {
    if (override !== null) {
      const o = override;
      override = null;
      return o;
    }
    if (req.headers.authorization !== expectedAuth) return twilioError(401, 20003, 'Authenticate');
    const path = req.path;
    let m = new RegExp(`^${base}/Calls/(CA[0-9a-f]{32})/Streams\\.json$`).exec(path);
    if (m !== null && req.method === 'POST') {
      const callSid = m[1]!;
      const url = req.form.get('Url');
      if (url === null || !/^wss?:\/\//.test(url)) return twilioError(400, 21205, 'Url is not a valid URL');
      const name = req.form.get('Name');
      if (name !== null && streams.some((s) => s.callSid === callSid && s.name === name && s.status === 'in-progress')) {
        return twilioError(400, 21220, 'Invalid call state: a stream with this name exists');
      }
      const stream: FakeStream = { sid: newSid('stream'), callSid, name, status: 'in-progress' };
      streams.push(stream);
      return { status: 200, body: resource(stream) };
    }
    m = new RegExp(`^${base}/Calls/(CA[0-9a-f]{32})/Streams/([^/]+)\\.json$`).exec(path);
    if (m !== null && req.method === 'POST') {
      const key = decodeURIComponent(m[2]!);
      const stream = streams.find((s) => s.callSid === m![1] && (s.sid === key || s.name === key));
      if (stream === undefined) return twilioError(404, 20404, `The requested resource ${path} was not found`);
      if (req.form.get('Status') !== 'stopped') return twilioError(400, 20001, 'Status must be stopped');
      stream.status = 'stopped';
      return { status: 200, body: resource(stream) };
    }
    m = new RegExp(`^${base}/Conferences/(CF[0-9a-f]{32})\\.json$`).exec(path);
    if (m !== null && req.method === 'POST') {
      const sid = m[1]!;
      if (endedConferences.includes(sid)) return twilioError(404, 20404, `The requested resource ${path} was not found`);
      endedConferences.push(sid);
      return {
        status: 200,
        body: {
          sid,
          account_sid: accountSid,
          friendly_name: 'room',
          api_version: '2010-04-01',
          region: 'us1',
          status: 'completed',
          date_created: RFC2822,
          date_updated: RFC2822,
          uri: `${base}/Conferences/${sid}.json`,
          subresource_uris: {},
          reason_conference_ended: 'conference-ended-via-api',
          call_sid_ending_conference: null,
        },
      };
    }
    return twilioError(404, 20404, `The requested resource ${path} was not found`);
  }

  function resource(s: FakeStream): unknown {
    return {
      sid: s.sid,
      account_sid: accountSid,
      call_sid: s.callSid,
      name: s.name,
      status: s.status,
      date_updated: RFC2822,
      uri: `${base}/Calls/${s.callSid}/Streams/${s.sid}.json`,
    };
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: RecordedRequest = {
        method: req.method ?? '',
        path: (req.url ?? '').split('?')[0]!,
        headers: req.headers,
        form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
      };
      requests.push(rec);
      const { status, body } = answer(rec);
      const send = () => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(body));
      };
      if (delayMs > 0) setTimeout(send, delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    accountSid,
    authToken,
    requests,
    streams,
    endedConferences,
    failNext(status, body) {
      override = { status, body };
    },
    delay(ms) {
      delayMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
