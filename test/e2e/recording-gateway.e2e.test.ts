/**
 * The recording archive through the real gateway process: the real capture over a real
 * WebSocket into `streamgate start`, and a SIGKILL mid-stream followed by a restart that
 * repairs the partial file.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { captureLines, decodePayloads } from '../helpers/capture.js';
import { runCli } from '../helpers/process.js';
import { channel, readWav, soxInfo } from '../sinks/recording/helpers.js';

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

  it('after SIGKILL mid-stream, the restarted gateway repairs the partial file, losing at most a second', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-rec-kill-'));
    const first = await startGateway(dataDir);
    const lines = captureLines();
    const ws = new WebSocket(first.ws);
    await new Promise((r) => ws.on('open', r));
    ws.on('error', () => undefined);
    // connected + start, then 250 frames (5 s of audio) paced at 2 ms, then the kill.
    ws.send(lines[0]!);
    ws.send(lines[1]!);
    for (let i = 2; i < 252; i++) {
      ws.send(lines[i]!);
      await new Promise((r) => setTimeout(r, 2));
    }
    await new Promise((r) => setTimeout(r, 1200)); // past a flush tick, as a live call would be
    first.cli.child.kill('SIGKILL');
    await first.cli.exited;
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
      const expected = decodePayloads(lines.slice(0, 252));
      // Everything that reached the disk is exact, and at most one second (8000 samples) is missing.
      expect(samples.length).toBeGreaterThanOrEqual(expected.length - 8000);
      expect(Array.from(samples)).toEqual(Array.from(expected.subarray(0, samples.length)));
      const manifest = JSON.parse(await readFile(base + '.json', 'utf8'));
      expect(manifest.recovered).toBe(true);
      expect((await soxInfo(base + '.wav'))['Sample Rate']).toBe('8000');
      expect((await readdir(join(dataDir, 'recordings', ACCOUNT, CALL))).filter((f) => f.includes('.partial'))).toEqual([]);
    } finally {
      second.cli.child.kill('SIGTERM');
      await second.cli.exited;
    }
  });
});
