import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalDirectoryArchiver, type ArchivedRecording, type Archiver } from '../../../src/sinks/recording/archiver.js';
import { createRecordingSinkFactory } from '../../../src/sinks/recording/factory.js';
import { Feeder, loadCapture, readWav, testContext } from './helpers.js';
import { tempDirEachTest } from '../../helpers/temp-dir.js';

const capture = loadCapture();
const { accountSid, callSid, streamSid } = capture.info;

let dir: string;
tempDirEachTest((d) => (dir = d), 'sg-rec-');

async function record(archiver?: Archiver) {
  const factory = createRecordingSinkFactory({ dataDir: join(dir, 'data'), ...(archiver ? { archiver } : {}) });
  const ctx = testContext();
  const sink = factory.open(capture.info, ctx)!;
  const feeder = new Feeder(sink);
  for (const f of capture.frames.slice(0, 50)) feeder.feed(f.track, f.timestampMs, f.mulaw);
  await sink.close('stopped');
  return { factory, ctx, sink };
}

describe('LocalDirectoryArchiver', () => {
  it('leaves recordings where they were written by default', async () => {
    const { factory, sink, ctx } = await record();
    await factory.shutdown();
    expect(existsSync(sink.paths.wav)).toBe(true);
    expect(existsSync(sink.paths.manifest)).toBe(true);
    expect(ctx.stats.errors).toBe(0);
  });

  it('moves the wav and manifest under {targetDir}/{AccountSid}/{CallSid}/ once the manifest exists', async () => {
    const target = join(dir, 'archive');
    const { factory, sink, ctx } = await record(new LocalDirectoryArchiver({ targetDir: target }));
    await factory.shutdown();
    const moved = join(target, accountSid, callSid);
    expect(existsSync(sink.paths.wav)).toBe(false);
    expect(existsSync(sink.paths.manifest)).toBe(false);
    expect(readWav(join(moved, `${streamSid}.wav`)).dataSize).toBe(50 * 320);
    expect(JSON.parse(readFileSync(join(moved, `${streamSid}.json`), 'utf8'))).toMatchObject({ streamSid, durationMs: 1000 });
    expect(ctx.stats.errors).toBe(0);
  });

  it('never overwrites an archived file: the failure is counted and logged, the recording stays', async () => {
    const target = join(dir, 'archive');
    const moved = join(target, accountSid, callSid);
    mkdirSync(moved, { recursive: true });
    writeFileSync(join(moved, `${streamSid}.wav`), 'older recording');
    const { factory, sink, ctx } = await record(new LocalDirectoryArchiver({ targetDir: target }));
    await factory.shutdown();
    expect(readFileSync(join(moved, `${streamSid}.wav`), 'utf8')).toBe('older recording');
    expect(readWav(sink.paths.wav).dataSize).toBe(50 * 320);
    expect(existsSync(sink.paths.manifest)).toBe(true);
    expect(ctx.stats.errors).toBe(1);
    expect(ctx.lines.some((l) => l.level === 50 && String(l.msg).includes('archive failed'))).toBe(true);
  });
});

describe('Archiver hook', () => {
  it('gets the finished recording after the manifest is written, without holding up close()', async () => {
    const calls: ArchivedRecording[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let finished = false;
    const slow: Archiver = {
      async archive(rec) {
        calls.push(rec);
        expect(existsSync(rec.wavPath)).toBe(true);
        expect(JSON.parse(readFileSync(rec.manifestPath, 'utf8'))).toEqual(rec.manifest);
        await gate; // an upload that takes its time
        finished = true;
      },
    };
    const { factory, sink } = await record(slow);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.manifest).toMatchObject({ streamSid, framesReceived: 50 });
    expect(finished).toBe(false); // close() resolved while the archive still runs
    const down = factory.shutdown();
    release();
    await down;
    expect(finished).toBe(true);
    expect(existsSync(sink.paths.wav)).toBe(true);
  });

  it('counts and logs a failing archiver and keeps the files', async () => {
    const failing: Archiver = {
      async archive() {
        throw new Error('bucket unreachable');
      },
    };
    const { factory, sink, ctx } = await record(failing);
    await factory.shutdown();
    expect(ctx.stats.errors).toBe(1);
    expect(existsSync(sink.paths.wav)).toBe(true);
    expect(existsSync(sink.paths.manifest)).toBe(true);
  });
});
