/**
 * Hostile streams against a real gateway with the real recording sink (issue 13): a `start`
 * reusing a live streamSid, sockets kept open after `stop`, timestamp jumps, a full data disk.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createRecordingSinkFactory, recoverPartialRecordings } from '../../src/sinks/recording/index.js';
import type { RecordingManifest, RecordingSidecar } from '../../src/sinks/recording/manifest.js';
import { metricValue, startTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { connected, ids, media, start, stop, tone, type StreamIds } from '../helpers/messages.js';
import { readWav, testContext } from '../sinks/recording/helpers.js';

let gw: TestGateway | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await gw?.close();
  gw = undefined;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function dataDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sg-abuse-'));
  dirs.push(d);
  return d;
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('open', () => resolve(ws));
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

const files = (d: string, s: StreamIds) => {
  const base = join(d, 'recordings', s.accountSid, s.callSid, s.streamSid);
  return { partial: `${base}.wav.partial`, sidecar: `${base}.partial.json`, wav: `${base}.wav`, manifest: `${base}.json` };
};

describe('a start that reuses a live streamSid', () => {
  it('is refused with 1008 and counted before any file work; the live stream keeps its sidecar, recovery and manifest', async () => {
    const d = await dataDir();
    gw = await startTestGateway({}, { sinkFactories: [createRecordingSinkFactory({ dataDir: d })] });
    const a = ids();
    const wsA = await open(gw.ws);
    wsA.send(connected());
    wsA.send(start(a, { customParameters: { owner: 'a' } }));
    for (let i = 0; i < 50; i++) wsA.send(media(a, i + 2, i + 1, 20 * i, tone(i)));
    const f = files(d, a);
    await waitFor(() => {
      try {
        return (JSON.parse(readFileSync(f.sidecar, 'utf8')) as RecordingSidecar).mediaStartMs === 0;
      } catch {
        return false;
      }
    }, 10_000, "A's sidecar with its media start");

    // The intruder: same SIDs, both tracks, its own parameters.
    const wsB = await open(gw.ws);
    const bClosed = closed(wsB);
    wsB.send(connected());
    wsB.send(start(a, { tracks: ['inbound', 'outbound'], customParameters: { owner: 'b' } }));
    expect(await bClosed).toEqual({ code: 1008, reason: 'stream_sid_in_use' });
    expect(await metricValue(gw.http, 'streamgate_protocol_errors_total', { reason: 'stream_sid_in_use' })).toBe(1);
    expect(await metricValue(gw.http, 'streamgate_streams_total', { outcome: 'rejected' })).toBe(1);
    const sidecar = JSON.parse(readFileSync(f.sidecar, 'utf8')) as RecordingSidecar;
    expect(sidecar).toMatchObject({ channels: 1, tracks: ['inbound'], customParameters: { owner: 'a' } });

    // A kill -9 now: recovery of A's files says mono, A's parameters, A's 50 frames.
    const crashed = await dataDir();
    const cf = files(crashed, a);
    mkdirSync(join(crashed, 'recordings', a.accountSid, a.callSid), { recursive: true });
    copyFileSync(f.partial, cf.partial);
    copyFileSync(f.sidecar, cf.sidecar);
    const report = await recoverPartialRecordings(crashed, testContext().log);
    expect(report.recovered[0]!.manifest).toMatchObject({ channels: 1, tracks: ['inbound'], customParameters: { owner: 'a' }, error: null });

    // A goes on and finishes as if nothing happened.
    const aClosed = closed(wsA);
    for (let i = 50; i < 60; i++) wsA.send(media(a, i + 2, i + 1, 20 * i, tone(i)));
    wsA.send(stop(a, 62));
    await waitFor(() => gw!.gw.registry.sessions.size === 0, 10_000, 'A finalised');
    wsA.close();
    await aClosed;
    const manifest = JSON.parse(readFileSync(f.manifest, 'utf8')) as RecordingManifest;
    expect(manifest).toMatchObject({ channels: 1, customParameters: { owner: 'a' }, framesReceived: 60, durationMs: 1200, error: null });
    expect(readWav(f.wav).channels).toBe(1);
  });

  it('is accepted again once the first stream has ended (the SID is released with its files finalised)', async () => {
    gw = await startTestGateway({}, { sinkFactories: [] });
    const a = ids();
    for (let round = 0; round < 2; round++) {
      const ws = await open(gw.ws);
      const done = closed(ws);
      ws.send(connected());
      ws.send(start(a));
      ws.send(stop(a, 2));
      await waitFor(() => gw!.gw.registry.sessions.size === 0, 10_000, 'stream finalised');
      ws.close(1000);
      expect((await done).code).toBe(1000);
    }
    expect(await metricValue(gw.http, 'streamgate_streams_total', { outcome: 'stopped' })).toBe(2);
    expect(await metricValue(gw.http, 'streamgate_protocol_errors_total', { reason: 'stream_sid_in_use' })).toBe(0);
  });
});
