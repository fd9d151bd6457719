/**
 * Transcription in the production composition (createAppGateway, as `streamgate start` builds it)
 * with the real pocketsphinx engine, fed by the Twilio emulator over real sockets: the emulator
 * plays speech fixtures as calls (admin API → CreateStream) or conference participants
 * (participant-join → CreateStream) and streams them to the gateway's /media at real time.
 *
 * What is checked is what a user of the gateway sees: files on disk, /metrics, the log, the SSE
 * route, a webhook receiver on loopback, and the recogniser processes in the gateway's process
 * tree.
 */
import { once } from 'node:events';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StreamInfo } from '../../src/core/stream.js';
import type { RecordingManifest } from '../../src/sinks/recording/manifest.js';
import {
  isPocketsphinxInstalled,
  readClipMulaw,
  speechClip,
  transcriptPath,
  wordErrorRate,
  type SpeechClip,
  type TranscriptEvent,
  type TranscriptLine,
} from '../../src/sinks/transcription/index.js';
import { metricValue, waitFor } from '../helpers/gateway.js';
import { readManifest, recordingBase, startStack as startBaseStack, startStream, type Stack as BaseStack } from '../helpers/stack.js';

/** Silence after each sentence, so the recogniser's voice detector closes the utterance. */
const TAIL_MS = 600;

interface Stack extends BaseStack {
  /** The streams the gateway started, in order. */
  infos: StreamInfo[];
  finals: TranscriptEvent[];
}

/** The shared e2e stack with the real engine, the emulator at real time, and transcript events. */
async function startStack(env: Record<string, string> = {}): Promise<Stack> {
  const base = await startBaseStack({ speed: 1, env: { TRANSCRIPTION: 'pocketsphinx', LOG_LEVEL: 'info', ...env } });
  const infos: StreamInfo[] = [];
  const finals: TranscriptEvent[] = [];
  base.gateway.bus.on('stream-start', (info) => infos.push(info));
  base.gateway.bus.on('transcript', (t) => {
    if (t.isFinal) finals.push(t);
  });
  return Object.assign(base, { infos, finals });
}

/** `what`, and where the streams are, for a timeout's message in a CI log. */
function whereAt(stack: Stack, what: string): () => string {
  return () => {
    const streams = stack.infos.map((i) => `${i.streamSid}: ${stack.ends.get(i.streamSid) ?? 'live'}, emulator ${stack.sim.stream(i.streamSid)?.status ?? '?'}`);
    const warnings = stack.lines.filter((l) => (l.level as number) >= 40).slice(-5).map((l) => String(l.msg));
    return `${what}; streams [${streams.join('; ')}]; finals ${stack.finals.length}; last warnings ${JSON.stringify(warnings)}`;
  };
}

/**
 * The clips as one call's audio: each sentence, then `gapMs` of mu-law silence (0xff), padded
 * with silence to whole 20 ms frames (the emulator pads a short last frame the same way).
 */
function speech(clips: SpeechClip[], gapMs = TAIL_MS): { audio: Uint8Array; offsetsMs: number[] } {
  const parts: Uint8Array[] = [];
  const offsetsMs: number[] = [];
  let bytes = 0;
  for (const clip of clips) {
    const audio = readClipMulaw(clip);
    offsetsMs.push(bytes / 8);
    parts.push(audio, new Uint8Array(gapMs * 8).fill(0xff));
    bytes += audio.length + gapMs * 8;
  }
  parts.push(new Uint8Array((160 - (bytes % 160)) % 160).fill(0xff));
  return { audio: Buffer.concat(parts), offsetsMs };
}

/** Streams a call's inbound track through the gateway's admin API (CreateStream at the emulator). */
async function manifestOf(stack: Stack, callSid: string, streamSid: string): Promise<RecordingManifest> {
  return readManifest(recordingBase(stack, callSid, streamSid));
}

/** The stream's JSONL lines, or null when it has no transcript file. */
async function transcriptOf(stack: Stack, callSid: string, streamSid: string): Promise<TranscriptLine[] | null> {
  let text: string;
  try {
    text = await readFile(transcriptPath(stack.dataDir, stack.sim.accountSid, callSid, streamSid), 'utf8');
  } catch {
    return null;
  }
  return text.trim().split('\n').map((l) => JSON.parse(l) as TranscriptLine);
}

/** pocketsphinx processes among the children of this process, which runs the gateway. */
async function recogniserChildren(): Promise<number[]> {
  const pids: number[] = [];
  for (const tid of await readdir(`/proc/${process.pid}/task`)) {
    const children = await readFile(`/proc/${process.pid}/task/${tid}/children`, 'utf8').catch(() => '');
    for (const pid of children.split(' ').filter((p) => p.trim() !== '')) {
      const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
      if (comm.startsWith('pocketsphinx')) pids.push(Number(pid));
    }
  }
  return pids;
}

/** Reads `text/event-stream` events from a response body into `out` until cancelled. */
function collectSse(body: ReadableStream<Uint8Array>, out: TranscriptEvent[]): { stop(): Promise<void> } {
  const reader = body.getReader();
  const done = (async () => {
    let buf = '';
    for (;;) {
      const { value, done: end } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (end) return;
      buf += Buffer.from(value!).toString();
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data !== undefined && block.includes('event: transcript')) out.push(JSON.parse(data.slice(6)) as TranscriptEvent);
      }
    }
  })();
  return {
    async stop() {
      await reader.cancel().catch(() => undefined);
      await done;
    },
  };
}

/** A loopback webhook receiver: every POSTed JSON body, answered 204. */
async function startReceiver(): Promise<{ url: string; bodies: TranscriptEvent[]; server: Server }> {
  const bodies: TranscriptEvent[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      if (req.method === 'POST' && req.headers['content-type']?.startsWith('application/json')) bodies.push(JSON.parse(text) as TranscriptEvent);
      res.writeHead(req.method === 'POST' ? 204 : 405).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}/transcripts`, bodies, server };
}

/** The fields a JSONL line shares with the live event. */
const lineOf = (t: TranscriptEvent | TranscriptLine) => ({ streamSid: t.streamSid, callSid: t.callSid, track: t.track, text: t.text, startMs: t.startMs, endMs: t.endMs, words: t.words });

describe.runIf(isPocketsphinxInstalled())('transcription in the production gateway (real pocketsphinx, Twilio emulator)', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('TRANSCRIPTION_MAX_STREAMS=1: two concurrent streams are both recorded, one is transcribed, the other waits (counted and logged; its call ends before the slot frees), and neither fails', async () => {
    stack = await startStack({ TRANSCRIPTION_MAX_STREAMS: '1' });
    const s = stack;
    const clip = speechClip('wer-1');
    const { audio } = speech([clip]);
    const calls = await Promise.all([0, 1].map(() => s.sim.createCall({ audio: { type: 'mulaw', data: audio } })));
    const streams = await Promise.all(calls.map((c) => startStream(s, c.sid)));
    await waitFor(() => streams.every((sid) => s.ends.has(sid)), 45_000, whereAt(s, 'both streams to end'));

    // Both recorded, completely.
    for (const [i, streamSid] of streams.entries()) {
      const base = recordingBase(s, calls[i]!.sid, streamSid);
      expect((await stat(base + '.wav')).size).toBeGreaterThan(44);
      expect(await manifestOf(s, calls[i]!.sid, streamSid)).toMatchObject({ closeReason: 'stopped', framesReceived: audio.length / 160, framesLost: 0, durationMs: audio.length / 8 });
      expect(s.ends.get(streamSid)).toBe('stopped');
    }
    // Exactly one transcribed: it holds the sentence; the other has no transcript file at all.
    const transcripts = await Promise.all(streams.map((sid, i) => transcriptOf(s, calls[i]!.sid, sid)));
    const transcribed = transcripts.findIndex((t) => t !== null);
    expect(transcripts.filter((t) => t !== null)).toHaveLength(1);
    const capped = streams[1 - transcribed]!;
    expect(wordErrorRate(clip.text, transcripts[transcribed]!.map((l) => l.text).join(' ')).wer).toBeLessThanOrEqual(0.15);
    expect(s.finals.every((t) => t.streamSid === streams[transcribed])).toBe(true);

    // Counted, and logged at info on the capped stream's own logger.
    expect(await metricValue(s.http, 'streamgate_transcription_capped_total')).toBe(1);
    const capLog = s.lines.filter((l) => l.msg === 'transcription at capacity; track waits for a slot');
    expect(capLog).toHaveLength(1);
    expect(capLog[0]).toMatchObject({ level: 30, streamSid: capped, callSid: calls[1 - transcribed]!.sid, maxStreams: 1, track: 'inbound', phrasesSpotted: false });
    // Never an error for the call: both ended as stopped, no sink failure, nothing above info about it.
    expect(await metricValue(s.http, 'streamgate_streams_total', { outcome: 'stopped' })).toBe(2);
    expect(await metricValue(s.http, 'streamgate_sink_errors_total', { sink: 'transcription' })).toBe(0);
    expect(s.lines.filter((l) => (l.level as number) >= 40 && l.streamSid === capped)).toEqual([]);
    expect(s.lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
    expect(s.sim.callbacks({ event: 'stream-error' })).toEqual([]);
  }, 90_000);

  describe('live delivery: SSE (?conferenceSid=) and TRANSCRIPT_WEBHOOK_URL, two conferences at once', () => {
    let live: Stack;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    const sse: TranscriptEvent[] = [];
    const clipA = speechClip('wer-1');
    const clipB = speechClip('wer-3');
    let cfA = '';
    let cfB = '';
    let linesA: TranscriptLine[] = [];
    let linesB: TranscriptLine[] = [];
    let streamA: StreamInfo;

    beforeAll(async () => {
      receiver = await startReceiver();
      live = await startStack({ TRANSCRIPT_WEBHOOK_URL: receiver.url });
      const callbacks = { statusCallback: `${live.http}/twilio/conference-events`, statusCallbackEvent: 'start end join leave' };
      cfA = (await live.sim.createConference(callbacks)).sid;
      cfB = (await live.sim.createConference(callbacks)).sid;
      // The SSE client is connected before anyone speaks.
      const res = await fetch(`${live.http}/v1/transcripts?conferenceSid=${cfA}`);
      expect(res.status).toBe(200);
      const reader = collectSse(res.body!, sse);
      // One participant each; the gateway streams them on participant-join; they hang up after speaking.
      await live.sim.addParticipant(cfA, { audio: { type: 'mulaw', data: speech([clipA]).audio } });
      await live.sim.addParticipant(cfB, { audio: { type: 'mulaw', data: speech([clipB]).audio } });
      await waitFor(() => live.infos.length === 2 && live.infos.every((i) => live.ends.has(i.streamSid)), 45_000, whereAt(live, 'both participant streams to end'));
      streamA = live.infos.find((i) => i.conferenceSid === cfA)!;
      const streamB = live.infos.find((i) => i.conferenceSid === cfB)!;
      linesA = (await transcriptOf(live, streamA.callSid, streamA.streamSid)) ?? [];
      linesB = (await transcriptOf(live, streamB.callSid, streamB.streamSid)) ?? [];
      await waitFor(() => receiver.bodies.length >= linesA.length + linesB.length, 5000, 'webhook deliveries');
      await waitFor(() => sse.length >= linesA.length, 5000, 'SSE events');
      await reader.stop();
    }, 90_000);

    afterAll(async () => {
      await live?.close();
      receiver?.server.close();
    });

    it('writes both sentences to the JSONL, on the media clock', () => {
      expect(streamA).toBeDefined();
      expect(wordErrorRate(clipA.text, linesA.map((l) => l.text).join(' ')).wer).toBeLessThanOrEqual(0.15);
      expect(wordErrorRate(clipB.text, linesB.map((l) => l.text).join(' ')).wer).toBeLessThanOrEqual(0.15);
      // The emulator's first media.timestamp is 99 ms: flite's word times shifted by it.
      const pizza = linesA.flatMap((l) => l.words).find((w) => w.word === 'pizza');
      expect(Math.abs(pizza!.startMs - (99 + clipA.words!.find((w) => w.word === 'pizza')!.startMs))).toBeLessThanOrEqual(300);
    });

    it('gives the SSE client each final result of its conference, as in the JSONL, and nothing of the other conference', () => {
      expect(sse.length).toBeGreaterThan(0);
      expect(sse.map(lineOf)).toEqual(linesA.map(lineOf));
      for (const e of sse) {
        expect(e).toMatchObject({ accountSid: live.sim.accountSid, callSid: streamA.callSid, streamSid: streamA.streamSid, conferenceSid: cfA, isFinal: true });
      }
      expect(sse.filter((e) => e.conferenceSid === cfB)).toEqual([]);
    });

    it('POSTs every final result of both conferences to the webhook, the same events the SSE client got', async () => {
      const webhookA = receiver.bodies.filter((b) => b.conferenceSid === cfA);
      const webhookB = receiver.bodies.filter((b) => b.conferenceSid === cfB);
      expect(receiver.bodies).toHaveLength(linesA.length + linesB.length);
      // Same text, media-clock times, words and SIDs as the SSE client received.
      expect(webhookA).toEqual(sse);
      expect(webhookB.map(lineOf)).toEqual(linesB.map(lineOf));
      expect(webhookB.length).toBeGreaterThan(0); // so the SSE filter had something to exclude
      expect(await metricValue(live.http, 'streamgate_transcript_webhook_sent_total')).toBe(receiver.bodies.length);
      expect(await metricValue(live.http, 'streamgate_transcript_webhook_failed_total')).toBe(0);
      expect(await metricValue(live.http, 'streamgate_transcript_webhook_dropped_total')).toBe(0);
    });

    it('counts transcripts_total{kind="final"} and transcript_latency_seconds observations equal to the JSONL lines', async () => {
      const lines = linesA.length + linesB.length;
      expect(await metricValue(live.http, 'streamgate_transcripts_total', { kind: 'final' })).toBe(lines);
      expect(await metricValue(live.http, 'streamgate_transcripts_total', { kind: 'partial' })).toBe(0);
      // The latency samples are moved into the histogram once a second.
      await waitFor(async () => (await metricValue(live.http, 'streamgate_transcript_latency_seconds_count')) === lines, 3000, 'latency observations');
      expect(await metricValue(live.http, 'streamgate_transcript_latency_seconds_bucket', { le: '+Inf' })).toBe(lines);
      // Observed in seconds (not ms): each is the engine's delay after the audio ending the result
      // was written, ~0.4 s on an idle host, several seconds on a saturated one; never above 10 s
      // without the 8 s engine buffer overflowing (which the dropped-frames count would show).
      const sum = await metricValue(live.http, 'streamgate_transcript_latency_seconds_sum');
      expect(sum).toBeGreaterThan(0);
      expect(await metricValue(live.http, 'streamgate_transcript_latency_seconds_bucket', { le: '10' }), `sum ${sum} s`).toBe(lines);
      expect(await metricValue(live.http, 'streamgate_sink_dropped_frames_total', { sink: 'transcription' })).toBe(0);
      expect(await metricValue(live.http, 'streamgate_transcription_capped_total')).toBe(0);
      expect(await metricValue(live.http, 'streamgate_transcription_engine_restarts_total')).toBe(0);
    });
  });

  it('restarts the pocketsphinx child of a live stream killed mid-stream: the stream goes on, later speech is transcribed, restarts_total is 1', async () => {
    stack = await startStack();
    const s = stack;
    const first = speechClip('wer-2');
    const second = speechClip('wer-1');
    const { audio, offsetsMs } = speech([first, second], 1200);
    const before = new Set(await recogniserChildren());
    const call = await s.sim.createCall({ audio: { type: 'mulaw', data: audio } });
    const streamSid = await startStream(s, call.sid);

    // The stream's recogniser is a child of the gateway's process (no rules: no spotter).
    let pid = 0;
    await waitFor(async () => {
      const fresh = (await recogniserChildren()).filter((p) => !before.has(p));
      if (fresh.length === 1) pid = fresh[0]!;
      return pid !== 0;
    }, 10_000, 'the recogniser process');
    expect(await readFile(`/proc/${pid}/cmdline`, 'utf8')).not.toContain('-kws');
    // Kill it while the second sentence is being spoken: ~0.6 s into it (the first result comes
    // ~0.4 s after the first sentence ends, 1.2 s of silence follow it).
    await waitFor(() => s.finals.length > 0, 15_000, whereAt(s, 'the first sentence transcribed'));
    await new Promise((r) => setTimeout(r, 1400));
    expect(s.ends.has(streamSid)).toBe(false);
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => (await metricValue(s.http, 'streamgate_transcription_engine_restarts_total')) === 1, 5000, 'restart counted');
    const after = (await recogniserChildren()).filter((p) => !before.has(p));
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(pid);

    await waitFor(() => s.ends.has(streamSid), 45_000, whereAt(s, 'the stream to end'));
    expect(s.ends.get(streamSid)).toBe('stopped');
    const manifest = await manifestOf(s, call.sid, streamSid);
    expect(manifest).toMatchObject({ closeReason: 'stopped', framesReceived: audio.length / 160, framesLost: 0, durationMs: audio.length / 8 });
    const lines = (await transcriptOf(s, call.sid, streamSid))!;
    const secondAt = manifest.mediaStartMs! + offsetsMs[1]!;
    const later = lines.filter((l) => l.startMs >= secondAt - 200);
    expect(wordErrorRate(second.text, later.map((l) => l.text).join(' ')).wer).toBeLessThanOrEqual(0.2);
    // Nothing lost or repeated around the restart, and later words are still on the media clock.
    expect(wordErrorRate(`${first.text} ${second.text}`, lines.map((l) => l.text).join(' ')).wer).toBeLessThanOrEqual(0.2);
    const pizza = later.flatMap((l) => l.words).find((w) => w.word === 'pizza');
    expect(Math.abs(pizza!.startMs - (secondAt + second.words!.find((w) => w.word === 'pizza')!.startMs))).toBeLessThanOrEqual(300);
    expect(await metricValue(s.http, 'streamgate_transcription_engine_restarts_total')).toBe(1);
    expect(await metricValue(s.http, 'streamgate_sink_errors_total', { sink: 'transcription' })).toBe(0);
    expect(await metricValue(s.http, 'streamgate_sink_dropped_frames_total', { sink: 'transcription' })).toBe(0);
    expect(s.lines.filter((l) => l.msg === 'speech recogniser exited; restarting')).toHaveLength(1);
  }, 90_000);
});
