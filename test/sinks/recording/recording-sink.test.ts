import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { StreamInfo } from '../../../src/core/stream.js';
import { createRecordingSinkFactory, type RecordingSinkOptions } from '../../../src/sinks/recording/factory.js';
import type { RecordingManifest } from '../../../src/sinks/recording/manifest.js';
import type { RecordingSink } from '../../../src/sinks/recording/recording-sink.js';
import {
  Feeder,
  channel,
  concat,
  firstDiff,
  g711All,
  loadCapture,
  readWav,
  soxDecode,
  soxInfo,
  testContext,
  type CapturedFrame,
} from './helpers.js';
import { tempDirEachTest } from '../../helpers/temp-dir.js';
import { waitFor } from '../../helpers/wait.js';

const capture = loadCapture();
const FRAMES = capture.frames;
const SILENT_FRAME = new Uint8Array(160).fill(0xff);

let dir: string;
tempDirEachTest((d) => (dir = d), 'sg-rec-');

function openSink(info: StreamInfo, opts: Partial<RecordingSinkOptions> = {}) {
  const factory = createRecordingSinkFactory({ dataDir: dir, ...opts });
  const ctx = testContext();
  const sink = factory.open(info, ctx);
  if (sink === null) throw new Error('open returned null');
  return { factory, ctx, sink, feeder: new Feeder(sink) };
}

function manifestOf(sink: RecordingSink): RecordingManifest {
  return JSON.parse(readFileSync(sink.paths.manifest, 'utf8')) as RecordingManifest;
}

/** Feeds frames in order, letting the writer drain every `every` frames as live traffic would. */
async function feedAll(feeder: Feeder, sink: RecordingSink, frames: readonly CapturedFrame[], every = 50): Promise<void> {
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    feeder.feed(f.track, f.timestampMs, f.mulaw);
    if ((i + 1) % every === 0) await sink.flush();
  }
}

const expectedMono = (frames: readonly CapturedFrame[]) => g711All(concat(frames.map((f) => f.mulaw)));
const stereoInfo: StreamInfo = { ...capture.info, tracks: ['inbound', 'outbound'] };

describe('RecordingSink', () => {
  it('records the hello-world capture sample-exact as 16-bit mono, 363 × 20 ms', async () => {
    const { sink, feeder, ctx, factory } = openSink(capture.info);
    expect(FRAMES).toHaveLength(363);
    await feedAll(feeder, sink, FRAMES);
    await sink.close('stopped');
    await factory.shutdown();

    const wav = readWav(sink.paths.wav);
    expect(wav).toMatchObject({ formatTag: 1, channels: 1, sampleRate: 8000, bits: 16, blockAlign: 2, byteRate: 16000 });
    expect(wav.dataSize).toBe(363 * 160 * 2);
    expect(wav.riffSize).toBe(wav.size - 8);
    const got = channel(wav, 0);
    expect(firstDiff(got, expectedMono(FRAMES))).toBe(-1);

    const m = manifestOf(sink);
    expect(m).toMatchObject({
      accountSid: capture.info.accountSid,
      callSid: capture.info.callSid,
      streamSid: capture.info.streamSid,
      tracks: ['inbound'],
      customParameters: { StateName: 'IRS', IsScoutCall: 'no' },
      format: 'pcm16',
      sampleRate: 8000,
      channels: 1,
      mediaStartMs: 99,
      mediaEndMs: 99 + 7260,
      wallStart: '2026-01-02T03:04:05.000Z',
      durationMs: 363 * 20,
      framesReceived: 363,
      framesLost: 0,
      framesDuplicate: 0,
      framesLate: 0,
      framesLateDropped: 0,
      framesDropped: 0,
      framesIgnored: 0,
      gaps: [],
      bytes: wav.size,
      recovered: false,
      closeReason: 'stopped',
      error: null,
    });
    expect(m.sha256).toBe(createHash('sha256').update(readFileSync(sink.paths.wav)).digest('hex'));
    expect(Date.parse(m.wallEnd!)).toBeGreaterThan(0);
    expect(ctx.stats).toEqual({ dropped: 0, errors: 0, queued: 0 });
    // Only the finished files remain: no .partial, sidecar or temp file.
    expect(readdirSync(sink.paths.dir).sort()).toEqual([`${capture.info.streamSid}.json`, `${capture.info.streamSid}.wav`]);

    const info = await soxInfo(sink.paths.wav);
    expect(info).toMatchObject({ Channels: '1', 'Sample Rate': '8000', Precision: '16-bit' });
    expect(info['Sample Encoding']).toMatch(/16-bit Signed Integer PCM/);
    expect(info.Duration).toMatch(/= 58080 samples/);
    expect(firstDiff(await soxDecode(sink.paths.wav), got)).toBe(-1);
  });

  it('writes both tracks as stereo, inbound left and outbound right, each sample-exact and aligned', async () => {
    const { sink, feeder } = openSink(stereoInfo);
    // The outbound side plays the same call from another point, so the channels differ.
    const outbound = FRAMES.map((f, i) => ({ ...f, track: 'outbound' as const, mulaw: FRAMES[(i + 181) % 363]!.mulaw }));
    for (let i = 0; i < 363; i++) {
      // Interleaved on one socket, in either order per timestamp.
      const [a, b] = i % 3 === 0 ? [outbound[i]!, FRAMES[i]!] : [FRAMES[i]!, outbound[i]!];
      feeder.feed(a.track, a.timestampMs, a.mulaw);
      feeder.feed(b.track, b.timestampMs, b.mulaw);
      if (i % 40 === 39) await sink.flush();
    }
    await sink.close('stopped');

    const wav = readWav(sink.paths.wav);
    expect(wav).toMatchObject({ formatTag: 1, channels: 2, blockAlign: 4, byteRate: 32000, bits: 16 });
    expect(firstDiff(channel(wav, 0), expectedMono(FRAMES))).toBe(-1);
    expect(firstDiff(channel(wav, 1), expectedMono(outbound))).toBe(-1);
    const m = manifestOf(sink);
    expect(m).toMatchObject({ tracks: ['inbound', 'outbound'], channels: 2, framesReceived: 726, durationMs: 7260, gaps: [] });
    const info = await soxInfo(sink.paths.wav);
    expect(info).toMatchObject({ Channels: '2', 'Sample Rate': '8000' });
    expect(info.Duration).toMatch(/= 58080 samples/);
  });

  it('aligns a track that starts 5 ms later by its timestamps, not by arrival', async () => {
    const { sink, feeder } = openSink(stereoInfo);
    const outbound = FRAMES.map((f) => ({ ...f, track: 'outbound' as const, timestampMs: f.timestampMs + 5 }));
    for (let i = 0; i < 363; i++) {
      feeder.feed('inbound', FRAMES[i]!.timestampMs, FRAMES[i]!.mulaw);
      feeder.feed('outbound', outbound[i]!.timestampMs, outbound[i]!.mulaw);
      if (i % 40 === 39) await sink.flush();
    }
    await sink.close('stopped');
    const wav = readWav(sink.paths.wav);
    const left = channel(wav, 0);
    const right = channel(wav, 1);
    expect(left.length).toBe(58080 + 40);
    expect(firstDiff(left.subarray(0, 58080), expectedMono(FRAMES))).toBe(-1);
    expect(Array.from(left.subarray(58080))).toEqual(new Array(40).fill(0));
    expect(Array.from(right.subarray(0, 40))).toEqual(new Array(40).fill(0));
    expect(firstDiff(right.subarray(40), expectedMono(FRAMES))).toBe(-1);
    // Before a track's first frame and after its last is not a gap.
    expect(manifestOf(sink)).toMatchObject({ gaps: [], mediaStartMs: 99, durationMs: 7265 });
  });

  it('keeps every frame that arrives before its open has had its turn (a burst of starts waits in the queue)', async () => {
    const factory = createRecordingSinkFactory({ dataDir: dir });
    const ctx = testContext();
    // 200 streams start in one turn: their opens queue behind each other.
    const sinks = Array.from({ length: 200 }, (_, i) => factory.open({ ...capture.info, streamSid: `MZ${i.toString(16).padStart(32, '0')}` }, ctx)!);
    const feeders = sinks.map((s) => new Feeder(s));
    for (let f = 0; f < 30; f++) for (const feeder of feeders) feeder.feed('inbound', FRAMES[f]!.timestampMs, FRAMES[f]!.mulaw);
    // Still the same turn: no open has run, so no file exists, and every frame is buffered.
    expect(sinks.some((s) => existsSync(s.paths.partial))).toBe(false);
    await Promise.all(sinks.map((s) => s.close('stopped')));
    await factory.shutdown();
    const want = expectedMono(FRAMES.slice(0, 30));
    for (const s of [sinks[0]!, sinks[199]!]) expect(firstDiff(channel(readWav(s.paths.wav), 0), want)).toBe(-1);
    for (const s of sinks) expect(manifestOf(s)).toMatchObject({ framesReceived: 30, framesDropped: 0, durationMs: 600 });
    expect(ctx.stats).toMatchObject({ dropped: 0, errors: 0, queued: 0 });
  });

  it("records silence, not the previous stream's audio, in a ring slot a finished stream gave back", async () => {
    // flushIntervalMs 437: a ring size no other test uses, so the second stream gets the first's slot back.
    const opts = { flushIntervalMs: 437, headerIntervalMs: 437 };
    const factory = createRecordingSinkFactory({ dataDir: dir, ...opts });
    const first = factory.open(capture.info, testContext())!;
    await feedAll(new Feeder(first), first, FRAMES.slice(0, 40)); // fills most of the 0.87 s ring
    await first.close('stopped');
    const second = factory.open({ ...capture.info, streamSid: `MZ${'b'.repeat(32)}` }, testContext())!;
    const kept = FRAMES.slice(0, 40).filter((_, i) => i < 5 || i >= 35); // 600 ms Twilio sent nothing for
    await feedAll(new Feeder(second), second, kept, 100);
    await second.close('stopped');
    await factory.shutdown();

    const got = channel(readWav(second.paths.wav), 0);
    const want = expectedMono(FRAMES.slice(0, 40));
    want.fill(0, 5 * 160, 35 * 160);
    expect(firstDiff(got, want)).toBe(-1);
    expect(manifestOf(second).gaps).toEqual([{ track: 'inbound', startMs: FRAMES[5]!.timestampMs, lengthMs: 600, cause: 'timestamp-gap' }]);
  });

  it('fills a timestamp gap with silence of exactly its length and records it', async () => {
    const { sink, feeder } = openSink(capture.info);
    const kept = FRAMES.filter((_, i) => i < 100 || i >= 105); // Twilio sent nothing for 100 ms
    await feedAll(feeder, sink, kept);
    await sink.close('stopped');

    const got = channel(readWav(sink.paths.wav), 0);
    const want = expectedMono(FRAMES);
    want.fill(0, 100 * 160, 105 * 160);
    expect(got.length).toBe(58080);
    expect(firstDiff(got, want)).toBe(-1);
    const m = manifestOf(sink);
    expect(m.gaps).toEqual([{ track: 'inbound', startMs: FRAMES[100]!.timestampMs, lengthMs: 100, cause: 'timestamp-gap' }]);
    expect(m).toMatchObject({ framesReceived: 358, framesLost: 5, durationMs: 7260 });
  });

  it('drops duplicates (the first copy wins) and counts them', async () => {
    const { sink, feeder } = openSink(capture.info);
    for (let i = 0; i < 363; i++) {
      const f = FRAMES[i]!;
      feeder.feed('inbound', f.timestampMs, f.mulaw);
      if (i === 20) feeder.feed('inbound', f.timestampMs, SILENT_FRAME); // same timestamp, other bytes
      if (i === 30) feeder.feed('inbound', FRAMES[25]!.timestampMs, SILENT_FRAME);
      if (i % 50 === 49) await sink.flush();
    }
    await sink.close('stopped');
    expect(firstDiff(channel(readWav(sink.paths.wav), 0), expectedMono(FRAMES))).toBe(-1);
    expect(manifestOf(sink)).toMatchObject({ framesReceived: 365, framesDuplicate: 2, framesLate: 0, gaps: [], framesLost: 0 });
  });

  it('writes a late frame in place while its hole is still buffered', async () => {
    const { sink, feeder } = openSink(capture.info);
    const order = FRAMES.map((_, i) => i);
    order.splice(30, 1);
    order.splice(35, 0, 30); // frame 30 arrives after 31..35
    for (let k = 0; k < order.length; k++) {
      const f = FRAMES[order[k]!]!;
      feeder.feed('inbound', f.timestampMs, f.mulaw);
      if (k % 50 === 49) await sink.flush();
    }
    await sink.close('stopped');
    expect(firstDiff(channel(readWav(sink.paths.wav), 0), expectedMono(FRAMES))).toBe(-1);
    expect(manifestOf(sink)).toMatchObject({ framesLate: 1, framesLateDropped: 0, framesLost: 0, gaps: [] });
  });

  it('drops a late frame whose hole is already on disk, and one before the stream began', async () => {
    const { sink, feeder } = openSink(capture.info);
    for (let i = 0; i < 363; i++) {
      if (i === 40) continue;
      feeder.feed('inbound', FRAMES[i]!.timestampMs, FRAMES[i]!.mulaw);
      if (i === 45) {
        await sink.flush(); // the hole at frame 40 goes to disk as silence
        feeder.feed('inbound', FRAMES[40]!.timestampMs, FRAMES[40]!.mulaw);
        feeder.feed('inbound', FRAMES[0]!.timestampMs - 20, SILENT_FRAME); // before zero
      }
      if (i % 50 === 49) await sink.flush();
    }
    await sink.close('stopped');
    const want = expectedMono(FRAMES);
    want.fill(0, 40 * 160, 41 * 160);
    expect(firstDiff(channel(readWav(sink.paths.wav), 0), want)).toBe(-1);
    const m = manifestOf(sink);
    expect(m).toMatchObject({ framesReceived: 364, framesLate: 2, framesLateDropped: 2, framesLost: 1, mediaStartMs: 99 });
    expect(m.gaps).toEqual([{ track: 'inbound', startMs: FRAMES[40]!.timestampMs, lengthMs: 20, cause: 'timestamp-gap' }]);
  });

  it('fills part of a gap with a late frame and keeps the rest as a gap', async () => {
    const { sink, feeder } = openSink(capture.info);
    const f = (i: number) => FRAMES[i]!;
    for (let i = 0; i < 10; i++) feeder.feed('inbound', f(i).timestampMs, f(i).mulaw);
    for (let i = 14; i < 20; i++) feeder.feed('inbound', f(i).timestampMs, f(i).mulaw); // 10..13 missing
    feeder.feed('inbound', f(11).timestampMs, f(11).mulaw); // late, splits the gap
    await sink.close('stopped');
    const want = expectedMono(FRAMES.slice(0, 20));
    want.fill(0, 10 * 160, 11 * 160);
    want.fill(0, 12 * 160, 14 * 160);
    expect(firstDiff(channel(readWav(sink.paths.wav), 0), want)).toBe(-1);
    const m = manifestOf(sink);
    expect(m.gaps).toEqual([
      { track: 'inbound', startMs: f(10).timestampMs, lengthMs: 20, cause: 'timestamp-gap' },
      { track: 'inbound', startMs: f(12).timestampMs, lengthMs: 40, cause: 'timestamp-gap' },
    ]);
    expect(m).toMatchObject({ framesLate: 1, framesLost: 3 });
  });

  it('places odd-sized chunks by their real length', async () => {
    const { sink, feeder } = openSink(capture.info);
    const bytes = concat(FRAMES.slice(0, 10).map((x) => x.mulaw));
    // 100 samples (12.5 ms) at 1000; 50 at 1012 (overlaps the first by 4: first write wins);
    // 37 at 1020 leaves a 14-sample hole (1.75 ms); 320 at 1025 leaves 3 (…), 1 sample at 1065.
    const chunks: [number, number, number][] = [
      [1000, 0, 100],
      [1012, 100, 150],
      [1020, 150, 187],
      [1025, 187, 507],
      [1065, 507, 508],
    ];
    for (const [ts, a, b] of chunks) feeder.feed('inbound', ts, bytes.subarray(a, b));
    await sink.close('stopped');
    const got = channel(readWav(sink.paths.wav), 0);
    const dec = g711All(bytes);
    const want = new Int16Array(8 * 65 + 1);
    want.set(dec.subarray(0, 100), 0);
    want.set(dec.subarray(104, 150), 100); // [96,146): its first 4 samples lost to the overlap
    want.set(dec.subarray(150, 187), 160);
    want.set(dec.subarray(187, 507), 200);
    want.set(dec.subarray(507, 508), 520);
    expect(got.length).toBe(521);
    expect(firstDiff(got, want)).toBe(-1);
    const m = manifestOf(sink);
    expect(m.gaps).toEqual([
      { track: 'inbound', startMs: 1000 + 146 / 8, lengthMs: 14 / 8, cause: 'timestamp-gap' },
      { track: 'inbound', startMs: 1000 + 197 / 8, lengthMs: 3 / 8, cause: 'timestamp-gap' },
    ]);
    expect(m).toMatchObject({ durationMs: 521 / 8, mediaEndMs: 1000 + 521 / 8, framesReceived: 5, framesDuplicate: 0 });
    expect((await soxInfo(sink.paths.wav)).Duration).toMatch(/= 521 samples/);
  });

  it('writes G.711 mu-law WAV bit-exact to the wire bytes (format tag 7, fact chunk)', async () => {
    const { sink, feeder } = openSink(capture.info, { format: 'mulaw' });
    await feedAll(feeder, sink, FRAMES);
    await sink.close('stopped');
    const wav = readWav(sink.paths.wav);
    // The capture's source project makes the same 58,138-byte file from it.
    expect(wav.size).toBe(58 + 363 * 160);
    expect(wav).toMatchObject({ formatTag: 7, channels: 1, bits: 8, blockAlign: 1, byteRate: 8000, factFrames: 58080, dataOffset: 58 });
    expect(Buffer.compare(wav.data, Buffer.from(concat(FRAMES.map((f) => f.mulaw))))).toBe(0);
    expect(manifestOf(sink)).toMatchObject({ format: 'mulaw', durationMs: 7260, bytes: 58138 });
    const info = await soxInfo(sink.paths.wav);
    expect(info['Sample Encoding']).toMatch(/u-law/);
    expect(info.Duration).toMatch(/= 58080 samples/);
    // sox's own G.711 expansion agrees with the formula.
    expect(firstDiff(await soxDecode(sink.paths.wav), expectedMono(FRAMES))).toBe(-1);
  });

  it('fills mu-law gaps with 0xFF and interleaves two tracks byte-exact', async () => {
    const { sink, feeder } = openSink(stereoInfo, { format: 'mulaw' });
    for (let i = 0; i < 50; i++) {
      if (i !== 10) feeder.feed('inbound', FRAMES[i]!.timestampMs, FRAMES[i]!.mulaw);
      feeder.feed('outbound', FRAMES[i]!.timestampMs, FRAMES[49 - i]!.mulaw);
    }
    await sink.close('stopped');
    const wav = readWav(sink.paths.wav);
    expect(wav).toMatchObject({ formatTag: 7, channels: 2, blockAlign: 2, factFrames: 8000 });
    const left = concat(FRAMES.slice(0, 50).map((f, i) => (i === 10 ? SILENT_FRAME : f.mulaw)));
    const right = concat(FRAMES.slice(0, 50).map((_, i) => FRAMES[49 - i]!.mulaw));
    const inter = new Uint8Array(16000);
    for (let i = 0; i < 8000; i++) {
      inter[2 * i] = left[i]!;
      inter[2 * i + 1] = right[i]!;
    }
    expect(Buffer.compare(wav.data, Buffer.from(inter))).toBe(0);
    expect(manifestOf(sink).gaps).toEqual([{ track: 'inbound', startMs: 299, lengthMs: 20, cause: 'timestamp-gap' }]);
  });

  it('writes mu-law silence (0xFF) in gaps, skipped stretches and dropped tails alike', async () => {
    // A 100 ms buffer recycled many times, a 2 s jump past it, and a burst whose tail is dropped.
    const { sink, feeder } = openSink(capture.info, { format: 'mulaw', bufferMs: 100 });
    const ts = (i: number) => 99 + i * 20 + (i >= 10 ? 2000 : 0);
    for (let i = 0; i < 15; i++) {
      if (i !== 4) feeder.feed('inbound', ts(i), FRAMES[i]!.mulaw);
      if (i % 2 === 1) await sink.flush();
    }
    for (let i = 15; i < 25; i++) feeder.feed('inbound', ts(i), FRAMES[i]!.mulaw); // 4 fit, 6 drop
    await sink.close('stopped');
    const wav = readWav(sink.paths.wav);
    const want = concat([
      ...FRAMES.slice(0, 10).map((f, i) => (i === 4 ? SILENT_FRAME : f.mulaw)),
      new Uint8Array(16000).fill(0xff),
      ...FRAMES.slice(10, 19).map((f) => f.mulaw),
      new Uint8Array(6 * 160).fill(0xff),
    ]);
    expect(Buffer.compare(wav.data, Buffer.from(want))).toBe(0);
    expect(manifestOf(sink).gaps).toEqual([
      { track: 'inbound', startMs: 179, lengthMs: 20, cause: 'timestamp-gap' },
      { track: 'inbound', startMs: 299, lengthMs: 2000, cause: 'timestamp-gap' },
      { track: 'inbound', startMs: ts(19), lengthMs: 120, cause: 'dropped' },
    ]);
  });

  it('pads an odd-sized mu-law data chunk', async () => {
    const { sink, feeder } = openSink(capture.info, { format: 'mulaw' });
    feeder.feed('inbound', 99, FRAMES[0]!.mulaw.subarray(0, 101));
    await sink.close('stopped');
    const wav = readWav(sink.paths.wav);
    expect(wav.dataSize).toBe(101);
    expect(wav.size).toBe(58 + 102);
    expect(wav.riffSize).toBe(wav.size - 8);
    expect((await soxInfo(sink.paths.wav)).Duration).toMatch(/= 101 samples/);
  });

  it('jumps a silence longer than the buffer without dropping, on both tracks', async () => {
    const { sink, feeder, ctx } = openSink(stereoInfo, { bufferMs: 2000, maxGapMs: 60_000 });
    const jump = 10_000;
    for (let i = 0; i < 20; i++) {
      feeder.feed('inbound', FRAMES[i]!.timestampMs, FRAMES[i]!.mulaw);
      feeder.feed('outbound', FRAMES[i]!.timestampMs, FRAMES[i]!.mulaw);
    }
    // No await: the writer gets no chance to drain, yet nothing may be dropped.
    for (let i = 20; i < 40; i++) {
      feeder.feed('inbound', FRAMES[i]!.timestampMs + jump, FRAMES[i]!.mulaw);
      feeder.feed('outbound', FRAMES[i]!.timestampMs + jump - 3, FRAMES[i]!.mulaw); // 3 ms behind
    }
    await sink.close('stopped');
    const wav = readWav(sink.paths.wav);
    const left = channel(wav, 0);
    const right = channel(wav, 1);
    const want = new Int16Array(40 * 160 + jump * 8);
    want.set(expectedMono(FRAMES.slice(0, 20)), 0);
    want.set(expectedMono(FRAMES.slice(20, 40)), 20 * 160 + jump * 8);
    expect(firstDiff(left, want)).toBe(-1);
    const wantRight = new Int16Array(want.length);
    wantRight.set(expectedMono(FRAMES.slice(0, 20)), 0);
    wantRight.set(expectedMono(FRAMES.slice(20, 40)), 20 * 160 + jump * 8 - 24);
    expect(firstDiff(right, wantRight)).toBe(-1);
    const m = manifestOf(sink);
    expect(m).toMatchObject({ framesDropped: 0, framesLate: 0, durationMs: 800 + jump });
    expect(m.gaps).toEqual([
      { track: 'inbound', startMs: 499, lengthMs: jump, cause: 'timestamp-gap' },
      { track: 'outbound', startMs: 499, lengthMs: jump - 3, cause: 'timestamp-gap' },
    ]);
    expect(ctx.stats.dropped).toBe(0);
  });

  it('records a jump past maxGapMs as a discontinuity, not an hour of silence; late frames keep their own side of it', async () => {
    const { sink, feeder, ctx } = openSink(capture.info); // maxGapMs 5000 by default
    const T0 = FRAMES[0]!.timestampMs;
    const HOUR = 3_600_000;
    for (let i = 0; i < 20; i++) if (i !== 10) feeder.feed('inbound', FRAMES[i]!.timestampMs, FRAMES[i]!.mulaw);
    for (let i = 20; i < 40; i++) feeder.feed('inbound', FRAMES[i]!.timestampMs + HOUR, FRAMES[i]!.mulaw);
    // Late, from before the jump: frame 10 fills its hole; a frame 19.5 would run into the audio after the jump.
    feeder.feed('inbound', FRAMES[10]!.timestampMs, FRAMES[10]!.mulaw);
    feeder.feed('inbound', FRAMES[19]!.timestampMs + 10, FRAMES[19]!.mulaw);
    await sink.close('stopped');
    const wav = readWav(sink.paths.wav);
    expect(wav.size).toBe(44 + 40 * 320); // before MAX_GAP_MS: 57.6 MB of silence
    expect(firstDiff(channel(wav, 0), expectedMono(FRAMES.slice(0, 40)))).toBe(-1);
    const m = manifestOf(sink);
    expect(m.discontinuities).toEqual([{ fileMs: 400, mediaMs: T0 + 400 + HOUR, skippedMs: HOUR }]);
    expect(m).toMatchObject({ gaps: [], durationMs: 800, mediaStartMs: T0, mediaEndMs: T0 + 800 + HOUR, framesLate: 2, framesLateDropped: 1, stopped: null });
    expect(ctx.stats.errors).toBe(0);
  });

  it('maps gaps after a discontinuity to media time', async () => {
    const { sink, feeder } = openSink(capture.info, { maxGapMs: 1000 });
    const T0 = FRAMES[0]!.timestampMs;
    for (let i = 0; i < 10; i++) feeder.feed('inbound', FRAMES[i]!.timestampMs, FRAMES[i]!.mulaw);
    for (let i = 10; i < 30; i++) if (i !== 20) feeder.feed('inbound', FRAMES[i]!.timestampMs + 2000, FRAMES[i]!.mulaw);
    await sink.close('stopped');
    const m = manifestOf(sink);
    expect(m.discontinuities).toEqual([{ fileMs: 200, mediaMs: T0 + 2200, skippedMs: 2000 }]);
    expect(m.gaps).toEqual([{ track: 'inbound', startMs: T0 + 2400, lengthMs: 20, cause: 'timestamp-gap' }]);
    expect(m).toMatchObject({ durationMs: 600, framesLost: 1 });
  });

  it('stops at the size ceiling: the file never passes maxBytes, the manifest says size_limit, later frames are counted dropped', async () => {
    const maxBytes = 44 + 100 * 320 + 100; // room for 100 frames and a bit
    const { factory, sink, feeder, ctx } = openSink(capture.info, { maxBytes });
    await feedAll(feeder, sink, FRAMES.slice(0, 200), 10);
    await sink.close('stopped');
    const wav = readWav(sink.paths.wav);
    expect(wav.size).toBeLessThanOrEqual(maxBytes);
    expect(wav.dataSize).toBe(Math.floor((maxBytes - 44 - 1) / 2) * 2);
    expect(firstDiff(channel(wav, 0), expectedMono(FRAMES.slice(0, 200)).subarray(0, wav.dataSize / 2))).toBe(-1);
    const m = manifestOf(sink);
    expect(m).toMatchObject({ stopped: 'size_limit', error: null, bytes: wav.size });
    expect(m.framesDropped).toBeGreaterThan(80);
    expect(factory.stats.stopped).toEqual({ disk_low: 0, size_limit: 1 });
    expect(ctx.lines.some((l) => l.level === 40 && l.reason === 'size_limit')).toBe(true);
  });

  it('counts frames dropped when the disk cannot keep up and keeps timing with silence', async () => {
    // 100 ms of buffer, and the writer never runs during the burst: 5 frames fit, the rest drop.
    const { sink, feeder, ctx } = openSink(capture.info, { bufferMs: 100 });
    for (const f of FRAMES) feeder.feed('inbound', f.timestampMs, f.mulaw);
    expect(ctx.stats.dropped).toBe(358);
    expect(ctx.stats.queued).toBe(5);
    await sink.close('stopped');
    const got = channel(readWav(sink.paths.wav), 0);
    const want = expectedMono(FRAMES);
    want.fill(0, 5 * 160);
    expect(got.length).toBe(58080);
    expect(firstDiff(got, want)).toBe(-1);
    const m = manifestOf(sink);
    expect(m).toMatchObject({ framesReceived: 363, framesDropped: 358, framesLost: 0, durationMs: 7260 });
    expect(m.gaps).toEqual([{ track: 'inbound', startMs: FRAMES[5]!.timestampMs, lengthMs: 358 * 20, cause: 'dropped' }]);
    expect(ctx.stats).toEqual({ dropped: 358, errors: 0, queued: 0 });
  });

  it('under bursts with a small buffer, every frame is either exact in place or inside a dropped gap', async () => {
    const { sink, feeder, ctx } = openSink(stereoInfo, { bufferMs: 100 });
    for (let i = 0; i < 363; i++) {
      feeder.feed('inbound', FRAMES[i]!.timestampMs, FRAMES[i]!.mulaw);
      feeder.feed('outbound', FRAMES[i]!.timestampMs, FRAMES[362 - i]!.mulaw);
      if (i % 9 === 8) await sink.flush(); // the disk catches up now and then
    }
    await sink.close('stopped');
    const m = manifestOf(sink);
    const wav = readWav(sink.paths.wav);
    expect(m.durationMs).toBe(7260);
    expect(m.framesDropped).toBeGreaterThan(0);
    expect(ctx.stats.dropped).toBe(m.framesDropped);
    let droppedMs = 0;
    for (const [ch, track, src] of [
      [0, 'inbound', FRAMES],
      [1, 'outbound', [...FRAMES].reverse()],
    ] as const) {
      const want = expectedMono(src);
      for (const g of m.gaps!) {
        if (g.track !== track) continue;
        expect(g.cause).toBe('dropped');
        droppedMs += g.lengthMs;
        const a = (g.startMs - 99) * 8;
        want.fill(0, a, a + g.lengthMs * 8);
      }
      expect(firstDiff(channel(wav, ch), want)).toBe(-1);
    }
    expect(droppedMs).toBe(m.framesDropped! * 20);
  });

  it('keeps a valid WAV header in the .partial at every flush (what a killed process leaves)', async () => {
    const { sink, feeder } = openSink(capture.info, { flushIntervalMs: 20 });
    expect(existsSync(sink.paths.wav)).toBe(false);
    for (let i = 0; i < 100; i++) feeder.feed('inbound', FRAMES[i]!.timestampMs, FRAMES[i]!.mulaw);
    await sink.flush();
    let wav = readWav(sink.paths.partial);
    expect(wav.dataSize).toBe(100 * 160 * 2);
    expect(wav.riffSize).toBe(wav.size - 8);
    expect(firstDiff(channel(wav, 0), expectedMono(FRAMES.slice(0, 100)))).toBe(-1);
    expect((await soxInfo(sink.paths.partial)).Duration).toMatch(/= 16000 samples/);
    const sidecar = JSON.parse(readFileSync(sink.paths.sidecar, 'utf8'));
    expect(sidecar).toMatchObject({ format: 'pcm16', channels: 1, tracks: ['inbound'], mediaStartMs: 99 });

    // Without any explicit flush, the ticker writes and patches the header on its own.
    for (let i = 100; i < 150; i++) feeder.feed('inbound', FRAMES[i]!.timestampMs, FRAMES[i]!.mulaw);
    await waitFor(() => readWav(sink.paths.partial).dataSize >= 150 * 320, 5000, 'the ticker to write the frames');
    wav = readWav(sink.paths.partial);
    expect(wav.dataSize).toBe(150 * 320);
    expect(firstDiff(channel(wav, 0), expectedMono(FRAMES.slice(0, 150)))).toBe(-1);
    await sink.close('stopped');
    expect(existsSync(sink.paths.partial)).toBe(false);
    expect(existsSync(sink.paths.sidecar)).toBe(false);
  });

  it('refuses a stream whose SIDs do not match their patterns, before touching any path', async () => {
    const factory = createRecordingSinkFactory({ dataDir: dir });
    for (const bad of [
      { accountSid: '../../etc' },
      { callSid: 'CA../../../x' },
      { streamSid: `MZ${'0'.repeat(31)}/` },
    ]) {
      const ctx = testContext();
      expect(factory.open({ ...capture.info, ...bad }, ctx)).toBeNull();
      expect(ctx.stats.errors).toBe(1);
      expect(ctx.lines.some((l) => l.level === 50 && String(l.msg).includes('bad SID'))).toBe(true);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('degrades without throwing when the file cannot be created, and never overwrites a recording', async () => {
    const first = openSink(capture.info);
    first.feeder.feed('inbound', 99, FRAMES[0]!.mulaw);
    await first.sink.close('stopped');
    const before = readFileSync(first.sink.paths.wav);

    const again = openSink(capture.info); // the same StreamSid again
    for (const f of FRAMES.slice(0, 20)) again.feeder.feed('inbound', f.timestampMs, f.mulaw);
    await again.sink.flush();
    for (const f of FRAMES.slice(20, 40)) again.feeder.feed('inbound', f.timestampMs, f.mulaw);
    await expect(again.sink.close('stopped')).resolves.toBeUndefined();
    expect(again.ctx.stats.errors).toBe(1);
    expect(again.ctx.stats.dropped).toBe(20); // refused after the failure, and counted
    expect(again.ctx.stats.queued).toBe(0);
    expect(again.ctx.lines.filter((l) => l.level === 50)).toHaveLength(1);
    expect(Buffer.compare(readFileSync(first.sink.paths.wav), before)).toBe(0);
  });

  it('a second sink for a live StreamSid fails its exclusive open without touching the live sidecar', async () => {
    const live = openSink(capture.info);
    for (const f of FRAMES.slice(0, 20)) live.feeder.feed('inbound', f.timestampMs, f.mulaw);
    await live.sink.flush();
    const sidecar = readFileSync(live.sink.paths.sidecar, 'utf8');
    // Another process (or a session check that was bypassed) opens the same SID, stereo.
    const intruder = openSink({ ...stereoInfo, customParameters: { owner: 'intruder' } });
    await intruder.sink.close('stopped');
    expect(intruder.ctx.stats.errors).toBe(1);
    expect(readFileSync(live.sink.paths.sidecar, 'utf8')).toBe(sidecar);
    await live.sink.close('stopped');
    expect(manifestOf(live.sink)).toMatchObject({ channels: 1, framesReceived: 20, error: null });
  });

  it('finishes the recording when its data directory is deleted mid-stream: directories recreated, every frame kept', async () => {
    const { sink, feeder, ctx } = openSink(capture.info);
    await sink.flush(); // open done: .partial and sidecar exist
    rmSync(dir, { recursive: true, force: true });
    await feedAll(feeder, sink, FRAMES.slice(0, 200));
    await sink.close('stopped');
    const wav = readWav(sink.paths.wav);
    expect(firstDiff(channel(wav, 0), expectedMono(FRAMES.slice(0, 200)))).toBe(-1);
    expect(manifestOf(sink)).toMatchObject({ framesReceived: 200, framesDropped: 0, durationMs: 4000, error: null, bytes: wav.size });
    expect(readdirSync(sink.paths.dir).sort()).toEqual([`${capture.info.streamSid}.json`, `${capture.info.streamSid}.wav`]);
    expect(ctx.stats).toMatchObject({ errors: 0, dropped: 0 });
    expect(ctx.lines.some((l) => l.level === 40 && String(l.msg).includes('recreated it and restored the recording'))).toBe(true);
  });

  it('ignores frames after close and is idempotent', async () => {
    const { sink, feeder } = openSink(capture.info);
    feeder.feed('inbound', 99, FRAMES[0]!.mulaw);
    const p = sink.close('stopped');
    feeder.feed('inbound', 119, FRAMES[1]!.mulaw);
    expect(sink.close('aborted')).toBe(p);
    await p;
    expect(manifestOf(sink)).toMatchObject({ framesReceived: 1, closeReason: 'stopped', durationMs: 20 });
  });

  it('writes an empty but valid recording for a stream without media', async () => {
    const { sink } = openSink(capture.info);
    await sink.close('aborted');
    const wav = readWav(sink.paths.wav);
    expect(wav.dataSize).toBe(0);
    expect(manifestOf(sink)).toMatchObject({ durationMs: 0, mediaStartMs: null, mediaEndMs: null, framesReceived: 0, closeReason: 'aborted' });
    expect((await soxInfo(sink.paths.wav)).Channels).toBe('1');
  });

  it('survives a start time no Date can hold', async () => {
    const { sink, feeder, ctx } = openSink({ ...capture.info, startedAtMs: Number.NaN });
    feeder.feed('inbound', 99, FRAMES[0]!.mulaw);
    await sink.close('stopped');
    expect(manifestOf(sink)).toMatchObject({ wallStart: null, durationMs: 20 });
    expect(ctx.stats.errors).toBe(0);
  });

  it('ignores frames of a track the stream did not announce', async () => {
    const { sink, feeder } = openSink(capture.info);
    feeder.feed('inbound', 99, FRAMES[0]!.mulaw);
    feeder.feed('outbound', 99, SILENT_FRAME);
    await sink.close('stopped');
    expect(readWav(sink.paths.wav).channels).toBe(1);
    expect(manifestOf(sink)).toMatchObject({ framesReceived: 2, framesIgnored: 1, durationMs: 20 });
  });
});
