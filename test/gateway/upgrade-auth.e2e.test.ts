import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { computeSignature } from '../../src/twilio/signature.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { metricValue, replay, startTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { connected, ids, media, start, stop, tone } from '../helpers/messages.js';

const TOKEN = '12345';
const PUBLIC = 'https://gw.example.com';
const UNSIGNED_WARNING = 'TWILIO_AUTH_TOKEN is not set: /media upgrades and webhooks are accepted unsigned, and every stream is trusted as a member of the conference it names (local development only)';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** Sends a raw WebSocket upgrade and returns the status line's code (101 or the refusal). */
function upgradeStatus(http: string, path: string, signature: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': Buffer.from('0123456789abcdef').toString('base64'),
    };
    if (signature !== undefined) headers['x-twilio-signature'] = signature;
    const req = request(http + path, { headers });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Streams three frames through a signed socket; resolves to what the sink got. */
async function streamThrough(g: TestGateway, sink: ReturnType<typeof collectingSinkFactory>, path: string, signature: string | undefined): Promise<number> {
  const s = ids();
  const url = g.ws.replace(/\/media$/, path);
  await replay(url, [connected(), start(s), media(s, 2, 1, 100, tone(1)), media(s, 3, 2, 120, tone(2)), media(s, 4, 3, 140, tone(3)), stop(s, 5)], {
    headers: signature === undefined ? {} : { 'x-twilio-signature': signature },
    closeAfter: true,
  });
  await waitFor(() => sink.streams.some((c) => c.info.streamSid === s.streamSid && c.closed !== null), 3000, 'stream closed');
  return sink.streams.find((c) => c.info.streamSid === s.streamSid)!.frames.length;
}

describe('/media upgrade signature (TWILIO_AUTH_TOKEN set)', () => {
  it("accepts the protocol doc's signatures for wss://gw.example.com/media, with and without the trailing slash", async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({ TWILIO_AUTH_TOKEN: TOKEN, PUBLIC_URL: PUBLIC }, { sinkFactories: [sink] });
    // Vectors computed independently in docs/twilio-protocol.md §8.1.
    expect(computeSignature(TOKEN, 'wss://gw.example.com/media')).toBe('EaUrJnXeOdQbckRcqHzor+8Gtsk=');
    expect(await upgradeStatus(gw.http, '/media', 'EaUrJnXeOdQbckRcqHzor+8Gtsk=')).toMatchObject({ status: 101 });
    expect(await upgradeStatus(gw.http, '/media', 'ecRPTWAi5CQuAiLbSzs00z3K3yM=')).toMatchObject({ status: 101 });
    expect(await upgradeStatus(gw.http, '/media/', 'ecRPTWAi5CQuAiLbSzs00z3K3yM=')).toMatchObject({ status: 101 });
    // And audio flows on such a socket.
    expect(await streamThrough(gw, sink, '/media', computeSignature(TOKEN, 'wss://gw.example.com/media'))).toBe(3);
    expect(await streamThrough(gw, sink, '/media/', computeSignature(TOKEN, 'wss://gw.example.com/media/'))).toBe(3);
    expect(await metricValue(gw.http, 'streamgate_upgrade_rejected_total', { reason: 'signature_invalid' })).toBe(0);
    expect(gw.logs.join('')).not.toContain(UNSIGNED_WARNING);
  });

  it('accepts a signature over the URL with the default port (twilio-node is lenient the same way)', async () => {
    gw = await startTestGateway({ TWILIO_AUTH_TOKEN: TOKEN, PUBLIC_URL: PUBLIC });
    expect((await upgradeStatus(gw.http, '/media', computeSignature(TOKEN, 'wss://gw.example.com:443/media'))).status).toBe(101);
  });

  it.each([
    ['a missing signature', undefined, 'signature_missing'],
    ['an empty signature', '', 'signature_missing'],
    ['a signature by another token', computeSignature('54321', 'wss://gw.example.com/media'), 'signature_invalid'],
    ['a signature over the https:// URL', computeSignature(TOKEN, 'https://gw.example.com/media'), 'signature_invalid'],
    ['a signature over another host', computeSignature(TOKEN, 'wss://evil.example.com/media'), 'signature_invalid'],
    ['a signature over another path', computeSignature(TOKEN, 'wss://gw.example.com/other'), 'signature_invalid'],
    ['garbage', 'not base64 at all', 'signature_invalid'],
  ])('answers HTTP 403 before any 101 for %s, counts it and starts no session', async (_what, signature, reason) => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({ TWILIO_AUTH_TOKEN: TOKEN, PUBLIC_URL: PUBLIC }, { sinkFactories: [sink] });
    const res = await upgradeStatus(gw.http, '/media', signature);
    expect(res.status).toBe(403);
    expect(res.body).toBe(reason);
    expect(await metricValue(gw.http, 'streamgate_upgrade_rejected_total', { reason })).toBe(1);
    expect(gw.gw.registry.sessions.size).toBe(0);
    // The ws client sees the same refusal, and no audio reaches a sink.
    const s = ids();
    await expect(replay(gw.ws, [connected(), start(s), media(s, 2, 1, 100, tone(1))], signature === undefined ? {} : { headers: { 'x-twilio-signature': signature } })).rejects.toMatchObject({ status: 403 });
    expect(sink.streams).toHaveLength(0);
    expect(await metricValue(gw.http, 'streamgate_upgrade_rejected_total', { reason })).toBe(2);
  });

  it('checks the signature before admission, so an unsigned client cannot tell a full or draining gateway', async () => {
    gw = await startTestGateway({ TWILIO_AUTH_TOKEN: TOKEN, PUBLIC_URL: PUBLIC });
    const signed = computeSignature(TOKEN, 'wss://gw.example.com/media');
    gw.gw.draining = true;
    expect(await upgradeStatus(gw.http, '/media', undefined)).toEqual({ status: 403, body: 'signature_missing' });
    expect(await upgradeStatus(gw.http, '/media', 'bad')).toEqual({ status: 403, body: 'signature_invalid' });
    expect(await upgradeStatus(gw.http, '/media', signed)).toEqual({ status: 503, body: 'draining' });
  });
});

describe('/media upgrade without TWILIO_AUTH_TOKEN', () => {
  it('accepts unsigned upgrades and logs the start-up warning exactly once', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({ PUBLIC_URL: PUBLIC }, { sinkFactories: [sink] });
    expect((await upgradeStatus(gw.http, '/media', undefined)).status).toBe(101);
    expect(await streamThrough(gw, sink, '/media', undefined)).toBe(3);
    // A signature is not checked either (there is no key to check it with).
    expect(await streamThrough(gw, sink, '/media', 'anything')).toBe(3);
    const warnings = gw.logs.map((l) => JSON.parse(l) as { msg: string; level: number }).filter((l) => l.msg === UNSIGNED_WARNING);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.level).toBe(40);
    expect(await metricValue(gw.http, 'streamgate_upgrade_rejected_total', { reason: 'signature_missing' })).toBe(0);
  });
});
