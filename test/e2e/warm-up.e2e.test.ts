/**
 * The warm-up `streamgate start` runs before it listens (src/warm-up.ts): its streams go through
 * a throwaway gateway end to end, and nothing of them reaches the real one: no recording in the
 * data directory, no temporary directory left, no frame in the real gateway's metrics.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../../src/gateway/config.js';
import { WARM_UP_FRAMES } from '../../src/warm-up.js';
import { metricValue } from '../helpers/gateway.js';
import { runCli } from '../helpers/process.js';

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function startCli(env: Record<string, string>) {
  const cli = runCli(['start'], { PORT: '0', TRANSCRIPTION: 'none', ...env });
  onTestFinished(async () => {
    cli.child.kill('SIGTERM');
    await cli.exited;
  });
  return cli;
}

/** Every file under `dir` whose name ends with one of `suffixes`. */
function filesEnding(dir: string, suffixes: string[]): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => suffixes.some((s) => f.endsWith(s)));
}

describe('warm-up before listening', () => {
  it('carries WARMUP_STREAMS paced streams first, then listens with nothing of them left behind', async () => {
    const dataDir = await tempDir('sg-warmup-data-');
    const tmp = await tempDir('sg-warmup-tmp-');
    const cli = startCli({ STREAMGATE_DATA_DIR: dataDir, WARMUP_STREAMS: '8', TMPDIR: tmp });
    const warmed = await cli.waitForLine((l) => l.msg === 'warmed up', 30_000);
    const listening = await cli.waitForLine((l) => l.msg === 'streamgate listening', 30_000);
    expect(warmed).toMatchObject({ streams: 8, frames: 8 * WARM_UP_FRAMES });
    expect(cli.lines.indexOf(warmed)).toBeLessThan(cli.lines.indexOf(listening));
    // Its recordings were made in a temporary directory, which is gone.
    expect(readdirSync(tmp).filter((f) => f.startsWith('streamgate-warmup-'))).toEqual([]);
    expect(filesEnding(dataDir, ['.wav', '.json', '.partial'])).toEqual([]);
    // The real gateway counted none of its media.
    const http = String(listening.address);
    expect(await metricValue(http, 'streamgate_media_bytes_total')).toBe(0);
    expect(cli.lines.filter((l) => l.level === 40 || l.level === 50).map((l) => l.msg)).toEqual([
      'TWILIO_AUTH_TOKEN is not set: /media upgrades and webhooks are accepted unsigned, and every stream is trusted as a member of the conference it names (local development only)',
    ]);
  });

  it('is skipped with WARMUP_STREAMS=0', async () => {
    const dataDir = await tempDir('sg-warmup-off-');
    const cli = startCli({ STREAMGATE_DATA_DIR: dataDir, WARMUP_STREAMS: '0' });
    await cli.waitForLine((l) => l.msg === 'streamgate listening', 30_000);
    expect(cli.lines.some((l) => l.msg === 'warmed up')).toBe(false);
  });

  it('WARMUP_STREAMS is bounded', () => {
    expect(loadConfig({}).warmUpStreams).toBe(50);
    expect(loadConfig({ WARMUP_STREAMS: '0' }).warmUpStreams).toBe(0);
    expect(() => loadConfig({ WARMUP_STREAMS: '501' })).toThrow(/WARMUP_STREAMS must be between 0 and 500/);
    expect(() => loadConfig({ WARMUP_STREAMS: 'lots' })).toThrow(/WARMUP_STREAMS/);
  });
});
