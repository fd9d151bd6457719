import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../../src/core/events.js';
import type { TranscriptEvent } from '../../../src/core/transcript.js';
import { TranscriptWebhook } from '../../../src/sinks/transcription/webhook.js';
import { newSid } from '../../../src/twilio/sids.js';
import { waitFor } from '../../helpers/wait.js';
import { quietLog } from './helpers.js';

interface Received {
  body: TranscriptEvent;
  contentType: string | undefined;
}

/** A receiver on 127.0.0.1 that answers with `respond(n)` for the n-th request (0-based). */
async function receiver(respond: (n: number, req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string; got: Received[] }> {
  const got: Received[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (data += c));
    req.on('end', () => {
      got.push({ body: JSON.parse(data) as TranscriptEvent, contentType: req.headers['content-type'] });
      respond(n++, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/hooks/transcript`, got };
}

function event(text: string, isFinal = true): TranscriptEvent {
  return {
    text,
    isFinal,
    words: [],
    startMs: 0,
    endMs: 1000,
    accountSid: newSid('account'),
    callSid: newSid('call'),
    streamSid: newSid('stream'),
    conferenceSid: null,
    track: 'inbound',
  };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

describe('TranscriptWebhook', () => {
  it('posts each final transcript as JSON, in order, retrying after a 500', async () => {
    const r = await receiver((n, _req, res) => res.writeHead(n === 0 ? 500 : 204).end());
    servers.push(r.server);
    const hook = new TranscriptWebhook({ url: r.url, log: quietLog, backoffMs: 20 });
    const bus = new EventBus(quietLog);
    hook.attach(bus);
    bus.emit('transcript', event('first'));
    bus.emit('transcript', event('partial', false));
    bus.emit('transcript', event('second'));
    await waitFor(() => hook.stats.sent === 2, 10_000, 'two deliveries');
    // first (500), first again, second.
    expect(r.got.map((g) => g.body.text)).toEqual(['first', 'first', 'second']);
    expect(r.got[0]!.contentType).toBe('application/json');
    expect(r.got[1]!.body).toEqual(r.got[0]!.body);
    expect(hook.stats).toEqual({ sent: 2, failed: 0, dropped: 0, retries: 1 });
    await hook.close();
  });

  it('gives up after maxAttempts, and does not retry a 4xx', async () => {
    const r = await receiver((_n, req, res) => res.writeHead(req.headers['x-kind'] === 'bad' ? 400 : 503).end());
    servers.push(r.server);
    const failing = new TranscriptWebhook({ url: r.url, log: quietLog, backoffMs: 5, maxAttempts: 3 });
    failing.enqueue(event('x'));
    await waitFor(() => failing.stats.failed === 1, 10_000, 'give up');
    expect(r.got).toHaveLength(3);
    expect(failing.stats.retries).toBe(2);

    const rejected = new TranscriptWebhook({ url: r.url, log: quietLog, backoffMs: 5, headers: { 'x-kind': 'bad' } });
    rejected.enqueue(event('y'));
    await waitFor(() => rejected.stats.failed === 1, 10_000, 'rejection');
    expect(r.got).toHaveLength(4);
    expect(rejected.stats.retries).toBe(0);
  });

  it('never blocks the caller: a full queue drops the oldest event and counts it', async () => {
    const held: ServerResponse[] = [];
    const r = await receiver((_n, _req, res) => held.push(res)); // answers only when released
    servers.push(r.server);
    const hook = new TranscriptWebhook({ url: r.url, log: quietLog, queueSize: 2, timeoutMs: 5000 });
    const t0 = performance.now();
    for (const text of ['a', 'b', 'c', 'd']) hook.enqueue(event(text));
    expect(performance.now() - t0).toBeLessThan(50);
    // 'a' is in flight; of b, c, d only the newest two fit.
    expect(hook.stats.dropped).toBe(1);
    await waitFor(() => held.length === 1, 10_000, 'first request');
    for (let i = 0; i < 3; i++) {
      held.shift()!.writeHead(200).end();
      if (i < 2) await waitFor(() => held.length === 1, 10_000, 'next request');
    }
    await waitFor(() => hook.stats.sent === 3, 10_000, 'deliveries');
    expect(r.got.map((g) => g.body.text)).toEqual(['a', 'c', 'd']);
  });

  it('times out a receiver that does not answer, and retries', async () => {
    const r = await receiver((n, _req, res) => {
      if (n > 0) res.writeHead(200).end();
    });
    servers.push(r.server);
    const hook = new TranscriptWebhook({ url: r.url, log: quietLog, timeoutMs: 100, backoffMs: 10 });
    hook.enqueue(event('slow'));
    await waitFor(() => hook.stats.sent === 1, 10_000, 'delivery after timeout');
    expect(hook.stats.retries).toBe(1);
  });
});
