/**
 * TRANSCRIPTION=vosk through the production gateway, the Twilio emulator as the caller and the
 * Vosk server stand-in (vosk-standin.ts), over real loopback sockets.
 */
import { describe, expect, it } from 'vitest';
import { MULAW_TO_PCM } from '../../src/twilio/mulaw.js';
import { metricValue, waitFor } from '../helpers/gateway.js';
import { expectWordsOnMediaClock, FIRST_TIMESTAMP_MS, startAsrStack, transcriptLines, untilEnded, type AsrStack } from './helpers.js';
import { closeAfterEach } from '../helpers/closing.js';
import { startStream } from '../helpers/stack.js';
import { audioOf } from './standin.js';
import { toneSpeech } from './tone-speech.js';
import { VoskStandin } from './vosk-standin.js';

const CALL = toneSpeech([
  ['charlie', 'delta'],
  ['echo', 'foxtrot', 'golf'],
  ['hotel', 'alpha'],
]);

/** The call's audio as the 16-bit little-endian PCM Vosk is sent. */
function pcmOf(mulaw: Uint8Array): Buffer {
  const out = Buffer.alloc(mulaw.length * 2);
  for (let i = 0; i < mulaw.length; i++) out.writeInt16LE(MULAW_TO_PCM[mulaw[i]!]!, i * 2);
  return out;
}

const closeLater = closeAfterEach();

async function start(env: Record<string, string> = {}): Promise<{ s: AsrStack; v: VoskStandin }> {
  const vosk = closeLater(await new VoskStandin().listen());
  const stack = closeLater(await startAsrStack({ TRANSCRIPTION: 'vosk', VOSK_URL: vosk.url, ...env }));
  return { s: stack, v: vosk };
}

describe('TRANSCRIPTION=vosk (Vosk server stand-in, real gateway, Twilio emulator)', () => {
  it('a whole call: config first, the call as 16-bit PCM in order, one reply per message, {"eof" : 1} last; finals word-timed on the media clock', async () => {
    const { s, v } = await start();
    const c = await s.sim.createCall({ audio: { type: 'mulaw', data: CALL.mulaw } });
    const streamSid = await startStream(s, c.sid);
    await untilEnded(s, streamSid);

    expect(v.violations()).toEqual([]);
    expect(v.connections).toHaveLength(1);
    const conn = v.connections[0]!;
    expect(JSON.parse(conn.texts[0]!)).toEqual({ config: { sample_rate: 8000, words: 1 } });
    expect(conn.sequence[0]).toBe(conn.texts[0]);
    expect(conn.texts.at(-1)).toBe('{"eof" : 1}');
    expect(conn.texts).toHaveLength(2);
    expect(audioOf(conn).equals(pcmOf(CALL.mulaw))).toBe(true);
    // One reply per audio message, plus the final result for eof.
    expect(conn.sent).toHaveLength(conn.audio.length + 1);
    expect(conn.closed).toMatchObject({ code: 1000, by: 'server' });

    const lines = await transcriptLines(s, c.sid, streamSid);
    expect(expectWordsOnMediaClock(lines, CALL.words)).toEqual([]);
    expect(lines.map((l) => l.text)).toEqual(['charlie delta', 'echo foxtrot golf', 'hotel alpha']);
    // Partials (text only, as Vosk sends them) reached the bus, each once per change.
    const partials = s.events.filter((e) => !e.isFinal).map((e) => e.text);
    expect(partials).toContain('echo foxtrot');
    expect(partials.every((p, i) => i === 0 || p !== partials[i - 1])).toBe(true);
    expect(await metricValue(s.http, 'streamgate_asr_connections_total', { engine: 'vosk' })).toBe(1);
  }, 60_000);

  it('the server drops the connection mid-call (1011) and comes back: replay from the last final, no word lost, times continuous', async () => {
    const { s, v } = await start();
    // Inside "echo foxtrot golf" (2.0-3.3 s).
    v.closePlan = { connection: 0, afterSeconds: 2.7, code: 1011, reason: '' };
    const c = await s.sim.createCall({ audio: { type: 'mulaw', data: CALL.mulaw } });
    const streamSid = await startStream(s, c.sid);
    await untilEnded(s, streamSid);

    expect(v.violations()).toEqual([]);
    expect(v.connections).toHaveLength(2);
    // The second connection is configured again before its audio.
    expect(JSON.parse(v.connections[1]!.sequence[0]!)).toEqual({ config: { sample_rate: 8000, words: 1 } });
    const pcm = pcmOf(CALL.mulaw);
    const [first, second] = v.connections.map(audioOf) as [Buffer, Buffer];
    expect(pcm.subarray(0, first.length).equals(first)).toBe(true);
    const from = pcm.length - second.length;
    expect(pcm.subarray(from).equals(second)).toBe(true);
    const announced = s.lines.find((l) => l.msg === 'speech service reconnected; replaying audio not yet final');
    // The overlap is the announced replay, less any audio sent while the server's close was on its way.
    const announcedBytes = (announced!.replayMs as number) * 16;
    expect(first.length - from).toBeGreaterThan(0);
    expect(first.length - from).toBeLessThanOrEqual(announcedBytes);
    expect(announcedBytes - (first.length - from)).toBeLessThan(16000);
    expect(announced!.fromMs).toBe(99 + from / 16);

    expect(expectWordsOnMediaClock(await transcriptLines(s, c.sid, streamSid), CALL.words)).toEqual([]);
    expect(await metricValue(s.http, 'streamgate_asr_reconnects_total', { engine: 'vosk' })).toBe(1);
    expect(await metricValue(s.http, 'streamgate_asr_replayed_seconds_total', { engine: 'vosk' })).toBeCloseTo(announcedBytes / 16000, 6);
  }, 60_000);

  it('an outage longer than ASR_REPLAY_SECONDS: the oldest audio is a hole in the transcript (JSONL line, log, metric), later words still come', async () => {
    const { s, v } = await start({ ASR_REPLAY_SECONDS: '1' });
    // A sentence, 16 s of silence, a sentence. The service drops after the first one is final
    // (its endpoint is at 1.6 s) and refuses to come back for 1.5 s of wall time (3 s of audio
    // at the emulator's 2x): more than the 1 s the gateway keeps. The backoff (at most 5 s once
    // it is allowed back) still brings it back well before the last sentence (at 18 s).
    const call = toneSpeech([['charlie', 'delta'], Array<string>(16).fill('...'), ['hotel', 'alpha']]);
    v.closePlan = { connection: 0, afterSeconds: 1.9, code: 1011, reason: '' };
    const c = await s.sim.createCall({ audio: { type: 'mulaw', data: call.mulaw } });
    const streamSid = await startStream(s, c.sid);
    await waitFor(() => v.connections.length === 1, 20_000, 'the first connection');
    v.refuseAll = { status: 503, body: '' };
    await waitFor(() => v.refused.length > 0, 20_000, 'a refused reconnection');
    await new Promise((r) => setTimeout(r, 1500));
    v.refuseAll = null;
    await untilEnded(s, streamSid);

    expect(v.violations()).toEqual([]);
    expect(v.connections).toHaveLength(2);
    const lines = await transcriptLines(s, c.sid, streamSid);
    const holes = lines.filter((l) => l.hole === true);
    expect(holes).toHaveLength(1);
    const hole = holes[0]!;
    expect(hole.text).toBe('');
    // From the end of the first final's last word to 1 s before the audio the gateway had when the service came back.
    expect(hole.startMs).toBeGreaterThanOrEqual(FIRST_TIMESTAMP_MS + 1200);
    expect(hole.startMs).toBeLessThanOrEqual(FIRST_TIMESTAMP_MS + 1900);
    expect(hole.endMs - hole.startMs).toBeGreaterThan(1000);
    const announced = s.lines.find((l) => l.msg === 'speech service reconnected; replaying audio not yet final')!;
    expect(announced.fromMs).toBe(hole.endMs);
    // Everything sent before the outage is older than the window: nothing is sent twice.
    expect(announced.replayMs).toBe(0);
    expect(await metricValue(s.http, 'streamgate_asr_dropped_seconds_total', { engine: 'vosk' })).toBeCloseTo((hole.endMs - hole.startMs) / 1000, 2);
    expect(s.lines.filter((l) => l.msg === 'transcript hole: this audio was never recognised')).toHaveLength(1);
    // The replay started exactly at the hole's end: the second connection got the rest of the call from there.
    const second = audioOf(v.connections[1]!);
    const pcm = pcmOf(call.mulaw);
    expect(pcm.subarray(pcm.length - second.length).equals(second)).toBe(true);
    expect(FIRST_TIMESTAMP_MS + (pcm.length - second.length) / 16).toBe(hole.endMs);
    expect(expectWordsOnMediaClock(lines, call.words)).toEqual([]);
  }, 60_000);
});
