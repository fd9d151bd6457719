import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalDirectoryArchiver } from '../../../src/sinks/recording/archiver.js';
import { createRecordingSinkFactory } from '../../../src/sinks/recording/factory.js';
import type { RecordingManifest } from '../../../src/sinks/recording/manifest.js';
import { recoverPartialRecordings } from '../../../src/sinks/recording/recover.js';
import { Feeder, channel, concat, firstDiff, g711All, loadCapture, readWav, soxInfo, testContext } from './helpers.js';
import { tempDirEachTest } from '../../helpers/temp-dir.js';

const capture = loadCapture();
const FRAMES = capture.frames;
const { accountSid, callSid, streamSid } = capture.info;

let dir: string;
tempDirEachTest((d) => (dir = d), 'sg-rec-');

const callDir = (dataDir: string) => join(dataDir, 'recordings', accountSid, callSid);
const pcmBytes = (samples: Int16Array) => {
  const b = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) b.writeInt16LE(samples[i]!, i * 2);
  return b;
};

/** A header as a dead process might leave it: sizes from an earlier flush, or garbage. */
function header(tag: 1 | 7, channels: number, dataSize: number, riffSize = dataSize + 36): Buffer {
  const bits = tag === 1 ? 16 : 8;
  const align = (channels * bits) / 8;
  const h = Buffer.alloc(tag === 1 ? 44 : 58);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(riffSize >>> 0, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(tag === 1 ? 16 : 18, 16);
  h.writeUInt16LE(tag, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(8000 * align, 28);
  h.writeUInt16LE(align, 32);
  h.writeUInt16LE(bits, 34);
  let at = 36;
  if (tag === 7) {
    h.write('fact', 38, 'latin1');
    h.writeUInt32LE(4, 42);
    at = 50;
  }
  h.write('data', at, 'latin1');
  h.writeUInt32LE(dataSize >>> 0, at + 4);
  return h;
}

describe('recoverPartialRecordings', () => {
  it('recovers what a killed process left: flushed audio plus data written after the last header patch', async () => {
    // A live sink flushes 100 frames; we snapshot its files as a kill -9 would leave them (the
    // page cache survives the process), then add bytes a later write got out before the header.
    const live = join(dir, 'live');
    const factory = createRecordingSinkFactory({ dataDir: live });
    const sink = factory.open(capture.info, testContext())!;
    const feeder = new Feeder(sink);
    for (const f of FRAMES.slice(0, 100)) feeder.feed(f.track, f.timestampMs, f.mulaw);
    await sink.flush();
    const crashed = join(dir, 'crashed');
    mkdirSync(callDir(crashed), { recursive: true });
    copyFileSync(sink.paths.partial, join(callDir(crashed), `${streamSid}.wav.partial`));
    copyFileSync(sink.paths.sidecar, join(callDir(crashed), `${streamSid}.partial.json`));
    await sink.close('stopped');

    const partial = join(callDir(crashed), `${streamSid}.wav.partial`);
    const later = g711All(concat(FRAMES.slice(100, 130).map((f) => f.mulaw)));
    appendFileSync(partial, pcmBytes(later));
    appendFileSync(partial, Buffer.from([0x12])); // half a sample: cut
    expect(readWav(partial).dataSize).toBe(100 * 320); // the header still says 100 frames

    const ctx = testContext();
    const report = await recoverPartialRecordings(crashed, ctx.log);
    expect(report.failed).toEqual([]);
    expect(report.recovered).toHaveLength(1);
    const wavPath = join(callDir(crashed), `${streamSid}.wav`);
    const wav = readWav(wavPath);
    expect(wav.dataSize).toBe(130 * 320);
    expect(wav.riffSize).toBe(wav.size - 8);
    expect(wav.size).toBe(44 + 130 * 320);
    expect(firstDiff(channel(wav, 0), g711All(concat(FRAMES.slice(0, 130).map((f) => f.mulaw))))).toBe(-1);
    expect((await soxInfo(wavPath)).Duration).toMatch(/= 20800 samples/);

    const m = JSON.parse(readFileSync(join(callDir(crashed), `${streamSid}.json`), 'utf8')) as RecordingManifest;
    expect(m).toMatchObject({
      accountSid,
      callSid,
      streamSid,
      tracks: ['inbound'],
      customParameters: capture.info.customParameters,
      format: 'pcm16',
      channels: 1,
      sampleRate: 8000,
      mediaStartMs: 99,
      mediaEndMs: 99 + 2600,
      durationMs: 2600,
      wallStart: '2026-01-02T03:04:05.000Z',
      framesReceived: null,
      framesDropped: null,
      gaps: null,
      recovered: true,
      closeReason: null,
      bytes: wav.size,
    });
    expect(m.sha256).toBe(createHash('sha256').update(readFileSync(wavPath)).digest('hex'));
    expect(report.recovered[0]!.manifest).toEqual(m);
    expect(readdirSync(callDir(crashed)).sort()).toEqual([`${streamSid}.json`, `${streamSid}.wav`]);
  });

  it('repairs a stereo partial with a wrong header and no sidecar from its header format and length', async () => {
    const d = callDir(dir);
    mkdirSync(d, { recursive: true });
    const frames = 1000;
    const data = Buffer.alloc(frames * 4 + 3); // 3 bytes of a torn last sample frame
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    writeFileSync(join(d, `${streamSid}.wav.partial`), Buffer.concat([header(1, 2, 0xffffffff, 0), data]));
    const report = await recoverPartialRecordings(dir, testContext().log);
    expect(report.recovered).toHaveLength(1);
    const wav = readWav(join(d, `${streamSid}.wav`));
    expect(wav).toMatchObject({ formatTag: 1, channels: 2, blockAlign: 4, dataSize: frames * 4, riffSize: 36 + frames * 4 });
    expect(Buffer.compare(wav.data, data.subarray(0, frames * 4))).toBe(0);
    expect(report.recovered[0]!.manifest).toMatchObject({
      channels: 2,
      tracks: ['inbound', 'outbound'],
      durationMs: frames / 8,
      mediaStartMs: null,
      wallStart: null,
      recovered: true,
    });
    expect((await soxInfo(join(d, `${streamSid}.wav`))).Channels).toBe('2');
  });

  it('repairs a mu-law partial: fact chunk, data size and pad byte from the length', async () => {
    const d = callDir(dir);
    mkdirSync(d, { recursive: true });
    const data = Buffer.from(concat(FRAMES.slice(0, 3).map((f) => f.mulaw)).subarray(0, 401));
    writeFileSync(join(d, `${streamSid}.wav.partial`), Buffer.concat([header(7, 1, 160), data]));
    await recoverPartialRecordings(dir, testContext().log);
    const wav = readWav(join(d, `${streamSid}.wav`));
    expect(wav).toMatchObject({ formatTag: 7, dataSize: 401, factFrames: 401, size: 58 + 402, riffSize: 58 + 402 - 8 });
    expect(Buffer.compare(wav.data, data)).toBe(0);
    expect((await soxInfo(join(d, `${streamSid}.wav`))).Duration).toMatch(/= 401 samples/);
  });

  it('trusts the sidecar over a garbled header, and assumes 16-bit mono when it has neither', async () => {
    const d = callDir(dir);
    mkdirSync(d, { recursive: true });
    const other = `MZ${'a'.repeat(32)}`;
    const garbage = Buffer.alloc(44, 0x41);
    const data = Buffer.alloc(800, 0x01);
    writeFileSync(join(d, `${streamSid}.wav.partial`), Buffer.concat([garbage, data]));
    writeFileSync(
      join(d, `${streamSid}.partial.json`),
      JSON.stringify({ version: 1, format: 'mulaw', channels: 2, tracks: ['inbound', 'outbound'], customParameters: { a: 'b' }, mediaStartMs: 5, wallStart: '2026-01-01T00:00:00.000Z' }),
    );
    writeFileSync(join(d, `${other}.wav.partial`), Buffer.concat([garbage, data, Buffer.from([7])]));
    const ctx = testContext();
    const report = await recoverPartialRecordings(dir, ctx.log);
    expect(report.recovered).toHaveLength(2);
    const a = readWav(join(d, `${streamSid}.wav`));
    // The sidecar said mu-law stereo: 58-byte header, so the first 14 data bytes were header.
    expect(a).toMatchObject({ formatTag: 7, channels: 2, dataSize: 844 - 58, factFrames: (844 - 58) / 2 });
    const ma = JSON.parse(readFileSync(join(d, `${streamSid}.json`), 'utf8')) as RecordingManifest;
    expect(ma).toMatchObject({ format: 'mulaw', customParameters: { a: 'b' }, mediaStartMs: 5, mediaEndMs: 5 + (844 - 58) / 2 / 8 });
    const b = readWav(join(d, `${other}.wav`));
    expect(b).toMatchObject({ formatTag: 1, channels: 1, dataSize: 800 });
    expect(ctx.lines.some((l) => l.level === 40 && String(l.msg).includes('assuming 16-bit mono'))).toBe(true);
  });

  it('sets aside a sidecar that disagrees with the WAV header (format, channels), uses the header and says so', async () => {
    const d = callDir(dir);
    mkdirSync(d, { recursive: true });
    const data = Buffer.alloc(1600, 0x7f); // 800 stereo mu-law sample frames
    writeFileSync(join(d, `${streamSid}.wav.partial`), Buffer.concat([header(7, 2, 0), data]));
    // What a stream reusing the SID could once leave: its own layout and parameters.
    writeFileSync(
      join(d, `${streamSid}.partial.json`),
      JSON.stringify({ version: 1, format: 'pcm16', channels: 1, tracks: ['inbound'], customParameters: { owner: 'intruder' }, mediaStartMs: 5, wallStart: '2026-01-01T00:00:00.000Z' }),
    );
    const ctx = testContext();
    const report = await recoverPartialRecordings(dir, ctx.log);
    const m = report.recovered[0]!.manifest;
    expect(m).toMatchObject({ format: 'mulaw', channels: 2, tracks: ['inbound', 'outbound'], customParameters: {}, mediaStartMs: null, durationMs: 100 });
    expect(m.error).toMatch(/sidecar says 1-channel pcm16 but the WAV header says 2-channel mulaw/);
    expect(readWav(join(d, `${streamSid}.wav`))).toMatchObject({ formatTag: 7, channels: 2, dataSize: 1600 });
    expect(ctx.lines.some((l) => l.level === 40 && String(l.msg).includes('sidecar ignored'))).toBe(true);
  });

  it('reads an empty or cut sidecar (a kill inside its one in-place write) as none, and takes the layout from the header', async () => {
    const d = callDir(dir);
    mkdirSync(d, { recursive: true });
    const other = `MZ${'b'.repeat(32)}`;
    const data = Buffer.alloc(1600, 0x7f); // 800 stereo mu-law sample frames
    const whole = JSON.stringify({ version: 1, format: 'mulaw', channels: 2, tracks: ['inbound', 'outbound'], customParameters: { a: 'b' }, mediaStartMs: 5, wallStart: '2026-01-01T00:00:00.000Z' });
    for (const [sid, sidecar] of [[streamSid, ''], [other, whole.slice(0, whole.length - 1)]] as const) {
      writeFileSync(join(d, `${sid}.wav.partial`), Buffer.concat([header(7, 2, 0), data]));
      writeFileSync(join(d, `${sid}.partial.json`), sidecar);
    }
    const report = await recoverPartialRecordings(dir, testContext().log);
    expect(report.failed).toEqual([]);
    expect(report.recovered).toHaveLength(2);
    for (const sid of [streamSid, other]) {
      const m = JSON.parse(readFileSync(join(d, `${sid}.json`), 'utf8')) as RecordingManifest;
      expect(m).toMatchObject({ recovered: true, format: 'mulaw', channels: 2, tracks: ['inbound', 'outbound'], customParameters: {}, mediaStartMs: null, durationMs: 100, error: null });
      expect(readWav(join(d, `${sid}.wav`))).toMatchObject({ formatTag: 7, channels: 2, dataSize: 1600 });
    }
    expect(readdirSync(d).sort()).toEqual([`${other}.json`, `${other}.wav`, `${streamSid}.json`, `${streamSid}.wav`].sort());
  });

  it('gives a file cut inside its header an empty, valid header', async () => {
    const d = callDir(dir);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `${streamSid}.wav.partial`), header(1, 1, 0).subarray(0, 20));
    await recoverPartialRecordings(dir, testContext().log);
    const wav = readWav(join(d, `${streamSid}.wav`));
    expect(wav).toMatchObject({ size: 44, dataSize: 0, channels: 1 });
  });

  it('finishes a stream that died between rename and manifest, and cleans leftovers', async () => {
    const d = callDir(dir);
    mkdirSync(d, { recursive: true });
    const wavBytes = Buffer.concat([header(1, 1, 320), Buffer.alloc(320, 3)]);
    writeFileSync(join(d, `${streamSid}.wav`), wavBytes);
    writeFileSync(join(d, `${streamSid}.partial.json`), JSON.stringify({ version: 1, format: 'pcm16', channels: 1, tracks: ['inbound'], mediaStartMs: 99 }));
    const lonely = `MZ${'b'.repeat(32)}`; // died before its .partial existed
    writeFileSync(join(d, `${lonely}.partial.json`), '{"format":"pcm16","channels":1}');
    writeFileSync(join(d, `${streamSid}.json.tmp`), '{"half":');
    mkdirSync(join(dir, 'recordings', 'not-a-sid'), { recursive: true });
    writeFileSync(join(dir, 'recordings', 'not-a-sid', 'x.wav.partial'), 'left alone');

    const report = await recoverPartialRecordings(dir, testContext().log);
    expect(report.recovered.map((r) => r.manifest.streamSid)).toEqual([streamSid]);
    expect(Buffer.compare(readFileSync(join(d, `${streamSid}.wav`)), wavBytes)).toBe(0);
    expect(JSON.parse(readFileSync(join(d, `${streamSid}.json`), 'utf8'))).toMatchObject({ recovered: true, durationMs: 20, mediaStartMs: 99 });
    expect(readdirSync(d).sort()).toEqual([`${streamSid}.json`, `${streamSid}.wav`]);
    expect(readFileSync(join(dir, 'recordings', 'not-a-sid', 'x.wav.partial'), 'utf8')).toBe('left alone');
  });

  it('recovers a finish cut after the manifest was written over the sidecar, before either rename or between them', async () => {
    // A finished recording's files, put back as a power loss between the finish's steps can leave
    // them (io-worker.ts finish): the manifest's text already in the sidecar's file, and the
    // .partial not yet renamed, or the .wav renamed but not the manifest.
    const live = join(dir, 'live');
    const factory = createRecordingSinkFactory({ dataDir: live });
    const sink = factory.open(capture.info, testContext())!;
    const feeder = new Feeder(sink);
    for (const f of FRAMES.slice(0, 50)) feeder.feed(f.track, f.timestampMs, f.mulaw);
    await sink.flush();
    const sidecarInode = statSync(sink.paths.sidecar).ino;
    await sink.close('stopped');
    expect(readdirSync(callDir(live)).sort()).toEqual([`${streamSid}.json`, `${streamSid}.wav`]);
    expect(statSync(sink.paths.manifest).ino).toBe(sidecarInode); // the sidecar's file, renamed
    const finished = JSON.parse(readFileSync(sink.paths.manifest, 'utf8')) as RecordingManifest;

    for (const [name, audio] of [['before-renames', `${streamSid}.wav.partial`], ['between-renames', `${streamSid}.wav`]] as const) {
      const crashed = join(dir, name);
      const d = callDir(crashed);
      mkdirSync(d, { recursive: true });
      copyFileSync(sink.paths.wav, join(d, audio));
      copyFileSync(sink.paths.manifest, join(d, `${streamSid}.partial.json`));

      const report = await recoverPartialRecordings(crashed, testContext().log);
      expect(report.failed).toEqual([]);
      expect(report.recovered).toHaveLength(1);
      expect(readdirSync(d).sort()).toEqual([`${streamSid}.json`, `${streamSid}.wav`]);
      expect(Buffer.compare(readFileSync(join(d, `${streamSid}.wav`)), readFileSync(sink.paths.wav))).toBe(0);
      const m = JSON.parse(readFileSync(join(d, `${streamSid}.json`), 'utf8')) as RecordingManifest;
      expect(m).toMatchObject({
        recovered: true,
        tracks: finished.tracks,
        customParameters: finished.customParameters,
        wallStart: finished.wallStart,
        mediaStartMs: finished.mediaStartMs,
        durationMs: finished.durationMs,
        bytes: finished.bytes,
        sha256: finished.sha256,
      });
    }
  });

  it('hands recovered recordings to the archiver when given one', async () => {
    const d = callDir(dir);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `${streamSid}.wav.partial`), Buffer.concat([header(1, 1, 0), Buffer.alloc(640, 9)]));
    const target = join(dir, 'archive');
    const report = await recoverPartialRecordings(dir, testContext().log, { archiver: new LocalDirectoryArchiver({ targetDir: target }) });
    expect(report.recovered).toHaveLength(1);
    const moved = join(target, accountSid, callSid);
    expect(readdirSync(moved).sort()).toEqual([`${streamSid}.json`, `${streamSid}.wav`]);
    expect(readWav(join(moved, `${streamSid}.wav`)).dataSize).toBe(640);
    expect(readdirSync(d)).toEqual([]);
  });

  it('does nothing when there is no recordings directory', async () => {
    expect(await recoverPartialRecordings(join(dir, 'nope'), testContext().log)).toEqual({ recovered: [], failed: [] });
    expect(existsSync(join(dir, 'nope'))).toBe(false);
  });
});
