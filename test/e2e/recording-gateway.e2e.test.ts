/**
 * The recording archive through the real gateway: the real capture over a real WebSocket into
 * `streamgate start`, a SIGKILL mid-stream followed by a restart that repairs the partial file,
 * and a disk that cannot keep up with a small RECORDING_BUFFER_MS.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { EventBus } from '../../src/core/events.js';
import { loadConfig } from '../../src/gateway/config.js';
import { createLogger } from '../../src/gateway/logger.js';
import { createLevelSinkFactory } from '../../src/sinks/level/level-sink.js';
import { createRecordingSinkFactory } from '../../src/sinks/recording/index.js';
import { captureLines, decodePayloads } from '../helpers/capture.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { metricValue, startTestGateway, waitFor } from '../helpers/gateway.js';
import { connected, ids, media, start, stop, tone } from '../helpers/messages.js';
import { runCli } from '../helpers/process.js';
import { channel, g711All, readWav, soxInfo } from '../sinks/recording/helpers.js';

const ACCOUNT = 'AC437bfe093bc08b7c0e971c080618c83e';
const CALL = 'CAc17e4a124d5375ccacd5f673ac6764b4';
const STREAM = 'MZ726559aad844c8e924c9d32545e4e46f';

async function startGateway(dataDir: string) {
  const cli = runCli(['start'], { PORT: '0', TRANSCRIPTION: 'none', STREAMGATE_DATA_DIR: dataDir });
  const line = await cli.waitForLine((l) => l.msg === 'streamgate listening');
  return { cli, ws: String(line.address).replace('http', 'ws') + '/media' };
}

describe('recording through the gateway', () => {
  it('writes the real call as a WAV equal to an independent G.711 decode, with its manifest', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-rec-e2e-'));
    const { cli, ws: url } = await startGateway(dataDir);
    try {
      const lines = captureLines();
      const ws = new WebSocket(url);
      await new Promise((r) => ws.on('open', r));
      // 10x real time: the recording buffer (RECORDING_BUFFER_MS, 5 s) must not be outrun by
      // an unpaced burst, which the sink would count as dropped (as designed).
      for (const l of lines) {
        ws.send(l);
        await new Promise((r) => setTimeout(r, 2));
      }
      await cli.waitForLine((l) => l.msg === 'stream ended');
      ws.close();
      const base = join(dataDir, 'recordings', ACCOUNT, CALL, STREAM);
      const wav = readWav(base + '.wav');
      expect(Array.from(channel(wav, 0))).toEqual(Array.from(decodePayloads(lines)));
      const info = await soxInfo(base + '.wav');
      expect(info['Channels']).toBe('1');
      expect(info['Sample Rate']).toBe('8000');
      expect(info['Duration']).toMatch(/^00:00:07\.26 = 58080 samples/);
      const manifest = JSON.parse(await readFile(base + '.json', 'utf8'));
      expect(manifest).toMatchObject({ streamSid: STREAM, callSid: CALL, framesReceived: 363, framesLost: 0, durationMs: 7260, recovered: false });
      expect(manifest.customParameters).toEqual({ StateName: 'IRS', IsScoutCall: 'no' });
    } finally {
      cli.child.kill('SIGTERM');
      await cli.exited;
    }
  });

  it('after SIGKILL while frames are still arriving in real time, the restarted gateway repairs the partial file: every frame sent up to a second before the kill, sample-exact', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-rec-kill-'));
    const first = await startGateway(dataDir);
    // Killed by the test's own timer below; also when the test fails before it (no stray gateway).
    onTestFinished(() => void first.cli.child.kill('SIGKILL'));
    const lines = captureLines(); // connected, start, 363 media frames (7.26 s), stop
    const frames = lines.slice(2, -1);
    const ws = new WebSocket(first.ws);
    // A refused upgrade fails the test at once, with the server's answer, instead of timing out.
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.on('error', () => undefined);
    ws.send(lines[0]!);
    ws.send(lines[1]!);
    await first.cli.waitForLine((l) => l.msg === 'stream started');
    // Twilio's pacing: frame i leaves at t0 + 20 ms * i, on an absolute schedule (no drift). The
    // kill comes from its own timer, between two sends, 4.87 s in (off the sink's 0.5 s flush
    // grid), while frames are still being sent.
    const sentAt: number[] = [];
    const t0 = performance.now();
    let killAt = Number.POSITIVE_INFINITY;
    const killed = new Promise<void>((resolve) =>
      setTimeout(() => {
        killAt = performance.now();
        first.cli.child.kill('SIGKILL');
        resolve();
      }, 4870),
    );
    for (let i = 0; i < frames.length && performance.now() < killAt; i++) {
      const due = t0 + 20 * i;
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
      if (performance.now() >= killAt || ws.readyState !== WebSocket.OPEN) break;
      ws.send(frames[i]!);
      sentAt.push(performance.now());
    }
    await killed;
    expect(await first.cli.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const sentBeforeKill = sentAt.filter((t) => t < killAt).length;
    const dueOneSecondBefore = sentAt.filter((t) => t <= killAt - 1000).length;
    expect(sentBeforeKill).toBeGreaterThanOrEqual(230); // the stream was live: ~244 frames by then
    expect(sentBeforeKill).toBeLessThan(frames.length);
    const base = join(dataDir, 'recordings', ACCOUNT, CALL, STREAM);
    expect(existsSync(base + '.wav.partial')).toBe(true);
    expect(existsSync(base + '.wav')).toBe(false);

    const second = await startGateway(dataDir);
    try {
      await second.cli.waitForLine((l) => l.msg === 'repaired partial recordings from an earlier crash');
      const wav = readWav(base + '.wav');
      expect(wav.riffSize).toBe(wav.size - 8);
      expect(wav.dataOffset + wav.dataSize).toBe(wav.size);
      const samples = channel(wav, 0);
      const sent = decodePayloads(frames.slice(0, sentBeforeKill));
      // Every frame sent up to a second before the kill is in the file, and what is there is
      // exactly what was sent (a prefix: nothing invented, nothing out of place).
      expect(samples.length).toBeGreaterThanOrEqual(dueOneSecondBefore * 160);
      expect(samples.length).toBeLessThanOrEqual(sent.length);
      expect(Buffer.from(samples.buffer).equals(Buffer.from(sent.buffer, 0, samples.length * 2))).toBe(true);
      const manifest = JSON.parse(await readFile(base + '.json', 'utf8'));
      expect(manifest).toMatchObject({ streamSid: STREAM, recovered: true, durationMs: samples.length / 8, bytes: wav.size });
      const info = await soxInfo(base + '.wav');
      expect(info['Sample Rate']).toBe('8000');
      expect(info['Duration']).toContain(`= ${samples.length} samples`);
      expect((await readdir(join(dataDir, 'recordings', ACCOUNT, CALL))).filter((f) => f.includes('.partial'))).toEqual([]);
      console.log(`SIGKILL: ${sentBeforeKill} frames sent before the kill, ${samples.length / 160} recovered (${Math.round((sent.length - samples.length) / 8)} ms lost)`);
    } finally {
      second.cli.child.kill('SIGTERM');
      await second.cli.exited;
    }
  });

  it('when the disk cannot keep up (RECORDING_BUFFER_MS=100, unpaced frames), drops are counted, listed as dropped gaps, and the other sinks get every frame', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-rec-slow-'));
    const env = { RECORDING_BUFFER_MS: '100', STREAMGATE_DATA_DIR: dataDir };
    // The recording and level sinks as app.ts builds them from the configuration, then a
    // collecting sink last in the fan-out, behind the one that drops.
    const config = loadConfig({ TRANSCRIPTION: 'none', ...env });
    const collect = collectingSinkFactory();
    const bus = new EventBus(createLogger('silent'));
    const sinks = [
      createRecordingSinkFactory({ dataDir: config.dataDir, format: config.recordingFormat, bufferMs: config.recordingBufferMs }),
      createLevelSinkFactory({ bus }),
      collect,
    ];
    const gw = await startTestGateway(env, { sinkFactories: sinks, bus });
    try {
      // 60 s of audio in bursts of 25 frames (0.5 s) a few ms apart: each burst outruns the
      // 100 ms buffer while the writer is still busy with the last one, so drops and written
      // stretches alternate through the file.
      const N = 3000;
      const s = ids();
      const ws = new WebSocket(gw.ws);
      await new Promise((r) => ws.on('open', r));
      ws.send(connected());
      ws.send(start(s));
      for (let i = 0; i < N; i++) {
        ws.send(media(s, i + 2, i + 1, 20 * i, tone(i)));
        if (i % 25 === 24) await new Promise((r) => setTimeout(r, 3));
      }
      ws.send(stop(s, N + 2));
      await waitFor(() => gw.gw.registry.startedCount === 0 && gw.gw.registry.sessions.size === 0 && collect.streams.length === 1, 20_000, 'stream ended and finalised');
      ws.close();

      const dropped = await metricValue(gw.http, 'streamgate_sink_dropped_frames_total', { sink: 'recording' });
      expect(dropped).toBeGreaterThan(0);
      expect(await metricValue(gw.http, 'streamgate_sink_dropped_frames_total', { sink: 'level' })).toBe(0);
      expect(await metricValue(gw.http, 'streamgate_sink_dropped_frames_total', { sink: 'collect' })).toBe(0);
      expect(await metricValue(gw.http, 'streamgate_sink_errors_total', { sink: 'recording' })).toBe(0);
      expect(await metricValue(gw.http, 'streamgate_sink_errors_total', { sink: 'level' })).toBe(0);
      expect(await metricValue(gw.http, 'streamgate_media_frames_total', { track: 'inbound' })).toBe(N);
      expect(await metricValue(gw.http, 'streamgate_media_frames_lost_total')).toBe(0);

      // The manifest: the drops are the metric's, each one a 'dropped' gap; nothing else missing.
      const base = join(dataDir, 'recordings', s.accountSid, s.callSid, s.streamSid);
      const manifest = JSON.parse(await readFile(base + '.json', 'utf8'));
      expect(manifest).toMatchObject({ framesReceived: N, framesDropped: dropped, framesLost: 0, framesLate: 0, framesDuplicate: 0, durationMs: N * 20, closeReason: 'stopped', recovered: false, error: null });
      const gaps = manifest.gaps as { track: string; startMs: number; lengthMs: number; cause: string }[];
      expect(gaps.length).toBeGreaterThan(1);
      expect(gaps.every((g) => g.cause === 'dropped' && g.track === 'inbound')).toBe(true);
      expect(gaps.reduce((ms, g) => ms + g.lengthMs, 0)).toBe(dropped * 20);

      // The file keeps time: a dropped frame is silence at its place, every other frame is exact.
      const inGap = (i: number) => gaps.some((g) => 20 * i >= g.startMs && 20 * i + 20 <= g.startMs + g.lengthMs);
      const wav = readWav(base + '.wav');
      const samples = channel(wav, 0);
      expect(samples.length).toBe(N * 160);
      let silent = 0;
      for (let i = 0; i < N; i++) {
        const got = samples.subarray(i * 160, i * 160 + 160);
        if (inGap(i)) {
          silent++;
          expect(got.every((x) => x === 0), `frame ${i} (dropped) is silence`).toBe(true);
        } else expect(Buffer.from(got.buffer, got.byteOffset, 320).equals(Buffer.from(g711All(tone(i)).buffer)), `frame ${i}`).toBe(true);
      }
      expect(silent).toBe(dropped);

      // The sink after the recording got every frame, in order, byte-exact.
      const c = collect.streams[0]!;
      expect(c.closed).toBe('stopped');
      expect(c.frames).toHaveLength(N);
      c.frames.forEach((f, i) => expect(f.timestampMs === 20 * i && Buffer.from(f.mulaw).equals(Buffer.from(tone(i))), `collected frame ${i}`).toBe(true));
      console.log(`slow disk: ${dropped} of ${N} frames dropped by the recording in ${gaps.length} gaps`);
    } finally {
      await gw.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
