import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus, type LevelChange } from '../../../src/core/events.js';
import { createLevelSinkFactory } from '../../../src/sinks/level/level-sink.js';
import type { MediaFrame } from '../../../src/sinks/sink.js';
import type { StreamInfo, Track } from '../../../src/core/stream.js';
import { decodeMulaw } from '../../../src/twilio/mulaw.js';
import { newSid } from '../../../src/twilio/sids.js';
import { startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { LOUD, QUIET, TestStream, progressReached } from '../../conditions/helpers.js';

const info: StreamInfo = {
  accountSid: newSid('account'),
  callSid: newSid('call'),
  streamSid: newSid('stream'),
  tracks: ['inbound', 'outbound'],
  customParameters: {},
  conferenceSid: null,
  startedAtMs: Date.now(),
};

/** A frame as the session builds it: energy summed while decoding. */
function frame(bytes: Uint8Array, track: Track, timestampMs: number, late = false): MediaFrame {
  const pcm = new Int16Array(bytes.length);
  const energy = decodeMulaw(bytes, bytes.length, pcm);
  return { track, trackIndex: track === 'inbound' ? 0 : 1, timestampMs, chunk: 0, sequenceNumber: 0, samples: bytes.length, pcm, mulaw: bytes, energy, receivedAt: 0, late };
}

function recorder(bus: EventBus) {
  const levels: LevelChange[] = [];
  const progress: [Track, number][] = [];
  bus.on('level', (c) => levels.push(c));
  bus.on('media-progress', (_i, t, atMs) => progress.push([t, atMs]));
  return { levels, progress };
}

describe('LevelSink', () => {
  it('emits level only on transitions, per track, with the media times of the change', () => {
    const bus = new EventBus(pino({ level: 'silent' }));
    const rec = recorder(bus);
    const sink = createLevelSinkFactory({ bus }).open(info, { log: pino({ level: 'silent' }), stats: { dropped: 0, errors: 0, queued: 0 } })!;
    let t = 0;
    const feed = (bytes: Uint8Array, ms: number, track: Track) => {
      for (const end = t + ms; t < end; t += 20) sink.accept(frame(bytes, track, t));
    };
    feed(QUIET, 200, 'inbound');
    feed(LOUD, 500, 'inbound');
    feed(QUIET, 500, 'inbound');
    t = 0;
    feed(LOUD, 200, 'outbound');
    expect(rec.levels.map((c) => [c.track, c.speaking, c.sinceMs, c.atMs])).toEqual([
      ['inbound', true, 200, 260],
      ['inbound', false, 700, 1000],
      ['outbound', true, 0, 60],
    ]);
    expect(rec.levels[0]!.info).toBe(info);
  });

  it('reports media progress at most once per 250 ms of media per track, from the first frame', () => {
    const bus = new EventBus(pino({ level: 'silent' }));
    const rec = recorder(bus);
    const sink = createLevelSinkFactory({ bus }).open(info, { log: pino({ level: 'silent' }), stats: { dropped: 0, errors: 0, queued: 0 } })!;
    for (let t = 100; t < 1100; t += 20) {
      sink.accept(frame(QUIET, 'inbound', t));
      sink.accept(frame(QUIET, 'outbound', t));
    }
    const inbound = rec.progress.filter(([tr]) => tr === 'inbound').map(([, at]) => at);
    expect(inbound).toEqual([120, 380, 640, 900]);
    expect(rec.progress.filter(([tr]) => tr === 'outbound')).toHaveLength(4);
  });

  it('ignores late frames (their media time was already reported)', () => {
    const bus = new EventBus(pino({ level: 'silent' }));
    const rec = recorder(bus);
    const sink = createLevelSinkFactory({ bus }).open(info, { log: pino({ level: 'silent' }), stats: { dropped: 0, errors: 0, queued: 0 } })!;
    sink.accept(frame(QUIET, 'inbound', 0));
    for (let i = 0; i < 10; i++) sink.accept(frame(LOUD, 'inbound', 20, true));
    expect(rec.levels).toEqual([]);
    expect(rec.progress).toEqual([['inbound', 20]]);
  });

  it('rejects a release level above the onset level at start-up', () => {
    const bus = new EventBus(pino({ level: 'silent' }));
    expect(() => createLevelSinkFactory({ bus, thresholdDbfs: -50, releaseDbfs: -30 })).toThrow(RangeError);
  });
});

describe('LevelSink in a gateway', () => {
  let tg: TestGateway | undefined;
  afterEach(async () => {
    await tg?.close();
    tg = undefined;
  });

  it('turns loud then silent frames sent over a WebSocket into speech and silence events', async () => {
    const bus = new EventBus(pino({ level: 'silent' }));
    tg = await startTestGateway({}, { sinkFactories: [createLevelSinkFactory({ bus })], bus });
    const rec = recorder(tg.gw.bus);
    const s = await TestStream.open(tg.ws, { tracks: ['inbound', 'outbound'] });
    const done = Promise.all([progressReached(tg.gw.bus, s.streamSid, 1500), progressReached(tg.gw.bus, s.streamSid, 1500, 'outbound')]);
    s.send(QUIET, 300, 'inbound');
    s.send(LOUD, 700, 'inbound');
    s.send(QUIET, 500, 'inbound');
    s.send(QUIET, 1500, 'outbound');
    await done;
    s.close();
    expect(rec.levels.map((c) => [c.info.streamSid, c.track, c.speaking, c.sinceMs, c.atMs])).toEqual([
      [s.streamSid, 'inbound', true, 300, 360],
      [s.streamSid, 'inbound', false, 1000, 1300],
    ]);
  });
});
