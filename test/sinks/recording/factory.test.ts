import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StreamInfo } from '../../../src/core/stream.js';
import type { MediaFrame } from '../../../src/sinks/sink.js';
import { createRecordingSinkFactory } from '../../../src/sinks/recording/factory.js';
import { RecordingSink } from '../../../src/sinks/recording/recording-sink.js';
import { recoverPartialRecordings } from '../../../src/sinks/recording/recover.js';
import { Feeder, loadCapture, readWav, tempDir, testContext } from './helpers.js';
import { waitFor } from '../../helpers/wait.js';

const capture = loadCapture();
let dir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  await cleanup();
});

/** A distinct, valid stream SID per index. */
const streamInfo = (i: number, tracks: StreamInfo['tracks'] = ['inbound']): StreamInfo => ({
  ...capture.info,
  streamSid: `MZ${i.toString(16).padStart(32, '0')}`,
  tracks,
});

describe('createRecordingSinkFactory', () => {
  it('with spareStreams, makes a start\'s directory, .partial and sidecar from spare inodes, refuses a live SID as before, and removes the spares at shutdown', async () => {
    const factory = createRecordingSinkFactory({ dataDir: dir, spareStreams: 2 });
    const spares = join(dir, `.recording-spares-${hostname()}-${process.pid}`);
    // Two streams' worth: two directories, four files.
    await waitFor(() => existsSync(spares) && readdirSync(spares).length === 6, 10_000, 'the spares made');
    const spareInodes = new Set(readdirSync(spares).map((n) => statSync(join(spares, n)).ino));
    // Recovery (at start-up) reads only SID directories: the spares are not recordings.
    expect(await recoverPartialRecordings(dir, testContext().log)).toEqual({ recovered: [], failed: [] });
    expect(readdirSync(spares)).toHaveLength(6);
    const ctx = testContext();
    const sink = factory.open(streamInfo(1), ctx)!;
    const feeder = new Feeder(sink);
    for (const f of capture.frames.slice(0, 50)) feeder.feed('inbound', f.timestampMs, f.mulaw);
    await sink.flush(); // opened, sidecar written
    for (const path of [sink.paths.dir, sink.paths.partial, sink.paths.sidecar]) expect(spareInodes.has(statSync(path).ino)).toBe(true);
    const partialInode = statSync(sink.paths.partial).ino;
    // The same SID again: the exclusive link fails as the exclusive open did, nothing of the live stream touched.
    const sidecar = readFileSync(sink.paths.sidecar, 'utf8');
    const intruder = testContext();
    await factory.open(streamInfo(1), intruder)!.close('stopped');
    expect(intruder.stats.errors).toBe(1);
    expect(readFileSync(sink.paths.sidecar, 'utf8')).toBe(sidecar);
    for (const f of capture.frames.slice(50, 100)) feeder.feed('inbound', f.timestampMs, f.mulaw);
    await sink.close('stopped');
    expect(statSync(sink.paths.wav).ino).toBe(partialInode);
    expect(readWav(sink.paths.wav).dataSize).toBe(100 * 160 * 2);
    expect(JSON.parse(readFileSync(sink.paths.manifest, 'utf8'))).toMatchObject({ framesReceived: 100, error: null });
    expect(existsSync(sink.paths.sidecar)).toBe(false);
    expect(ctx.stats).toMatchObject({ errors: 0, dropped: 0 });
    // Idle again, the thread remakes what was taken.
    await waitFor(() => readdirSync(spares).length === 6, 10_000, 'the spares remade');
    await factory.shutdown();
    expect(existsSync(spares)).toBe(false);
  });

  it('removes the spares a dead process left: on this host by its pid, from another host once its lease ran out; keeps a live one', async () => {
    const left = (name: string, ageMs: number): string => {
      const path = join(dir, `.recording-spares-${name}`);
      mkdirSync(path);
      writeFileSync(join(path, '0'), '');
      const at = new Date(Date.now() - ageMs);
      utimesSync(path, at, at);
      return path;
    };
    // pid_max on Linux is at most 2^22: this pid cannot be running.
    const deadHere = left(`${hostname()}-999999999`, 0);
    const staleElsewhere = left('old-container-1', 11 * 60_000);
    const liveElsewhere = left('other-host-1', 30_000);
    const factory = createRecordingSinkFactory({ dataDir: dir, spareStreams: 1 });
    const spares = join(dir, `.recording-spares-${hostname()}-${process.pid}`);
    await waitFor(() => existsSync(spares) && readdirSync(spares).length === 3, 10_000, 'the spares made');
    expect([existsSync(deadHere), existsSync(staleElsewhere), existsSync(liveElsewhere)]).toEqual([false, false, true]);
    await factory.shutdown();
    expect(existsSync(spares)).toBe(false);
    expect(existsSync(liveElsewhere)).toBe(true);
  });

  it('staggers flushes: each tick flushes one eighth of the streams, each stream once per interval', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const ticked: RecordingSink[] = [];
    vi.spyOn(RecordingSink.prototype, 'flushTick').mockImplementation(function (this: RecordingSink) {
      ticked.push(this);
    });
    const factory = createRecordingSinkFactory({ dataDir: dir, flushIntervalMs: 800 });
    const sinks = Array.from({ length: 16 }, (_, i) => factory.open(streamInfo(i), testContext())!);
    vi.advanceTimersByTime(100); // one tick (800 ms / 8)
    expect(ticked).toHaveLength(2);
    vi.advanceTimersByTime(700); // the rest of the interval
    expect(ticked).toHaveLength(16);
    expect(new Set(ticked)).toEqual(new Set(sinks));
    vi.advanceTimersByTime(800);
    expect(ticked).toHaveLength(32);
    for (const sink of sinks) expect(ticked.filter((s) => s === sink)).toHaveLength(2);
    vi.useRealTimers();
    await Promise.all(sinks.map((s) => s.close('stopped')));
    await factory.shutdown();
  });

  it('starts each ring at two flush intervals, not the whole buffer, and grows a two-track ring only when a track lags', async () => {
    const factory = createRecordingSinkFactory({ dataDir: dir, bufferMs: 5000, flushIntervalMs: 500, maxTrackLagMs: 500 });
    const mono = factory.open(streamInfo(1), testContext())!;
    const stereo = factory.open(streamInfo(2, ['inbound', 'outbound']), testContext())!;
    expect(mono.ringFrames).toBe(8000); // 1 s of 8 kHz
    expect(stereo.ringFrames).toBe(8000); // the lag's room is taken only when a track lags
    const small = createRecordingSinkFactory({ dataDir: dir, bufferMs: 300 }).open(streamInfo(3), testContext())!;
    expect(small.ringFrames).toBe(2400); // never more than the buffer itself

    // Two tracks in step, flushed every 500 ms: 2 s fit the starting ring.
    const frame: MediaFrame = { track: 'inbound', trackIndex: 0, timestampMs: 0, chunk: 0, sequenceNumber: 0, samples: 160, pcm: new Int16Array(160).fill(99), mulaw: new Uint8Array(160), energy: 0, receivedAt: 0, late: false };
    const send = (trackIndex: 0 | 1, i: number) => {
      frame.trackIndex = trackIndex;
      frame.track = trackIndex === 0 ? 'inbound' : 'outbound';
      frame.timestampMs = 1000 + i * 20;
      stereo.accept(frame);
    };
    for (let i = 0; i < 100; i++) {
      send(0, i);
      send(1, i);
      if (i % 25 === 24) await stereo.flush();
    }
    expect(stereo.ringFrames).toBe(8000);
    // Then the outbound track pauses for 500 ms and stays that far behind: the horizon holds the
    // lag back, so with a flush a little late (520 ms) the audio outgrows the starting ring.
    for (let i = 100; i < 204; i++) {
      send(0, i);
      if (i >= 125) send(1, i - 25);
      if (i % 26 === 25) await stereo.flush();
    }
    expect(stereo.ringFrames).toBeGreaterThan(8000);
    await Promise.all([mono, stereo, small].map((s) => s.close('stopped')));
    await factory.shutdown();
  });

  it('refuses a header interval shorter than the flush interval or longer than a second', () => {
    expect(() => createRecordingSinkFactory({ dataDir: dir, flushIntervalMs: 500, headerIntervalMs: 200 })).toThrow(/headerIntervalMs/);
    expect(() => createRecordingSinkFactory({ dataDir: dir, headerIntervalMs: 5000 })).toThrow(/headerIntervalMs/);
  });
});
