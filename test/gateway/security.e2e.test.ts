/**
 * Security: SIDs are validated before any path is built, and secrets never reach the logs.
 * Uses the production composition (real recording sink on real files).
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createAppGateway } from '../../src/gateway/app.js';
import { loadConfig } from '../../src/gateway/config.js';
import { createLogger } from '../../src/gateway/logger.js';
import type { Gateway } from '../../src/gateway/server.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { newSid } from '../../src/twilio/sids.js';
import { replay, waitFor } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { connected, ids, media, start, stop, tone } from '../helpers/messages.js';

let gateway: Gateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

const AUTH_TOKEN = 'f00dfeedf00dfeedf00dfeedf00dfeed';
const ADMIN_TOKEN = 'admin-secret-7c2f9a1e5b';

async function start_(dataDir: string, logs: string[]) {
  // PUBLIC_URL must name the port before the gateway listens: reserve a free one.
  const port = await freePort();
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    STREAMGATE_DATA_DIR: dataDir,
    TRANSCRIPTION: 'none',
    TWILIO_ACCOUNT_SID: newSid('account'),
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_URL: 'http://127.0.0.1:9',
    ADMIN_TOKEN,
    LOG_LEVEL: 'trace',
  });
  const sink = new Writable({
    write(chunk, _e, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  gateway = await createAppGateway(config, { log: createLogger(config.logLevel, sink) });
  await gateway.listen(port, '127.0.0.1');
  const ws = `ws://127.0.0.1:${port}/media`;
  return { http: `http://127.0.0.1:${port}`, ws, headers: { 'x-twilio-signature': computeSignature(AUTH_TOKEN, ws) } };
}

describe('SIDs from the wire', () => {
  it.each([
    ['a path traversal', '../../../../etc/passwd'],
    ['a NUL byte', 'CA' + '0'.repeat(15) + '\u0000' + '0'.repeat(16)],
    ['a long string', 'CA' + 'a'.repeat(5000)],
    ['a slash inside', 'CA' + '0'.repeat(16) + '/' + '0'.repeat(15)],
  ])('refuses a start whose callSid is %s, and writes nothing', async (_name, callSid) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-sec-'));
    const { ws, headers } = await start_(dataDir, []);
    const s = { ...ids(), callSid };
    const res = await replay(ws, [connected(), start(s), media(s, 2, 1, 100, tone(1))], { headers });
    expect(res.closeCode).toBe(1007);
    expect(res.closeReason).toBe('invalid_sid');
    expect(await readdir(join(dataDir, 'recordings')).catch(() => [])).toEqual([]);
  });
});

describe('secrets', () => {
  it('never writes the auth token, admin token or per-call token to the logs', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-sec-'));
    const logs: string[] = [];
    const { http, ws, headers } = await start_(dataDir, logs);
    const s = ids();
    await replay(ws, [connected(), start(s, { customParameters: { sgToken: 'per-call-token-value-123' } }), media(s, 2, 1, 100, tone(1)), stop(s, 3)], { headers, closeAfter: true });
    // Admin calls: right token, wrong token, and a call that reaches (unreachable) Twilio.
    await fetch(`${http}/v1/streams`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    await fetch(`${http}/v1/streams`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } });
    await fetch(`${http}/v1/conferences/${newSid('conference')}/end`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    await fetch(`${http}/twilio/stream-status`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': 'bogus' }, body: `AccountSid=${newSid('account')}` });
    await waitFor(() => logs.some((l) => l.includes('stream ended') || l.includes('closing stream')), 5000);
    const all = logs.join('');
    expect(all.length).toBeGreaterThan(500);
    expect(all).not.toContain(AUTH_TOKEN);
    expect(all).not.toContain(ADMIN_TOKEN);
    expect(all).not.toContain('per-call-token-value-123');
    expect(all).not.toContain(Buffer.from(`:${AUTH_TOKEN}`).toString('base64').slice(4));
  });

  it('sets security headers on HTTP responses', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-sec-'));
    const { http } = await start_(dataDir, []);
    const res = await fetch(`${http}/healthz`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
