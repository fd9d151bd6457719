/**
 * Hostile streams against a real gateway with the real recording sink (issue 13): a `start`
 * reusing a live streamSid, sockets kept open after `stop`, timestamp jumps, a full data disk.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statfsSync, statSync, unlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../src/gateway/config.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { createRecordingSinkFactory, recoverPartialRecordings } from '../../src/sinks/recording/index.js';
import type { RecordingManifest, RecordingSidecar } from '../../src/sinks/recording/manifest.js';
import { metricValue, startTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { connected, ids, media, start, stop, tone, type StreamIds } from '../helpers/messages.js';
import { runCli } from '../helpers/process.js';
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

/**
 * A peer that speaks just enough WebSocket to stream (hand-made upgrade, masked text frames) and
 * never answers a close frame: what a misbehaving client leaves behind. Records the close codes
 * the server sends.
 */
interface RawPeer {
  socket: Socket;
  send(text: string): void;
  closeCodes: number[];
  ended: Promise<void>;
}

function rawPeer(wsUrl: string): Promise<RawPeer> {
  const { hostname, port } = new URL(wsUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const closeCodes: number[] = [];
    const ended = new Promise<void>((r) => socket.on('close', () => r()));
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      socket.write(`GET /media HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(head.split('\r\n')[0]));
        upgraded = true;
        resolve({ socket, send: (text) => socket.write(maskedText(text)), closeCodes, ended });
      }
      // Server frames are unmasked; only close frames (opcode 8) matter here.
      while (buf.length >= 2) {
        let len = buf[1]! & 0x7f;
        let at = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          at = 4;
        }
        if (buf.length < at + len) return;
        if ((buf[0]! & 0x0f) === 8 && len >= 2) closeCodes.push(buf.readUInt16BE(at));
        buf = buf.subarray(at + len);
      }
    });
  });
}

function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x81, 0x80 | n]) : Buffer.from([0x81, 0x80 | 126, n >> 8, n & 0xff]);
  const mask = Buffer.from([1, 2, 3, 4]);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}

describe('a socket kept open after stop', () => {
  it('is closed by the server with 1000 after a short grace', async () => {
    gw = await startTestGateway({}, { sinkFactories: [] });
    const s = ids();
    const ws = await open(gw.ws);
    const done = closed(ws);
    ws.send(connected());
    ws.send(start(s));
    ws.send(media(s, 2, 1, 0, tone(0)));
    ws.send(stop(s, 3));
    // The client never closes: only the server can end this.
    expect(await done).toEqual({ code: 1000, reason: 'stopped' });
  });

  it('counts toward MAX_STREAMS until it is gone, and is destroyed when the peer ignores the close', async () => {
    gw = await startTestGateway({ MAX_STREAMS: '1' }, { sinkFactories: [] });
    const s = ids();
    const peer = await rawPeer(gw.ws);
    peer.send(connected());
    peer.send(start(s));
    peer.send(stop(s, 2));
    await waitFor(() => gw!.gw.registry.sessions.size === 0, 10_000, 'the stopped session to end');
    // The session is gone but its socket is not: no room for another stream.
    await expect(open(gw.ws)).rejects.toMatchObject({ status: 503 });
    expect(await metricValue(gw.http, 'streamgate_upgrade_rejected_total', { reason: 'capacity' })).toBe(1);
    await peer.ended; // closed with 1000, then destroyed since it never answered
    expect(peer.closeCodes).toEqual([1000]);
    const next = await open(gw.ws);
    next.close(1000);
  });

  it('does not hold up SIGTERM: the process exits 0 promptly', async () => {
    const d = await dataDir();
    const cli = runCli(['start'], { PORT: '0', DRAIN_TIMEOUT: '20', TRANSCRIPTION: 'none', STREAMGATE_DATA_DIR: d });
    try {
      const listening = await cli.waitForLine((l) => l.msg === 'streamgate listening', 45_000);
      const peer = await rawPeer(String(listening.address).replace('http', 'ws') + '/media');
      const s = ids();
      peer.send(connected());
      peer.send(start(s));
      peer.send(stop(s, 2));
      await cli.waitForLine((l) => l.msg === 'stream ended', 30_000);
      cli.child.kill('SIGTERM');
      // Without tracking the socket the HTTP server's close waited for it until the 80 s backstop.
      const exit = await Promise.race([cli.exited, new Promise((r) => setTimeout(() => r('still running after 25 s'), 25_000))]);
      expect(exit).toEqual({ code: 0, signal: null });
      await peer.ended;
    } finally {
      cli.child.kill('SIGKILL');
    }
  }, 120_000);
});

describe('media timestamps', () => {
  it('a jump past MAX_GAP_MS is counted and kept as a discontinuity: the WAV goes on without the silence', async () => {
    const d = await dataDir();
    gw = await startTestGateway({ MAX_GAP_MS: '1000' }, { sinkFactories: [createRecordingSinkFactory({ dataDir: d, maxGapMs: 1000 })] });
    const s = ids();
    const ws = await open(gw.ws);
    ws.send(connected());
    ws.send(start(s));
    for (let i = 0; i < 10; i++) ws.send(media(s, i + 2, i + 1, 20 * i, tone(i)));
    for (let i = 10; i < 20; i++) ws.send(media(s, i + 2, i + 1, 20 * i + 3000, tone(i)));
    ws.send(stop(s, 22));
    await waitFor(() => gw!.gw.registry.sessions.size === 0, 10_000, 'stream finalised');
    ws.close(1000);
    expect(await metricValue(gw.http, 'streamgate_protocol_errors_total', { reason: 'timestamp_jump' })).toBe(1);
    const f = files(d, s);
    const m = JSON.parse(readFileSync(f.manifest, 'utf8')) as RecordingManifest;
    expect(m).toMatchObject({ framesReceived: 20, durationMs: 400, gaps: [], discontinuities: [{ fileMs: 200, mediaMs: 3200, skippedMs: 3000 }], closeReason: 'stopped' });
    expect(statSync(f.wav).size).toBe(44 + 20 * 320);
    expect(gw.logs.some((l) => l.includes('recorded as a discontinuity'))).toBe(true);
  });

  for (const [what, first, second] of [
    ['an hour ahead', 0, 3_600_000],
    ['2^31 ms ahead', 0, 2_147_483_648],
    ['15 digits on the first frame', 999_999_999_999_999, 999_999_999_999_999 + 20],
  ] as const) {
    it(`closes a stream whose media time runs far ahead of the wall clock (${what}): 1008, counted, logged, nothing written for it`, async () => {
      const d = await dataDir();
      gw = await startTestGateway({}, { sinkFactories: [createRecordingSinkFactory({ dataDir: d })] });
      const s = ids();
      const ws = await open(gw.ws);
      const done = closed(ws);
      ws.send(connected());
      ws.send(start(s));
      ws.send(media(s, 2, 1, first, tone(0)));
      ws.send(media(s, 3, 2, second, tone(1)));
      expect(await done).toEqual({ code: 1008, reason: 'timestamp_ahead_of_clock' });
      expect(await metricValue(gw.http, 'streamgate_protocol_errors_total', { reason: 'timestamp_ahead_of_clock' })).toBe(1);
      await waitFor(() => gw!.gw.registry.sessions.size === 0, 10_000, 'stream finalised');
      const m = JSON.parse(readFileSync(files(d, s).manifest, 'utf8')) as RecordingManifest;
      expect(m.closeReason).toBe('protocol-error');
      expect(statSync(files(d, s).wav).size).toBeLessThanOrEqual(44 + 320);
      expect(gw.logs.some((l) => l.includes('timestamp_ahead_of_clock'))).toBe(true);
    });
  }

  it('MAX_GAP_MS and RECORDING_MAX_MB are bounded: a WAV can never reach 4 GiB', () => {
    expect(loadConfig({}).maxGapMs).toBe(5000);
    expect(loadConfig({}).recordingMaxMb).toBe(4095);
    expect(() => loadConfig({ RECORDING_MAX_MB: '4096' })).toThrow(/RECORDING_MAX_MB must be between 1 and 4095/);
    expect(() => loadConfig({ DATA_DIR_MIN_FREE_MB: '-1' })).toThrow(/DATA_DIR_MIN_FREE_MB/);
  });
});

describe('the data disk running low', () => {
  it('stops live recordings (manifest says disk_low, counted) and refuses new streams with 503 disk_low until space is back', async () => {
    const d = await dataDir();
    const st = statfsSync(d);
    const free = Number(st.bavail) * Number(st.bsize);
    // A floor 1 GiB under today's free space, then a real 3 GiB file: the disk is "low" for us.
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    const factory = createRecordingSinkFactory({ dataDir: d, minFreeBytes: free - 2 ** 30, diskCheckIntervalMs: 50, stats: metrics.recording });
    gw = await startTestGateway({}, { metrics, sinkFactories: [factory] });
    const s = ids();
    const ws = await open(gw.ws);
    ws.send(connected());
    ws.send(start(s));
    for (let i = 0; i < 10; i++) ws.send(media(s, i + 2, i + 1, 20 * i, tone(i)));
    const ballast = join(d, 'ballast');
    await waitFor(() => gw!.logs.some((l) => l.includes('"msg":"stream started"')), 10_000, 'stream started');
    execFileSync('fallocate', ['-l', String(3 * 2 ** 30), ballast]);
    await waitFor(async () => (await metricValue(gw!.http, 'streamgate_recording_stopped_total', { reason: 'disk_low' })) === 1, 10_000, 'recording stopped');
    await expect(open(gw.ws)).rejects.toMatchObject({ status: 503 });
    expect(await metricValue(gw.http, 'streamgate_upgrade_rejected_total', { reason: 'disk_low' })).toBe(1);
    // The live stream goes on; its recording takes no more audio.
    for (let i = 10; i < 20; i++) ws.send(media(s, i + 2, i + 1, 20 * i, tone(i)));
    ws.send(stop(s, 22));
    await waitFor(() => gw!.gw.registry.sessions.size === 0, 10_000, 'stream finalised');
    ws.close(1000);
    const m = JSON.parse(readFileSync(files(d, s).manifest, 'utf8')) as RecordingManifest;
    expect(m).toMatchObject({ stopped: 'disk_low', framesReceived: 20, framesDropped: 10, closeReason: 'stopped', error: null });
    expect(m.durationMs).toBeGreaterThanOrEqual(200);
    // Space back: admitted again.
    unlinkSync(ballast);
    await waitFor(async () => {
      try {
        (await open(gw!.ws)).close(1000);
        return true;
      } catch {
        return false;
      }
    }, 10_000, 'admitted again');
  });
});
