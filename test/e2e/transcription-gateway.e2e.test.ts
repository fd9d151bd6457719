/**
 * A flite sentence streamed as Twilio frames over a real WebSocket through the gateway into the
 * real pocketsphinx engine: the JSONL holds the sentence, on the media clock.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/events.js';
import { createLogger } from '../../src/gateway/logger.js';
import { createSpeechEngine, createTranscriptionSinkFactory, readClipMulaw, speechClip, transcriptPath, wordErrorRate } from '../../src/sinks/transcription/index.js';
import { replay, startTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { connected, ids, media, start, stop } from '../helpers/messages.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

describe('transcription through the gateway', () => {
  it('writes a flite sentence to the JSONL with WER <= 15% and word times on the media clock', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-asr-e2e-'));
    const log = createLogger('warn');
    const bus = new EventBus(log);
    const transcription = createTranscriptionSinkFactory({ engine: createSpeechEngine('pocketsphinx', { log }), dataDir, bus, maxStreams: 2 });
    gw = await startTestGateway({}, { sinkFactories: [transcription], bus });
    const finals: string[] = [];
    bus.on('transcript', (t) => {
      if (t.isFinal) finals.push(t.text);
    });

    const clip = speechClip('wer-1.ulaw');
    const audio = readClipMulaw(clip);
    const s = ids();
    const t0 = 140; // media clock starts at a non-zero offset, as Twilio's does
    const msgs = [connected(), start(s)];
    let seq = 2;
    const trailing = 8 * 1000; // a second of silence after the sentence ends the utterance
    const padded = Buffer.concat([Buffer.from(audio), Buffer.alloc(trailing, 0xff)]);
    for (let off = 0, chunk = 1; off < padded.length; off += 160, chunk++) msgs.push(media(s, seq++, chunk, t0 + off / 8, padded.subarray(off, off + 160)));
    msgs.push(stop(s, seq));
    await replay(gw.ws, msgs, { closeAfter: true });
    await waitFor(() => finals.length > 0, 15_000, 'a final transcript');
    await gw.close();
    gw = undefined;

    const file = transcriptPath(dataDir, s.accountSid, s.callSid, s.streamSid);
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const text = lines.map((l) => l.text).join(' ');
    expect(wordErrorRate(clip.text, text).wer).toBeLessThanOrEqual(0.15);
    expect(lines[0]).toMatchObject({ streamSid: s.streamSid, callSid: s.callSid, track: 'inbound' });
    // Word times are media-clock ms: flite's own word timing shifted by the stream's offset.
    const words = lines.flatMap((l) => l.words ?? []) as { word: string; startMs: number }[];
    const refWords = clip.words!;
    for (const ref of refWords) {
      const hit = words.find((w) => w.word === ref.word && Math.abs(w.startMs - (t0 + ref.startMs)) <= 300);
      if (['a', 'to', 'for'].includes(ref.word)) continue; // short function words may merge
      expect(hit, `"${ref.word}" near ${t0 + ref.startMs} ms`).toBeDefined();
    }
  }, 60_000);
});
