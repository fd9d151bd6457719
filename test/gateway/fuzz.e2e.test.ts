/**
 * Socket-level fuzz: 100,000+ malformed, truncated, oversized, wrongly typed, out-of-order and
 * binary messages over many connections, while healthy streams run beside them. The gateway
 * must not crash, the healthy streams must lose nothing, and every bad stream must be closed
 * with a counted reason.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { startTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { connected, ids, media, start, stop, tone } from '../helpers/messages.js';

const CONNECTIONS = 400;
const MESSAGES_PER_CONNECTION = 260; // 400 x 260 = 104,000 messages
const HEALTHY = 8;

let gw: TestGateway;
const sink = collectingSinkFactory();
beforeAll(async () => {
  gw = await startTestGateway({ MAX_MESSAGE_BYTES: '8192', LOG_LEVEL: 'error' }, { sinkFactories: [sink] });
});
afterAll(() => gw.close());

/** One hostile message: the generators cover each class of bad input the gateway must refuse. */
function hostileMessages(seed: number, s: ReturnType<typeof ids>): (string | Buffer)[] {
  const good = media(s, 2, 1, 100, tone(1));
  const arb = fc.oneof(
    fc.string({ maxLength: 300 }), // not JSON, mostly
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)), // JSON of the wrong shape
    fc.nat({ max: good.length - 1 }).map((n) => good.slice(0, n)), // truncated
    fc.constantFrom('media', 'start', 'stop', 'dtmf', 'mark').chain((event) =>
      fc.record({ event: fc.constant(event), sequenceNumber: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), streamSid: fc.string(), media: fc.anything() }).map((o) => JSON.stringify(o)),
    ), // wrongly typed
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)), // binary
    fc.constant('{"event":"media","payload":"' + 'A'.repeat(9000) + '"}'), // oversized
  );
  return fc.sample(arb, { seed, numRuns: MESSAGES_PER_CONNECTION });
}

describe('socket fuzz', () => {
  it('survives 100k hostile messages while healthy streams lose nothing', async () => {
    // Healthy streams: 8 real-time-ish streams of 150 frames each, 20 ms apart.
    const healthy = await Promise.all(
      Array.from({ length: HEALTHY }, async () => {
        const s = ids();
        const ws = new WebSocket(gw.ws);
        await new Promise((r) => ws.on('open', r));
        ws.send(connected());
        ws.send(start(s));
        return { s, ws };
      }),
    );
    let frame = 0;
    const ticker = setInterval(() => {
      if (frame >= 150) return;
      for (const h of healthy) h.ws.send(media(h.s, frame + 2, frame + 1, 100 + 20 * frame, tone(frame)));
      frame++;
    }, 20);

    let sent = 0;
    let closedWithCode = 0;
    const codes = new Map<number, number>();
    for (let batch = 0; batch < CONNECTIONS; batch += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, k) =>
          new Promise<void>((resolve) => {
            const i = batch + k;
            const s = ids();
            const ws = new WebSocket(gw.ws);
            ws.on('open', () => {
              // Half the connections start properly first, so bad input also hits a live stream.
              if (i % 2 === 0) {
                ws.send(connected());
                ws.send(start(s));
              }
              for (const m of hostileMessages(i, s)) {
                ws.send(m, { binary: Buffer.isBuffer(m) });
                sent++;
              }
            });
            ws.on('close', (code) => {
              codes.set(code, (codes.get(code) ?? 0) + 1);
              if (code !== 1006 && code !== 1005) closedWithCode++;
              resolve();
            });
            ws.on('error', () => undefined);
          }),
        ),
      );
    }
    expect(sent).toBeGreaterThanOrEqual(100_000);

    await waitFor(() => frame >= 150, 10_000, 'healthy frames sent');
    for (const h of healthy) h.ws.send(stop(h.s, 152));
    clearInterval(ticker);
    await waitFor(() => healthy.every((h) => sink.streams.find((c) => c.info.streamSid === h.s.streamSid)?.closed === 'stopped'), 10_000, 'healthy streams stopped');
    for (const h of healthy) {
      const c = sink.streams.find((x) => x.info.streamSid === h.s.streamSid)!;
      expect(c.frames).toHaveLength(150);
      h.ws.close();
    }
    // Every hostile connection was closed by the gateway with a protocol close code.
    expect(closedWithCode).toBe(CONNECTIONS);
    for (const code of codes.keys()) expect([1002, 1003, 1007, 1008, 1009]).toContain(code);
    const text = await (await fetch(gw.http + '/metrics')).text();
    const errors = text
      .split('\n')
      .filter((l) => l.startsWith('streamgate_protocol_errors_total{'))
      .reduce((n, l) => n + Number(l.split(' ')[1]), 0);
    expect(errors).toBeGreaterThanOrEqual(CONNECTIONS);
    expect((await fetch(gw.http + '/healthz')).status).toBe(200);
  }, 90_000);
});
