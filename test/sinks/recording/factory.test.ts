import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StreamInfo } from '../../../src/core/stream.js';
import { createRecordingSinkFactory } from '../../../src/sinks/recording/factory.js';
import { RecordingSink } from '../../../src/sinks/recording/recording-sink.js';
import { loadCapture, tempDir, testContext } from './helpers.js';

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

  it('starts each ring at two flush intervals (plus the track lag for stereo), not the whole buffer', async () => {
    const factory = createRecordingSinkFactory({ dataDir: dir, bufferMs: 5000, flushIntervalMs: 500, maxTrackLagMs: 500 });
    const mono = factory.open(streamInfo(1), testContext())!;
    const stereo = factory.open(streamInfo(2, ['inbound', 'outbound']), testContext())!;
    expect(mono.ringFrames).toBe(8000); // 1 s of 8 kHz
    expect(stereo.ringFrames).toBe(12_000); // 1.5 s
    const small = createRecordingSinkFactory({ dataDir: dir, bufferMs: 300 }).open(streamInfo(3), testContext())!;
    expect(small.ringFrames).toBe(2400); // never more than the buffer itself
    await Promise.all([mono, stereo, small].map((s) => s.close('stopped')));
    await factory.shutdown();
  });

  it('refuses a header interval shorter than the flush interval or longer than a second', () => {
    expect(() => createRecordingSinkFactory({ dataDir: dir, flushIntervalMs: 500, headerIntervalMs: 200 })).toThrow(/headerIntervalMs/);
    expect(() => createRecordingSinkFactory({ dataDir: dir, headerIntervalMs: 5000 })).toThrow(/headerIntervalMs/);
  });
});
