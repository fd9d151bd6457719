import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../../src/core/events.js';
import type { MediaFrame, SinkContext } from '../../../src/sinks/sink.js';
import type { StreamInfo, Track } from '../../../src/core/stream.js';
import { TRACK_INDEX } from '../../../src/core/stream.js';
import { createNoneEngine } from '../../../src/sinks/transcription/engines/none.js';
import { createPocketsphinxEngine, isPocketsphinxInstalled } from '../../../src/sinks/transcription/engines/pocketsphinx.js';
import { readClipPcm, speechClip } from '../../../src/sinks/transcription/speech-fixtures.js';
import { defaultTranscriptionSlots } from '../../../src/sinks/transcription/capacity.js';
import { createTranscriptionSinkFactory } from '../../../src/sinks/transcription/transcription-sink.js';
import type { PhraseEvent, TranscriptEvent } from '../../../src/core/transcript.js';
import { wordErrorRate } from '../../../src/sinks/transcription/wer.js';
import { newSid } from '../../../src/twilio/sids.js';
import { sleep } from '../../helpers/wait.js';
import { FRAME, quietLog } from './helpers.js';

function streamInfo(tracks: Track[], overrides: Partial<StreamInfo> = {}): StreamInfo {
  return {
    accountSid: newSid('account'),
    callSid: newSid('call'),
    streamSid: newSid('stream'),
    tracks,
    customParameters: {},
    conferenceSid: newSid('conference'),
    startedAtMs: Date.now(),
    ...overrides,
  };
}

function context(): SinkContext {
  return { log: quietLog, stats: { dropped: 0, errors: 0, queued: 0 } };
}

/** A frame as the gateway's session builds it, over buffers reused for every message. */
function frameSource() {
  const pcm = new Int16Array(FRAME);
  const mulaw = new Uint8Array(FRAME);
  const frame: MediaFrame = {
    track: 'inbound',
    trackIndex: 0,
    timestampMs: 0,
    chunk: 0,
    sequenceNumber: 0,
    samples: FRAME,
    pcm,
    mulaw,
    energy: 0,
    receivedAt: 0,
    late: false,
  };
  return (track: Track, timestampMs: number, src: Int16Array, off: number): MediaFrame => {
    const n = Math.min(FRAME, src.length - off);
    for (let i = 0; i < n; i++) pcm[i] = src[off + i]!;
    frame.track = track;
    frame.trackIndex = TRACK_INDEX[track];
    frame.timestampMs = timestampMs;
    frame.samples = n;
    frame.chunk++;
    frame.sequenceNumber++;
    frame.receivedAt = performance.now();
    return frame;
  };
}

describe('transcription sink: capacity and validation', () => {
  it('beyond maxStreams a track waits for a slot (FIFO), counted and shown, and is transcribed when one frees', async () => {
    const bus = new EventBus(quietLog);
    const factory = createTranscriptionSinkFactory({ engine: createNoneEngine(), dataDir: tmpdir(), maxStreams: 3, bus });
    const infoA = streamInfo(['inbound', 'outbound']);
    const infoB = streamInfo(['inbound', 'outbound']);
    const infoC = streamInfo(['inbound']);
    const a = factory.open(infoA, context());
    // One slot left: the second stream's inbound track gets it, its outbound track waits.
    const b = factory.open(infoB, context());
    const c = factory.open(infoC, context());
    expect([a, b, c].every((x) => x !== null)).toBe(true);
    expect(factory.status(infoB.streamSid)).toEqual({ inbound: 'transcribed', outbound: 'waiting' });
    expect(factory.status(infoC.streamSid)).toEqual({ inbound: 'waiting' });
    expect(factory.stats).toMatchObject({ capped: 2, waiting: 2, activeSessions: 3 });
    await a!.close('stopped');
    await a!.close('stopped'); // idempotent
    // A's two slots went to the waiting tracks, oldest first.
    expect(factory.status(infoB.streamSid)).toEqual({ inbound: 'transcribed', outbound: 'transcribed' });
    expect(factory.status(infoC.streamSid)).toEqual({ inbound: 'transcribed' });
    expect(factory.status(infoA.streamSid)).toBeNull();
    expect(factory.stats).toMatchObject({ capped: 2, waiting: 0, activeSessions: 3 });
    await Promise.all([b!.close('stopped'), c!.close('stopped')]);
    expect(factory.stats).toMatchObject({ waiting: 0, activeSessions: 0 });
  });

  it('spots phrases on a waiting track; a closed waiting track leaves the queue', async () => {
    const factory = createTranscriptionSinkFactory({ engine: createNoneEngine(), dataDir: tmpdir(), maxStreams: 1, bus: new EventBus(quietLog), phrases: ['goodbye'] });
    const infoA = streamInfo(['inbound']);
    const infoB = streamInfo(['inbound']);
    const a = factory.open(infoA, context());
    const b = factory.open(infoB, context());
    expect(factory.status(infoB.streamSid)).toEqual({ inbound: 'phrases-only' });
    await b!.close('stopped');
    expect(factory.stats).toMatchObject({ capped: 1, waiting: 0, activeSessions: 1 });
    await a!.close('stopped');
    expect(factory.stats.activeSessions).toBe(0);
  });

  it('sizes the default from the engine real-time factor: 2 cores transcribe 4 tracks', () => {
    expect(defaultTranscriptionSlots(2)).toBe(4);
    expect(defaultTranscriptionSlots(1)).toBe(2);
    expect(defaultTranscriptionSlots(8)).toBe(17);
    const factory = createTranscriptionSinkFactory({ engine: createNoneEngine(), dataDir: tmpdir(), bus: new EventBus(quietLog) });
    expect(factory.maxStreams).toBe(defaultTranscriptionSlots());
  });

  it('refuses a stream whose SIDs would not make a safe path, and counts an error', () => {
    const factory = createTranscriptionSinkFactory({ engine: createNoneEngine(), dataDir: tmpdir(), bus: new EventBus(quietLog) });
    const ctx = context();
    expect(factory.open(streamInfo(['inbound'], { callSid: '../../etc' }), ctx)).toBeNull();
    expect(ctx.stats.errors).toBe(1);
    expect(factory.stats.activeSessions).toBe(0);
  });
});

describe.runIf(isPocketsphinxInstalled())('transcription sink on pocketsphinx', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sg-transcripts-'));
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  it('transcribes both tracks of a two-party call to the bus and the JSONL file, and spots the phrase', async () => {
    const bus = new EventBus(quietLog);
    const transcripts: TranscriptEvent[] = [];
    const phrases: PhraseEvent[] = [];
    bus.on('transcript', (e) => transcripts.push(e));
    bus.on('phrase', (e) => phrases.push(e));
    const hooked: TranscriptEvent[] = [];
    const factory = createTranscriptionSinkFactory({
      engine: createPocketsphinxEngine({ log: quietLog }),
      dataDir,
      maxStreams: 2,
      phrases: ['end the conference'],
      bus,
      onTranscript: (e) => hooked.push(e),
    });
    const info = streamInfo(['inbound', 'outbound']);
    const ctx = context();
    const sink = factory.open(info, ctx)!;

    // Alice speaks on the inbound track, then Bob answers on the outbound track; the stream
    // sends both tracks' frames interleaved, as Twilio does, silence where one is not talking.
    const alice = speechClip('demo-alice');
    const bob = speechClip('demo-bob');
    const bobAt = 4000;
    const total = bobAt + bob.durationMs + 600;
    const a = readClipPcm(alice);
    const b = readClipPcm(bob);
    const quiet = new Int16Array(FRAME);
    const make = frameSource();
    for (let t = 0; t < total; t += 20) {
      const ai = t * 8;
      sink.accept(ai < a.length ? make('inbound', t, a, ai) : make('inbound', t, quiet, 0));
      const bi = (t - bobAt) * 8;
      sink.accept(bi >= 0 && bi < b.length ? make('outbound', t, b, bi) : make('outbound', t, quiet, 0));
      if (t % 1000 === 0) await sleep(40); // 25× real time
    }
    await sink.close('stopped');
    await factory.shutdown!();

    const inbound = transcripts.filter((e) => e.track === 'inbound');
    const outbound = transcripts.filter((e) => e.track === 'outbound');
    expect(wordErrorRate(alice.text, inbound.map((e) => e.text).join(' ')).wer).toBeLessThanOrEqual(0.15);

    expect(outbound.length).toBeGreaterThan(0);
    expect(outbound[0]!.startMs).toBeGreaterThanOrEqual(bobAt);
    for (const e of transcripts) {
      expect(e).toMatchObject({ accountSid: info.accountSid, callSid: info.callSid, streamSid: info.streamSid, conferenceSid: info.conferenceSid, isFinal: true });
    }
    expect(hooked).toEqual(transcripts);

    expect(phrases).toHaveLength(1);
    expect(phrases[0]).toMatchObject({ phrase: 'end the conference', track: 'outbound', streamSid: info.streamSid });
    const endWord = bob.words!.find((w) => w.word === 'end')!;
    expect(Math.abs(phrases[0]!.startMs - (bobAt + endWord.startMs))).toBeLessThanOrEqual(300);

    const file = join(dataDir, 'transcripts', info.accountSid, info.callSid, `${info.streamSid}.jsonl`);
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(transcripts.length);
    for (let i = 0; i < lines.length; i++) {
      const { streamSid, callSid, track, text, startMs, endMs } = transcripts[i]!;
      expect(lines[i]).toMatchObject({ streamSid, callSid, track, text, startMs, endMs });
    }

    expect(factory.stats.transcripts.final).toBe(transcripts.length);
    expect(factory.stats.phrases).toBe(1);
    expect(factory.stats.activeSessions).toBe(0);
    expect(factory.stats.firstResultLatencyMs.count).toBe(2);
    expect(factory.stats.resultLatencyMs.count).toBe(transcripts.length);
    expect(ctx.stats).toMatchObject({ dropped: 0, errors: 0 });
  });

  it('writes no transcript file for a stream without speech', async () => {
    const factory = createTranscriptionSinkFactory({
      engine: createPocketsphinxEngine({ log: quietLog }),
      dataDir,
      bus: new EventBus(quietLog),
    });
    const info = streamInfo(['inbound']);
    const sink = factory.open(info, context())!;
    const make = frameSource();
    const quiet = new Int16Array(FRAME);
    for (let t = 0; t < 2000; t += 20) sink.accept(make('inbound', t, quiet, 0));
    await sink.close('stopped');
    await factory.shutdown!();
    await expect(stat(join(dataDir, 'transcripts', info.accountSid))).rejects.toThrow();
    expect(factory.stats.transcripts.final).toBe(0);
  });
});
