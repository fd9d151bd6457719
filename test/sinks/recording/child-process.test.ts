import { execFile, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { RecordingManifest } from '../../../src/sinks/recording/manifest.js';
import { recoverPartialRecordings } from '../../../src/sinks/recording/recover.js';
import { channel, concat, firstDiff, g711All, loadCapture, readWav, soxInfo, testContext } from './helpers.js';
import { tempDirEachTest } from '../../helpers/temp-dir.js';

const capture = loadCapture();
const CHILD = fileURLToPath(new URL('./recording-child.ts', import.meta.url));
/** Loads the TypeScript child through vite (as vitest does) and runs one scenario. */
const RUN_CHILD = `import { runnerImport } from 'vite';
const { module } = await runnerImport(process.argv[1]);
await module[process.argv[3]](process.argv[2]);`;

let dir: string;
tempDirEachTest((d) => (dir = d), 'sg-rec-');

/**
 * Starts the recording child's `scenario`, waits until it has printed a line that `enough`
 * accepts, kills it with SIGKILL and resolves with that line.
 */
function runThenKill(scenario: string, enough: (line: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', RUN_CHILD, CHILD, dir, scenario], { stdio: ['ignore', 'pipe', 'pipe'] });
    let last = '';
    let err = '';
    let buffered = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      if (child.killed) return;
      for (const l of lines) last = l;
      if (lines.length > 0 && enough(last) && child.exitCode === null) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(last);
      else reject(new Error(`child exited ${code} ${signal}: ${err}`));
    });
  });
}

describe('RecordingSink under kill -9', () => {
  it('loses at most about the last second: recovery yields a valid WAV of everything before it', async () => {
    const fed = Number(await runThenKill('live', (l) => Number(l) >= 200)); // 4 s of audio, fed in real time
    const callDir = join(dir, 'recordings', capture.info.accountSid, capture.info.callSid);
    expect(readdirSync(callDir).sort()).toEqual([`${capture.info.streamSid}.partial.json`, `${capture.info.streamSid}.wav.partial`]);

    const report = await recoverPartialRecordings(dir, testContext().log);
    expect(report.failed).toEqual([]);
    expect(report.recovered).toHaveLength(1);
    const { wavPath, manifest } = report.recovered[0]!;
    const got = channel(readWav(wavPath), 0);
    const frames = got.length / 160;
    expect(Number.isInteger(frames)).toBe(true); // the flusher writes whole frames here
    expect(frames).toBeGreaterThanOrEqual(fed - 50); // ≤ 1 s lost
    expect(frames).toBeLessThanOrEqual(fed + 5); // (the child may feed a frame or two after its last report)
    const want = g711All(concat(Array.from({ length: frames }, (_, i) => capture.frames[i % 363]!.mulaw)));
    expect(firstDiff(got, want)).toBe(-1);
    expect(manifest).toMatchObject({ recovered: true, mediaStartMs: 99, durationMs: frames * 20, streamSid: capture.info.streamSid });
    expect((await soxInfo(wavPath)).Duration).toMatch(new RegExp(`= ${frames * 160} samples`));
  });

  it('killed after the open and before the first media (no sidecar yet): recovery takes the layout from the WAV header', async () => {
    await runThenKill('opened', (l) => l === 'opened');
    const callDir = join(dir, 'recordings', capture.info.accountSid, capture.info.callSid);
    expect(readdirSync(callDir)).toEqual([`${capture.info.streamSid}.wav.partial`]);

    const report = await recoverPartialRecordings(dir, testContext().log);
    expect(report.failed).toEqual([]);
    expect(report.recovered).toHaveLength(1);
    const { wavPath, manifest } = report.recovered[0]!;
    expect(readWav(wavPath)).toMatchObject({ formatTag: 7, channels: 2, dataSize: 0 });
    expect(manifest).toMatchObject({ recovered: true, format: 'mulaw', channels: 2, tracks: ['inbound', 'outbound'], durationMs: 0, mediaStartMs: null, streamSid: capture.info.streamSid });
    expect((await soxInfo(wavPath)).Channels).toBe('2');
    expect(readdirSync(callDir).sort()).toEqual([`${capture.info.streamSid}.json`, `${capture.info.streamSid}.wav`]);
  });
});

describe('RecordingSink when the disk refuses writes', () => {
  it('counts and logs the error once, keeps accepting, and finishes a valid file of what was written', async () => {
    // ulimit -f 40: no file of this process may pass 40 KiB (Node ignores SIGXFSZ, so writes fail
    // with EFBIG), while the whole recording needs 116 KiB.
    const script = `ulimit -f 40 && exec "$0" --input-type=module -e "$1" "$2" "$3" whole`;
    const { stdout } = await promisify(execFile)('bash', ['-c', script, process.execPath, RUN_CHILD, CHILD, dir]);
    const out = JSON.parse(stdout.trim().split('\n').pop()!) as { stats: { dropped: number; errors: number; queued: number }; errors: { msg: string; err: { code?: string } }[] };
    expect(out.stats.errors).toBe(1);
    expect(out.stats.queued).toBe(0);
    expect(out.stats.dropped).toBeGreaterThan(0); // frames refused after the failure, counted
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0]!.err.code).toBe('EFBIG');

    const callDir = join(dir, 'recordings', capture.info.accountSid, capture.info.callSid);
    const wavPath = join(callDir, `${capture.info.streamSid}.wav`);
    const wav = readWav(wavPath);
    expect(wav.size).toBeLessThanOrEqual(40 * 1024);
    expect(wav.riffSize).toBe(wav.size - 8);
    const got = channel(wav, 0);
    expect(got.length).toBeGreaterThan(0);
    expect(firstDiff(got, g711All(concat(capture.frames.map((f) => f.mulaw))).subarray(0, got.length))).toBe(-1);
    const m = JSON.parse(readFileSync(join(callDir, `${capture.info.streamSid}.json`), 'utf8')) as RecordingManifest;
    expect(m.error).toMatch(/EFBIG|too large/i);
    expect(m).toMatchObject({ framesReceived: 363, durationMs: got.length / 8, bytes: wav.size });
    expect(m.framesDropped).toBe(out.stats.dropped);
    expect((await soxInfo(wavPath)).Duration).toMatch(new RegExp(`= ${got.length} samples`));
  });
});
