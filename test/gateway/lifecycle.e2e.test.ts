import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { drainAndClose } from '../../src/gateway/lifecycle.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { metricValue, replay, startTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { connected, ids, media, start, stop, tone } from '../helpers/messages.js';
import { runCli } from '../helpers/process.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => resolve(ws));
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe('admission control', () => {
  it('refuses upgrades beyond MAX_STREAMS with 503 and counts them, without touching live streams', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({ MAX_STREAMS: '2' }, { sinkFactories: [sink] });
    const a = ids();
    const b = ids();
    const wa = await open(gw.ws);
    const wb = await open(gw.ws);
    wa.send(connected());
    wa.send(start(a));
    wb.send(connected());
    wb.send(start(b));
    await expect(open(gw.ws)).rejects.toMatchObject({ status: 503 });
    expect(await metricValue(gw.http, 'streamgate_upgrade_rejected_total', { reason: 'capacity' })).toBe(1);
    for (let i = 0; i < 10; i++) wa.send(media(a, i + 2, i + 1, 100 + 20 * i, tone(i)));
    wa.send(stop(a, 12));
    await waitFor(() => sink.streams.find((s) => s.info.streamSid === a.streamSid)?.closed === 'stopped');
    expect(sink.streams.find((s) => s.info.streamSid === a.streamSid)!.frames).toHaveLength(10);
    wa.close();
    wb.close();
  });
});

describe('timeouts', () => {
  it('closes a socket that sends no start within HANDSHAKE_TIMEOUT', async () => {
    gw = await startTestGateway({ HANDSHAKE_TIMEOUT: '1' });
    const ws = await open(gw.ws);
    ws.send(connected());
    const res = await closed(ws);
    expect(res).toEqual({ code: 1008, reason: 'handshake_timeout' });
    expect(await metricValue(gw.http, 'streamgate_protocol_errors_total', { reason: 'handshake_timeout' })).toBe(1);
  });

  it('closes a started stream that goes quiet for STALL_TIMEOUT as stalled', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({ STALL_TIMEOUT: '1' }, { sinkFactories: [sink] });
    const s = ids();
    const ws = await open(gw.ws);
    ws.send(connected());
    ws.send(start(s));
    ws.send(media(s, 2, 1, 100, tone(1)));
    const res = await closed(ws);
    expect(res.code).toBe(1008);
    expect(res.reason).toBe('stalled');
    await waitFor(() => sink.streams[0]?.closed === 'stalled');
    expect(await metricValue(gw.http, 'streamgate_streams_total', { outcome: 'stalled' })).toBe(1);
  });
});

describe('drain', () => {
  it('answers 503 on /readyz and new upgrades while live streams finish, then closes', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({}, { sinkFactories: [sink] });
    const s = ids();
    const ws = await open(gw.ws);
    ws.send(connected());
    ws.send(start(s));
    await waitFor(() => gw!.gw.registry.startedCount === 1);
    const draining = drainAndClose(gw.gw, 10_000);
    expect((await fetch(gw.http + '/readyz')).status).toBe(503);
    expect((await fetch(gw.http + '/healthz')).status).toBe(200);
    await expect(open(gw.ws)).rejects.toMatchObject({ status: 503 });
    expect(await metricValue(gw.http, 'streamgate_upgrade_rejected_total', { reason: 'draining' })).toBe(1);
    // the live stream goes on during the drain and loses nothing
    for (let i = 0; i < 25; i++) ws.send(media(s, i + 2, i + 1, 100 + 20 * i, tone(i)));
    ws.send(stop(s, 27));
    ws.close();
    await draining;
    expect(sink.streams[0]!.frames).toHaveLength(25);
    expect(sink.streams[0]!.closed).toBe('stopped');
  });

  it('closes streams still live at DRAIN_TIMEOUT with 1001 after their sinks finalised', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({}, { sinkFactories: [sink] });
    const s = ids();
    const ws = await open(gw.ws);
    const done = closed(ws);
    ws.send(connected());
    ws.send(start(s));
    ws.send(media(s, 2, 1, 100, tone(1)));
    await waitFor(() => sink.streams[0]?.frames.length === 1);
    await drainAndClose(gw.gw, 200);
    expect(await done).toEqual({ code: 1001, reason: 'shutdown' });
    expect(sink.streams[0]!.closed).toBe('shutdown');
    gw = undefined;
  });
});

describe('process lifecycle', () => {
  it('on SIGTERM drains the live stream, then exits 0', async () => {
    const cli = runCli(['start'], { PORT: '0', DRAIN_TIMEOUT: '20', TRANSCRIPTION: 'none', STREAMGATE_DATA_DIR: '/tmp/streamgate-lifecycle-test' });
    try {
      const listening = await cli.waitForLine((l) => l.msg === 'streamgate listening');
      const http = String(listening.address);
      const s = ids();
      const ws = await open(http.replace('http', 'ws') + '/media');
      ws.send(connected());
      ws.send(start(s));
      await cli.waitForLine((l) => l.msg === 'stream started');
      cli.child.kill('SIGTERM');
      await cli.waitForLine((l) => l.msg === 'draining');
      expect((await fetch(http + '/readyz')).status).toBe(503);
      for (let i = 0; i < 10; i++) ws.send(media(s, i + 2, i + 1, 100 + 20 * i, tone(i)));
      ws.send(stop(s, 12));
      const ended = await cli.waitForLine((l) => l.msg === 'stream ended');
      expect(ended).toMatchObject({ outcome: 'stopped', frames: 10, lost: 0 });
      ws.close();
      expect(await cli.exited).toEqual({ code: 0, signal: null });
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  it('stops start-up with one line naming a bad variable', async () => {
    const cli = runCli(['start'], { PORT: 'eighty' });
    const exit = await cli.exited;
    expect(exit.code).toBe(1);
    expect(cli.stderr.join('')).toBe('streamgate: PORT must be a whole number, got "eighty"\n');
  });
});

describe('replay helper sanity', () => {
  it('a stream replayed after a drained gateway closed is refused', async () => {
    gw = await startTestGateway();
    const url = gw.ws;
    await gw.close();
    gw = undefined;
    await expect(replay(url, [connected()])).rejects.toBeDefined();
  });
});
