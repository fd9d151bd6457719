/**
 * TRANSCRIPTION=deepgram through the production gateway, the Twilio emulator as the caller and
 * the Deepgram stand-in (deepgram-standin.ts) as the service, all over real loopback sockets.
 * The stand-in recognises the tone language from the bytes it receives, so every check on
 * words and times is a check on the audio the gateway sent.
 */
import { describe, expect, it } from 'vitest';
import { metricValue, waitFor } from '../helpers/gateway.js';
import { DeepgramStandin } from './deepgram-standin.js';
import { expectWordsOnMediaClock, manifest, sentJson, startAsrStack, transcriptLines, untilEnded, type AsrStack } from './helpers.js';
import { closeAfterEach } from '../helpers/closing.js';
import { startStream } from '../helpers/stack.js';
import { audioOf } from './standin.js';
import { toneSpeech } from './tone-speech.js';

const KEY = 'dg-secret-0123456789abcdef';
const CALL = toneSpeech([
  ['alpha', 'bravo', 'charlie'],
  ['delta', 'echo'],
  ['foxtrot', 'golf', 'hotel'],
  ['alpha', 'echo'],
]);

const closeLater = closeAfterEach();

async function start(env: Record<string, string> = {}, key = KEY): Promise<{ s: AsrStack; d: DeepgramStandin }> {
  const dg = closeLater(await new DeepgramStandin(KEY).listen());
  const stack = closeLater(await startAsrStack({
    TRANSCRIPTION: 'deepgram',
    DEEPGRAM_API_KEY: key,
    DEEPGRAM_URL: `${dg.url}/v1/listen`,
    DEEPGRAM_PARAMS: 'model=nova-2-phonecall&language=en-US&smart_format=true',
    ...env,
  }));
  return { s: stack, d: dg };
}

/** One call of CALL, streamed, to its end. */
async function call(s: AsrStack, track: 'inbound_track' | 'both_tracks' = 'inbound_track', hears?: Uint8Array) {
  const c = await s.sim.createCall({ audio: { type: 'mulaw', data: CALL.mulaw }, ...(hears === undefined ? {} : { hears: { type: 'mulaw', data: hears } }) });
  const streamSid = await startStream(s, c.sid, track);
  await untilEnded(s, streamSid);
  return { callSid: c.sid, streamSid };
}

describe('TRANSCRIPTION=deepgram (Deepgram stand-in, real gateway, Twilio emulator)', () => {
  it('a whole call: Twilio\'s bytes unchanged on one connection, interim partials, word-timed finals on the media clock, CloseStream then Metadata', async () => {
    const { s, d } = await start();
    const { callSid, streamSid } = await call(s);

    expect(d.violations()).toEqual([]);
    expect(d.connections).toHaveLength(1);
    const c = d.connections[0]!;
    // The handshake: path, the fixed audio parameters, DEEPGRAM_PARAMS passed on, the key as a Token header.
    expect(c.path).toBe('/v1/listen');
    expect(Object.fromEntries(c.query)).toEqual({ model: 'nova-2-phonecall', language: 'en-US', smart_format: 'true', encoding: 'mulaw', sample_rate: '8000', channels: '1', interim_results: 'true' });
    expect(c.headers.authorization).toBe(`Token ${KEY}`);
    // Every byte the emulator sent, in order, once: exactly the call's mu-law.
    expect(audioOf(c).equals(Buffer.from(CALL.mulaw))).toBe(true);
    // CloseStream last; the service's Metadata came after the last Results, then its 1000 close.
    expect(c.texts.at(-1)).toBe('{"type":"CloseStream"}');
    expect(c.sequence.filter((m) => !m.startsWith('audio:') && m !== '{"type":"KeepAlive"}')).toEqual(['{"type":"CloseStream"}']);
    expect(sentJson(c).at(-1)).toMatchObject({ type: 'Metadata', channels: 1 });
    expect(c.closed).toMatchObject({ code: 1000, by: 'server' });

    // Finals in the JSONL, word-timed on the stream's media clock.
    const lines = await transcriptLines(s, callSid, streamSid);
    expect(expectWordsOnMediaClock(lines, CALL.words)).toEqual([]);
    expect(lines.map((l) => l.text)).toEqual(['alpha bravo charlie', 'delta echo', 'foxtrot golf hotel', 'alpha echo']);
    // Partials reached the bus before their finals (never the file); finals match the file.
    const partials = s.events.filter((e) => !e.isFinal);
    expect(partials.length).toBeGreaterThan(0);
    expect(partials.every((p) => p.streamSid === streamSid && p.words.length > 0)).toBe(true);
    expect(s.events.filter((e) => e.isFinal).map((e) => e.text)).toEqual(lines.map((l) => l.text));
    const firstFinal = s.events.findIndex((e) => e.isFinal);
    expect(s.events.findIndex((e) => !e.isFinal)).toBeLessThan(firstFinal);

    // Metrics per engine label; the key is in no log line.
    expect(await metricValue(s.http, 'streamgate_asr_connections_total', { engine: 'deepgram' })).toBe(1);
    expect(await metricValue(s.http, 'streamgate_asr_reconnects_total', { engine: 'deepgram' })).toBe(0);
    expect(await metricValue(s.http, 'streamgate_asr_dropped_seconds_total', { engine: 'deepgram' })).toBe(0);
    expect(await metricValue(s.http, 'streamgate_transcripts_total', { kind: 'final' })).toBe(4);
    await waitFor(async () => (await metricValue(s.http, 'streamgate_asr_result_latency_seconds_count', { engine: 'deepgram' })) >= 4, 5000, 'latency samples');
    expect(JSON.stringify(s.lines)).not.toContain(KEY);
    expect((await manifest(s, callSid, streamSid)).framesReceived).toBe(CALL.mulaw.length / 160);
  }, 60_000);

  it('the service closes mid-call with 1011 and comes back: the audio since the last final is replayed, no word is lost, times stay continuous', async () => {
    const { s, d } = await start();
    // Mid-sentence ("delta echo" is being spoken at 2.5-3.2 s).
    d.closePlan = { connection: 0, afterSeconds: 2.9, code: 1011, reason: 'NET-0000' };
    const { callSid, streamSid } = await call(s);

    expect(d.violations()).toEqual([]);
    expect(d.connections).toHaveLength(2);
    const [first, second] = d.connections.map(audioOf) as [Buffer, Buffer];
    const audio = Buffer.from(CALL.mulaw);
    // The first connection got a prefix of the call; the second the rest, starting where the
    // last final ended: the overlap is the announced replay, nothing is missing.
    expect(audio.subarray(0, first.length).equals(first)).toBe(true);
    const from = audio.length - second.length;
    expect(audio.subarray(from).equals(second)).toBe(true);
    const announced = s.lines.find((l) => l.msg === 'speech service reconnected; replaying audio not yet final');
    expect(announced).toMatchObject({ streamSid, engine: 'deepgram', reconnects: 1 });
    // The overlap is the announced replay, less any frames the gateway sent while the service's
    // close was on its way (the service never read those).
    const announcedBytes = (announced!.replayMs as number) * 8;
    expect(first.length - from).toBeGreaterThan(0);
    expect(first.length - from).toBeLessThanOrEqual(announcedBytes);
    expect(announcedBytes - (first.length - from)).toBeLessThan(8000);
    expect(announced!.fromMs).toBe(99 + from / 8);

    const lines = await transcriptLines(s, callSid, streamSid);
    expect(expectWordsOnMediaClock(lines, CALL.words)).toEqual([]);
    expect(lines.filter((l) => l.hole === true)).toEqual([]);
    expect(await metricValue(s.http, 'streamgate_asr_reconnects_total', { engine: 'deepgram' })).toBe(1);
    expect(await metricValue(s.http, 'streamgate_asr_connections_total', { engine: 'deepgram' })).toBe(2);
    expect(await metricValue(s.http, 'streamgate_asr_replayed_seconds_total', { engine: 'deepgram' })).toBeCloseTo(announcedBytes / 8000, 6);
    expect(await metricValue(s.http, 'streamgate_asr_dropped_seconds_total', { engine: 'deepgram' })).toBe(0);
  }, 60_000);

  it('a refused key (401): one clear error line for the stream, no retry loop, the call still recorded, counted', async () => {
    const { s, d } = await start({}, 'wrong-key-fedcba9876543210');
    const { callSid, streamSid } = await call(s);

    // One handshake, refused; no connection.
    expect(d.attempts).toBe(1);
    expect(d.refused).toEqual([401]);
    const errors = s.lines.filter((l) => (l.level as number) >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ streamSid, engine: 'deepgram', status: 401 });
    expect(String(errors[0]!.msg)).toMatch(/deepgram refused the credentials \(HTTP 401\); check DEEPGRAM_API_KEY/);
    expect(JSON.stringify(s.lines)).not.toContain('wrong-key-fedcba9876543210');
    // The recording is whole; the stream ended normally.
    expect(s.ends.get(streamSid)).toBe('stopped');
    expect(await manifest(s, callSid, streamSid)).toMatchObject({ framesReceived: CALL.mulaw.length / 160, framesLost: 0 });
    expect(await transcriptLines(s, callSid, streamSid)).toEqual([]);
    expect(await metricValue(s.http, 'streamgate_asr_auth_failures_total', { engine: 'deepgram' })).toBe(1);
    expect(await metricValue(s.http, 'streamgate_asr_connections_total', { engine: 'deepgram' })).toBe(0);
  }, 60_000);

  it('a service that stops answering (reads audio, sends nothing): the gateway gives up on it after ASR_STALL_SECONDS, reconnects and replays; every word arrives', async () => {
    const { s, d } = await start({ ASR_STALL_SECONDS: '1' });
    d.mutePlan = { connection: 0, afterSeconds: 2.9 };
    const { callSid, streamSid } = await call(s);

    expect(d.violations()).toEqual([]);
    expect(d.connections.length).toBeGreaterThanOrEqual(2);
    expect(s.lines.some((l) => l.msg === 'speech service stopped answering; reconnecting' && l.streamSid === streamSid)).toBe(true);
    const lines = await transcriptLines(s, callSid, streamSid);
    expect(expectWordsOnMediaClock(lines, CALL.words)).toEqual([]);
    expect(await metricValue(s.http, 'streamgate_asr_stalls_total', { engine: 'deepgram' })).toBeGreaterThanOrEqual(1);
    expect(await metricValue(s.http, 'streamgate_asr_reconnects_total', { engine: 'deepgram' })).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('malformed messages from the service are counted and ignored; the call is transcribed all the same', async () => {
    const { s, d } = await start();
    const c = await s.sim.createCall({ audio: { type: 'mulaw', data: CALL.mulaw } });
    const streamSid = await startStream(s, c.sid);
    await waitFor(() => d.connections.length === 1 && d.connections[0]!.audio.length > 10, 10_000, 'audio at the service');
    const bad = [
      'not json at all',
      JSON.stringify({ type: 'Results', start: -1, duration: 1, is_final: true, channel: { alternatives: [{ transcript: 'x', words: [] }] } }),
      JSON.stringify({ type: 'Results', start: 0, duration: 1e9, is_final: true, channel: { alternatives: [] } }),
      JSON.stringify({ type: 'Results', start: 0, duration: 0.1, is_final: false, channel: { alternatives: [{ transcript: 'x', words: [{ word: 'x'.repeat(500), start: 0, end: 0.1 }] }] } }),
      JSON.stringify({ type: 'Surprise' }),
      JSON.stringify([1, 2, 3]),
    ];
    for (const m of bad) d.inject(m);
    d.inject(Buffer.from([1, 2, 3]));
    await untilEnded(s, streamSid);

    expect(await metricValue(s.http, 'streamgate_asr_protocol_errors_total', { engine: 'deepgram' })).toBe(bad.length + 1);
    expect(s.lines.filter((l) => l.msg === 'malformed message from the speech service; ignored')).toHaveLength(bad.length + 1);
    expect(d.connections).toHaveLength(1);
    expect(expectWordsOnMediaClock(await transcriptLines(s, c.sid, streamSid), CALL.words)).toEqual([]);
  }, 60_000);

  it('both_tracks: one connection per track, each carrying exactly that track\'s bytes, each transcript on its own track', async () => {
    const { s, d } = await start();
    const other = toneSpeech([['hotel', 'golf'], ['bravo']], 1000);
    const { callSid, streamSid } = await call(s, 'both_tracks', other.mulaw);

    expect(d.violations()).toEqual([]);
    expect(d.connections).toHaveLength(2);
    const audios = d.connections.map(audioOf);
    const inbound = audios.find((a) => a.subarray(0, CALL.mulaw.length).equals(Buffer.from(CALL.mulaw)));
    expect(inbound).toBeDefined();
    expect(inbound!.length).toBe(CALL.mulaw.length);
    // The outbound track: what the caller hears, then silence until the call ends.
    const outbound = audios.find((a) => a !== inbound)!;
    expect(outbound.length).toBe(CALL.mulaw.length);
    expect(outbound.subarray(0, other.mulaw.length).equals(Buffer.from(other.mulaw))).toBe(true);
    expect(outbound.subarray(other.mulaw.length).every((b) => b === 0xff)).toBe(true);

    const lines = await transcriptLines(s, callSid, streamSid);
    expect(expectWordsOnMediaClock(lines.filter((l) => l.track === 'inbound'), CALL.words)).toEqual([]);
    expect(expectWordsOnMediaClock(lines.filter((l) => l.track === 'outbound'), other.words)).toEqual([]);
  }, 60_000);

  it('no audio for a while (the caller\'s media pauses): KeepAlive keeps the connection, and the words after the pause arrive', async () => {
    const { s, d } = await start();
    // 100 frames in (2 s), the emulator's sending stalls 4 s of real time, then the backlog comes.
    const c = await s.sim.createCall({ audio: { type: 'mulaw', data: CALL.mulaw }, streamFaults: { delay: { frames: [100], ms: 4000 } } });
    const streamSid = await startStream(s, c.sid);
    await untilEnded(s, streamSid);

    expect(d.violations()).toEqual([]);
    expect(d.connections).toHaveLength(1);
    expect(d.keepAlives(d.connections[0]!)).toBeGreaterThanOrEqual(1);
    // KeepAlive is sent only in the pause: after the 99 frames before the stalled one, before the rest.
    const seq = d.connections[0]!.sequence;
    const firstKeepAlive = seq.indexOf('{"type":"KeepAlive"}');
    const bytesBefore = seq.slice(0, firstKeepAlive).reduce((n, m) => n + (m.startsWith('audio:') ? Number(m.slice(6)) : 0), 0);
    expect(bytesBefore).toBe(99 * 160);
    expect(expectWordsOnMediaClock(await transcriptLines(s, c.sid, streamSid), CALL.words)).toEqual([]);
  }, 60_000);

  it('frames lost on the way (a gap in media timestamps): the service hears the audio without them, and the words after the gap still land on the media clock', async () => {
    const { s, d } = await start();
    // Frames 96-105 (1900-2100 ms, inside the pause after the first sentence) never arrive.
    const lost = Array.from({ length: 10 }, (_, i) => 96 + i);
    const c = await s.sim.createCall({ audio: { type: 'mulaw', data: CALL.mulaw }, streamFaults: { drop: { frames: lost } } });
    const streamSid = await startStream(s, c.sid);
    await untilEnded(s, streamSid);

    expect(d.violations()).toEqual([]);
    expect(d.connections).toHaveLength(1);
    const audio = Buffer.from(CALL.mulaw);
    const expected = Buffer.concat([audio.subarray(0, 95 * 160), audio.subarray(105 * 160)]);
    expect(audioOf(d.connections[0]!).equals(expected)).toBe(true);
    // The service's clock runs 200 ms behind the media clock after the gap; the gateway maps it back.
    expect(expectWordsOnMediaClock(await transcriptLines(s, c.sid, streamSid), CALL.words)).toEqual([]);
    expect((await manifest(s, c.sid, streamSid)).framesLost).toBe(10);
  }, 60_000);
});
