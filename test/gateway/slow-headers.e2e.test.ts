/**
 * Slow-header connections (issue 13, finding 8): 800 sockets that send part of an upgrade
 * request and then nothing. They must not hold the server for Node's default 60 s, one client
 * address may hold only a few of them, and a normal client still gets through meanwhile.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { metricValue, waitFor } from '../helpers/gateway.js';
import { connected, ids, start, stop } from '../helpers/messages.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { startTwilioGateway, type TwilioTestGateway } from '../helpers/gateway.js';

let gw: TwilioTestGateway | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.length = 0;
  await gw?.close();
  gw = undefined;
});

const ATTACKERS = 800;

describe('partial-header connections', () => {
  it('closes 800 slow-header upgrade requests long before 60 s, caps them per address, and serves a normal client meanwhile', async () => {
    const sink = collectingSinkFactory();
    // Load shedding (event-loop delay) is another test's subject: accepting 800 sockets on a busy
    // machine may trip it, and this test is about sockets, not load.
    gw = await startTwilioGateway({ MAX_EVENT_LOOP_DELAY_MS: '60000' }, [sink]);
    const port = Number(new URL(gw.http).port);
    let open = 0;
    let connectedCount = 0;
    const began = Date.now();
    for (let i = 0; i < ATTACKERS; i++) {
      // From another loopback address than the normal client below (Linux routes all of 127/8 to lo).
      const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
      sockets.push(s);
      open++;
      s.on('connect', () => {
        connectedCount++;
        s.write('GET /media HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n');
      });
      s.on('error', () => {});
      // Read (and drop) whatever the server answers, so its close reaches 'close' here.
      s.resume();
      s.on('close', () => open--);
    }
    await waitFor(() => connectedCount === ATTACKERS || open < ATTACKERS, 20_000, 'attack connections');

    // A normal client (another address) is served while the attack is under way…
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);
    const s = ids();
    const ws = new WebSocket(gw.ws, { perMessageDeflate: false });
    await new Promise((resolve, reject) => {
      ws.on('open', resolve);
      ws.on('error', reject);
    });
    ws.send(connected());
    ws.send(start(s));
    ws.send(stop(s, 2));
    await waitFor(() => sink.streams[0]?.closed === 'stopped', 10_000, 'the normal stream');
    ws.close();

    // …most attack sockets were refused at once, the rest closed by the headers timeout.
    expect(await metricValue(gw.http, 'streamgate_upgrade_rejected_total', { reason: 'too_many_pending' })).toBeGreaterThan(ATTACKERS / 2);
    await waitFor(() => open === 0, 30_000, 'every slow-header socket closed');
    expect(Date.now() - began).toBeLessThan(30_000);
  }, 60_000);
});
