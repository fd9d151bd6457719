import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSim, type Sim, type StreamFaults } from '../../src/emulator/index.js';
import { toneSource } from '../../src/emulator/audio-source.js';
import { closeSimBench, credentials, startSimBench } from './helpers/fixture.js';
import type { CallbackReceiver, StreamConnection, StreamReceiver } from './helpers/receivers.js';
import { createStream, media, mediaFields, type MediaFields } from './helpers/streams.js';

const TONE = { type: 'tone', hz: 440, ms: 400 } as const; // 20 frames

describe('stream faults', () => {
  let sim: Sim;
  let rx: StreamReceiver;
  let cb: CallbackReceiver;

  beforeEach(async () => ({ sim, rx, cb } = await startSimBench(0)));
  afterEach(() => closeSimBench({ sim, rx, cb }));

  /** Streams `audio` with `faults` (given on the call) and returns the finished connection. */
  async function run(faults: StreamFaults, audio: Parameters<Sim['createCall']>[0] = { audio: TONE }, n = 0): Promise<{ conn: StreamConnection; m: MediaFields[] }> {
    const call = await sim.createCall({ ...audio, streamFaults: faults });
    await createStream(sim, call.sid, { Url: `${rx.origin}/media`, StatusCallback: `${cb.origin}/status` });
    const conn = await rx.connection(n);
    await conn.closed;
    return { conn, m: media(conn).map(mediaFields) };
  }

  const chunks = (m: MediaFields[]): number[] => m.map((f) => Number(f.chunk));

  it('drops listed frames: their sequenceNumber, chunk and timestamp leave a gap', async () => {
    const { conn, m } = await run({ drop: { frames: [3, 5] } });
    expect(chunks(m)).toEqual([1, 2, 4, ...Array.from({ length: 15 }, (_, i) => i + 6)]);
    for (const f of m) {
      expect(Number(f.sequenceNumber)).toBe(Number(f.chunk) + 1);
      expect(Number(f.timestamp)).toBe(99 + 20 * (Number(f.chunk) - 1));
    }
    expect(conn.messages.at(-1)!.json).toMatchObject({ event: 'stop', sequenceNumber: '22' });
  });

  it('drops at a seeded rate, the same frames on every run', async () => {
    const first = chunks((await run({ drop: { rate: 0.3 }, seed: 7 }, { audio: { type: 'tone', hz: 440, ms: 4000 } })).m);
    const second = chunks((await run({ drop: { rate: 0.3 }, seed: 7 }, { audio: { type: 'tone', hz: 440, ms: 4000 } }, 1)).m);
    expect(second).toEqual(first);
    expect(first.length).toBeGreaterThan(200 * 0.55);
    expect(first.length).toBeLessThan(200 * 0.85);
    const other = chunks((await run({ drop: { rate: 0.3 }, seed: 8 }, { audio: { type: 'tone', hz: 440, ms: 4000 } }, 2)).m);
    expect(other).not.toEqual(first);
  });

  it('duplicates frames as identical messages', async () => {
    const { conn, m } = await run({ duplicate: { frames: [4] } });
    expect(chunks(m)).toEqual([1, 2, 3, 4, 4, ...Array.from({ length: 16 }, (_, i) => i + 5)]);
    const texts = conn.messages.filter((x) => x.json.media?.chunk === '4').map((x) => x.text);
    expect(texts[0]).toBe(texts[1]);
  });

  it('reorders a frame behind the next ones', async () => {
    const { m } = await run({ reorder: { frames: [4], by: 2 } });
    expect(chunks(m).slice(0, 8)).toEqual([1, 2, 3, 5, 6, 4, 7, 8]);
    expect(m).toHaveLength(20);
  });

  it('releases held frames before stop', async () => {
    const { conn, m } = await run({ reorder: { frames: [20], by: 5 } });
    expect(chunks(m).at(-1)).toBe(20);
    expect(conn.messages.at(-1)!.json.event).toBe('stop');
  });

  it('stalls at a delayed frame, then sends the backlog', async () => {
    const { conn } = await run({ delay: { frames: [10], ms: 200 } });
    const arrival = (chunk: string): number => conn.messages.find((x) => x.json.media?.chunk === chunk)!.at;
    expect(arrival('10') - arrival('9')).toBeGreaterThanOrEqual(180);
    expect(arrival('20') - arrival('10')).toBeLessThan(100);
  });

  it('suppresses silent frames but keeps the timestamps moving (a gap), with contiguous counters', async () => {
    const speech = toneSource(440, 200);
    const audio = new Uint8Array(speech.frameCount * 160 * 2 + 10 * 160).fill(0xff);
    for (let i = 0; i < speech.frameCount; i++) audio.set(speech.bytes(i), i * 160);
    for (let i = 0; i < speech.frameCount; i++) audio.set(speech.bytes(i), (speech.frameCount + 10 + i) * 160);
    const { m } = await run({ silenceGaps: true }, { audio: { type: 'mulaw', data: audio } });
    expect(m).toHaveLength(20);
    expect(chunks(m)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(m.map((f) => Number(f.sequenceNumber))).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    expect(Number(m[10]!.timestamp) - Number(m[9]!.timestamp)).toBe(20 * 11);
  });

  it('cuts odd chunk sizes whose bytes and timestamps still add up', async () => {
    const { m } = await run({ chunkSizes: [80, 240, 1] });
    const sizes = m.map((f) => Buffer.from(f.payload, 'base64').length);
    expect(sizes.slice(0, 6)).toEqual([80, 240, 1, 80, 240, 1]);
    const src = toneSource(440, 400);
    const original = Buffer.concat(Array.from({ length: src.frameCount }, (_, i) => src.bytes(i)));
    expect(Buffer.concat(m.map((f) => Buffer.from(f.payload, 'base64')))).toEqual(original);
    let bytes = 0;
    for (const f of m) {
      expect(Number(f.timestamp)).toBe(99 + Math.floor(bytes / 8));
      bytes += Buffer.from(f.payload, 'base64').length;
    }
  });

  it('destroys the socket without stop after N frames and reports a stream error; the call stays', async () => {
    const call = await sim.createCall({ streamFaults: { closeAfterFrames: 5 } });
    const r = await createStream(sim, call.sid, { Url: `${rx.origin}/media`, StatusCallback: `${cb.origin}/status` });
    const conn = await rx.connection();
    expect(await conn.closed).toBe(1006);
    expect(media(conn)).toHaveLength(5);
    expect(conn.messages.some((x) => x.json.event === 'stop')).toBe(false);
    const [err] = await sim.waitForCallbacks({ event: 'stream-error' });
    expect(err!.params.StreamError).toMatch(/Broken Pipe/);
    expect(sim.stream(r.body.sid as string)).toMatchObject({ status: 'stopped', endReason: 'fault', stopSent: false });
    expect(sim.call(call.sid)!.status).toBe('in-progress');
  });

  it('delays connected and start on a slow handshake', async () => {
    const call = await sim.createCall({ audio: TONE, streamFaults: { handshakeDelayMs: 150, startDelayMs: 100 } });
    await createStream(sim, call.sid, { Url: `${rx.origin}/media` });
    // The socket opens undelayed: the Sim reports it open before anything is sent on it.
    expect(await sim.waitForStream({ connected: true })).toMatchObject({ messagesSent: 0, status: 'in-progress' });
    const conn = await rx.connection();
    const opened = performance.now();
    await conn.closed;
    expect(conn.messages[0]!.at - opened).toBeGreaterThanOrEqual(130);
    expect(conn.messages[1]!.at - conn.messages[0]!.at).toBeGreaterThanOrEqual(90);
  });

  it('applies fault rules to matching new streams, once when asked', async () => {
    sim.faults.addStreamRule({ match: { name: 'lossy' }, faults: { drop: { frames: [1] } } });
    sim.faults.addStreamRule({ match: { track: 'outbound_track' }, once: true, faults: { duplicate: { frames: [1] } } });
    const call = await sim.createCall({ audio: { type: 'tone', hz: 440, ms: 100 }, hangupOnAudioEnd: false });
    const lossy = await createStream(sim, call.sid, { Url: `${rx.origin}/a`, Name: 'lossy' });
    const out1 = await createStream(sim, call.sid, { Url: `${rx.origin}/b`, Track: 'outbound_track' });
    const out2 = await createStream(sim, call.sid, { Url: `${rx.origin}/c`, Track: 'outbound_track' });
    expect(sim.stream(lossy.body.sid as string)!.faults).toEqual({ drop: { frames: [1] } });
    expect(sim.stream(out1.body.sid as string)!.faults).toEqual({ duplicate: { frames: [1] } });
    expect(sim.stream(out2.body.sid as string)!.faults).toBeNull();
    expect(sim.faults.list().streams).toHaveLength(1);
  });

  it('takes faults as startSim options', async () => {
    const faulty = await startSim({
      ...credentials(),
      speed: 0,
      faults: { streams: [{ faults: { drop: { frames: [2] } } }], rest: [{ operation: 'FetchConference', status: 503, next: 1 }] },
    });
    try {
      const call = await faulty.createCall({ audio: { type: 'tone', hz: 440, ms: 80 } });
      await createStream(faulty, call.sid, { Url: `${rx.origin}/media` });
      const conn = await rx.connection();
      await conn.closed;
      expect(chunks(media(conn).map(mediaFields))).toEqual([1, 3, 4]);
      const conf = await faulty.createConference();
      const res = await fetch(`${faulty.url}/2010-04-01/Accounts/${faulty.accountSid}/Conferences/${conf.sid}.json`, {
        headers: { Authorization: 'Basic ' + Buffer.from(`${faulty.accountSid}:${faulty.authToken}`).toString('base64') },
      });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ code: 20503, status: 503 });
    } finally {
      await faulty.close();
    }
  });

  it('refuses unknown or malformed stream faults', () => {
    expect(() => sim.faults.addStreamRule({ faults: { dorp: {} } as never })).toThrow(/dorp/);
    expect(() => sim.faults.addStreamRule({ faults: { drop: { rate: 2 } } })).toThrow(/between 0 and 1/);
    expect(() => sim.faults.addStreamRule({ faults: { chunkSizes: [0] } })).toThrow(/positive/);
    expect(() => sim.faults.addStreamRule({ faults: { delay: { frames: [1] } } as never })).toThrow(/delay.ms/);
  });
});
