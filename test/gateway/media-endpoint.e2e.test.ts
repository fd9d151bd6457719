import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { MediaFrame, Sink, SinkFactory } from '../../src/sinks/sink.js';
import type { CloseReason } from '../../src/core/stream.js';
import { captureLines, decodePayloads } from '../helpers/capture.js';
import { collectingSinkFactory, pcmOf } from '../helpers/collecting-sink.js';
import { metricValue, replay, startTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { connected, ids, media, start, stop, tone } from '../helpers/messages.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

describe('/media endpoint', () => {
  it('replays a real Twilio call: 363 frames, 0 lost, SIDs, parameters and exact audio reach the sink', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({}, { sinkFactories: [sink] });
    const lines = captureLines();
    const res = await replay(gw.ws, lines, { closeAfter: true });
    expect(res.closeCode).toBe(1000);
    await waitFor(() => sink.streams[0]?.closed !== null && sink.streams.length === 1, 5000, 'sink closed');
    const s = sink.streams[0]!;
    expect(s.closed).toBe('stopped');
    expect(s.info.streamSid).toBe('MZ726559aad844c8e924c9d32545e4e46f');
    expect(s.info.callSid).toBe('CAc17e4a124d5375ccacd5f673ac6764b4');
    expect(s.info.accountSid).toBe('AC437bfe093bc08b7c0e971c080618c83e');
    expect(s.info.customParameters).toEqual({ StateName: 'IRS', IsScoutCall: 'no' });
    expect(s.info.tracks).toEqual(['inbound']);
    expect(s.frames).toHaveLength(363);
    expect(s.frames[0]!.timestampMs).toBe(99);
    expect(s.frames.at(-1)!.timestampMs).toBe(7339);
    expect(Array.from(pcmOf(s))).toEqual(Array.from(decodePayloads(lines)));

    expect(await metricValue(gw.http, 'streamgate_media_frames_total', { track: 'inbound' })).toBe(363);
    expect(await metricValue(gw.http, 'streamgate_media_bytes_total')).toBe(363 * 160);
    expect(await metricValue(gw.http, 'streamgate_media_frames_lost_total')).toBe(0);
    expect(await metricValue(gw.http, 'streamgate_streams_total', { outcome: 'stopped' })).toBe(1);
    expect(await metricValue(gw.http, 'streamgate_streams_active')).toBe(0);
    expect(await metricValue(gw.http, 'streamgate_frame_ingest_lag_seconds_count')).toBe(363);
    expect(gw.logs.join('')).toContain('"streamSid":"MZ726559aad844c8e924c9d32545e4e46f"');
  });

  it('keeps interleaved both_tracks frames apart', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({}, { sinkFactories: [sink] });
    const s = ids();
    const msgs = [connected(), start(s, { tracks: ['inbound', 'outbound'] })];
    let seq = 2;
    for (let i = 0; i < 50; i++) {
      msgs.push(media(s, seq++, 2 * i + 1, 100 + 20 * i, tone(i), 'inbound'));
      msgs.push(media(s, seq++, 2 * i + 2, 100 + 20 * i, tone(1000 + i), 'outbound'));
    }
    msgs.push(stop(s, seq));
    await replay(gw.ws, msgs, { closeAfter: true });
    await waitFor(() => sink.streams[0]?.closed === 'stopped');
    const c = sink.streams[0]!;
    const inbound = c.frames.filter((f) => f.track === 'inbound');
    const outbound = c.frames.filter((f) => f.track === 'outbound');
    expect(inbound).toHaveLength(50);
    expect(outbound).toHaveLength(50);
    inbound.forEach((f, i) => expect(Array.from(f.mulaw)).toEqual(Array.from(tone(i))));
    outbound.forEach((f, i) => expect(Array.from(f.mulaw)).toEqual(Array.from(tone(1000 + i))));
    expect(await metricValue(gw.http, 'streamgate_media_frames_total', { track: 'outbound' })).toBe(50);
  });

  it('counts lost, duplicate and late frames by sequence number and drops duplicates', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({}, { sinkFactories: [sink] });
    const s = ids();
    const f = (seq: number) => media(s, seq, seq - 1, 100 + 20 * (seq - 2), tone(seq));
    // seq 2,3 then 5 (4 missing), 5 again (duplicate), 4 arrives late, 7 (6 lost for good), stop 8
    const msgs = [connected(), start(s), f(2), f(3), f(5), f(5), f(4), f(7), stop(s, 8)];
    await replay(gw.ws, msgs, { closeAfter: true });
    await waitFor(() => sink.streams[0]?.closed === 'stopped');
    const frames = sink.streams[0]!.frames;
    expect(frames.map((x) => x.timestampMs)).toEqual([100, 120, 160, 140, 200]);
    expect(frames.map((x) => x.late)).toEqual([false, false, false, true, false]);
    expect(await metricValue(gw.http, 'streamgate_media_frames_lost_total')).toBe(1);
    expect(await metricValue(gw.http, 'streamgate_media_frames_duplicate_total')).toBe(1);
    expect(await metricValue(gw.http, 'streamgate_media_frames_late_total')).toBe(1);
    const summary = gw.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'stream ended');
    expect(summary).toMatchObject({ frames: 5, lost: 1, duplicate: 1, late: 1, outcome: 'stopped' });
  });

  it('accepts a payload that is not 160 bytes and accounts it by its real length', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({}, { sinkFactories: [sink] });
    const s = ids();
    await replay(gw.ws, [connected(), start(s), media(s, 2, 1, 100, tone(1, 80)), media(s, 3, 2, 110, tone(2, 240)), stop(s, 4)], { closeAfter: true });
    await waitFor(() => sink.streams[0]?.closed === 'stopped');
    expect(sink.streams[0]!.frames.map((f) => f.samples)).toEqual([80, 240]);
    expect(await metricValue(gw.http, 'streamgate_media_bytes_total')).toBe(320);
  });

  it('ends a stream whose socket closes without stop as aborted, and still closes its sinks', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({}, { sinkFactories: [sink] });
    const s = ids();
    await replay(gw.ws, [connected(), start(s), media(s, 2, 1, 100, tone(1))], { closeAfter: true });
    await waitFor(() => sink.streams[0]?.closed !== null);
    expect(sink.streams[0]!.closed).toBe('aborted');
    expect(await metricValue(gw.http, 'streamgate_streams_total', { outcome: 'aborted' })).toBe(1);
  });

  it('stops counting a stream as active at stop, while its sinks are still finalising', async () => {
    let release!: () => void;
    const finalising = new Promise<void>((r) => (release = r));
    const slowClose: SinkFactory = { name: 'slow-close', open: () => ({ name: 'slow-close', accept: () => undefined, close: () => finalising }) };
    gw = await startTestGateway({}, { sinkFactories: [slowClose] });
    const s = ids();
    const ws = new WebSocket(gw.ws);
    await new Promise((r) => ws.on('open', r));
    ws.send(connected());
    ws.send(start(s));
    await waitFor(async () => (await metricValue(gw!.http, 'streamgate_streams_active')) === 1);
    ws.send(stop(s, 2));
    await waitFor(async () => (await metricValue(gw!.http, 'streamgate_streams_active')) === 0);
    expect(gw.gw.registry.sessions.size).toBe(1); // still finalising: drain would wait for it
    release();
    await waitFor(() => gw!.gw.registry.sessions.size === 0);
    ws.close();
  });

  it('counts an unknown event and goes on', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({}, { sinkFactories: [sink] });
    const s = ids();
    await replay(gw.ws, [connected(), start(s), '{"event":"newthing","streamSid":"x"}', media(s, 2, 1, 100, tone(1)), stop(s, 3)], { closeAfter: true });
    await waitFor(() => sink.streams[0]?.closed === 'stopped');
    expect(sink.streams[0]!.frames).toHaveLength(1);
    expect(await metricValue(gw.http, 'streamgate_unknown_events_total')).toBe(1);
  });

  it('counts a message after stop as message_after_stop and keeps nothing of it', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({}, { sinkFactories: [sink] });
    const s = ids();
    await replay(gw.ws, [connected(), start(s), media(s, 2, 1, 100, tone(1)), stop(s, 3), media(s, 4, 2, 120, tone(2))], { closeAfter: true, lingerMs: 100 });
    await waitFor(() => sink.streams[0]?.closed === 'stopped');
    await waitFor(async () => (await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'message_after_stop' })) === 1, 3000, 'message_after_stop counted');
    expect(sink.streams[0]!.frames).toHaveLength(1);
    expect(await metricValue(gw.http, 'streamgate_streams_total', { outcome: 'stopped' })).toBe(1);
  });
});

describe('/media frames the frame reader hands to ws', () => {
  // src/gateway/media/frame-reader.ts takes plain text frames itself and gives ws the connection
  // from the first other frame on: a ping is answered, a fragmented message assembled, and the
  // stream goes on through ws with nothing lost.
  it('answers a ping mid-stream, assembles a fragmented media message, and loses no frame after either', async () => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({}, { sinkFactories: [sink] });
    const s = ids();
    const ws = new WebSocket(gw.ws);
    await new Promise((r) => ws.on('open', r));
    ws.send(connected());
    ws.send(start(s));
    let seq = 2;
    const sendMedia = (count: number) => {
      for (let i = 0; i < count; i++, seq++) ws.send(media(s, seq, seq - 1, 100 + 20 * (seq - 2), tone(seq)));
    };
    sendMedia(5);
    const pong = new Promise<Buffer>((r) => ws.once('pong', r));
    ws.ping(Buffer.from('still there?'));
    expect((await pong).toString()).toBe('still there?');
    sendMedia(5);
    const m = media(s, seq, seq - 1, 100 + 20 * (seq - 2), tone(seq));
    seq++;
    ws.send(m.slice(0, 40), { fin: false });
    ws.send(m.slice(40), { fin: true });
    sendMedia(5);
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.send(stop(s, seq));
    await waitFor(() => sink.streams[0]?.closed === 'stopped', 5000, 'stream stopped');
    const frames = sink.streams[0]!.frames;
    expect(frames.map((f) => f.timestampMs)).toEqual(Array.from({ length: 16 }, (_, i) => 100 + 20 * i));
    expect(Array.from(frames[10]!.mulaw)).toEqual(Array.from(tone(12)));
    // The close handshake is ws's too: the socket closes.
    ws.close(1000, 'done');
    await closed;
  });
});

describe('/media bad input', () => {
  const s = ids();
  const cases: [string, (string | Buffer)[], number, string][] = [
    ['non-JSON text', [connected(), start(s), 'hello'], 1007, 'invalid_json'],
    ['a missing field', [connected(), start(s), JSON.stringify({ event: 'media', streamSid: s.streamSid, sequenceNumber: '2' })], 1007, 'missing_field'],
    ['a mistyped field', [connected(), start(s), media(s, 2, 1, 100, tone(1)).replace('"timestamp":"100"', '"timestamp":{"x":1}')], 1007, 'invalid_field'],
    ['media before start', [connected(), media(s, 2, 1, 100, tone(1))], 1002, 'media_before_start'],
    ['invalid base64', [connected(), start(s), media(s, 2, 1, 100, tone(1)).replace(/"payload":"[^"]+"/, '"payload":"@@@@"')], 1007, 'invalid_base64'],
    ['a binary frame', [connected(), start(s), Buffer.from([1, 2, 3])], 1003, 'binary_frame'],
    ['an oversized message', [connected(), start(s), media(s, 2, 1, 100, new Uint8Array(8000))], 1009, 'message_too_large'],
    ['a second start', [connected(), start(s), start(s)], 1002, 'duplicate_start'],
    ['a frame of another stream', [connected(), start(s), media({ ...s, streamSid: ids().streamSid }, 2, 1, 100, tone(1))], 1002, 'stream_sid_mismatch'],
    ['a track it did not announce', [connected(), start(s), media(s, 2, 1, 100, tone(1), 'outbound')], 1002, 'unannounced_track'],
  ];

  it.each(cases)('closes only that stream on %s, with a code, a logged reason and a metric', async (_name, bad, code, reason) => {
    const sink = collectingSinkFactory();
    gw = await startTestGateway({ MAX_MESSAGE_BYTES: '4096' }, { sinkFactories: [sink] });
    // A healthy stream runs beside the bad one and must lose nothing.
    const h = ids();
    const healthy = new WebSocket(gw.ws);
    await new Promise((r) => healthy.on('open', r));
    healthy.send(connected());
    healthy.send(start(h));
    for (let i = 0; i < 20; i++) healthy.send(media(h, i + 2, i + 1, 100 + 20 * i, tone(i)));

    const res = await replay(gw.ws, bad);
    expect(res.closeCode).toBe(code);
    await waitFor(async () => (await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason })) === 1, 3000, `metric ${reason}`);
    expect(gw.logs.some((l) => l.includes('protocol error') && l.includes(`"reason":"${reason}"`))).toBe(true);

    for (let i = 20; i < 40; i++) healthy.send(media(h, i + 2, i + 1, 100 + 20 * i, tone(i)));
    healthy.send(stop(h, 42));
    await waitFor(() => sink.streams.find((c) => c.info.streamSid === h.streamSid)?.closed === 'stopped');
    expect(sink.streams.find((c) => c.info.streamSid === h.streamSid)!.frames).toHaveLength(40);
    healthy.close();
  });
});

describe('/media text that is not UTF-8', () => {
  // ws leaves UTF-8 to the session (skipUTF8Validation): the fast path takes only ASCII media
  // messages, everything else is checked before it is read as text.
  it.each([
    ['before start', (_s: ReturnType<typeof ids>) => [connected(), Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])]],
    ['in a media message of a started stream', (s: ReturnType<typeof ids>) => [connected(), start(s), Buffer.from(media(s, 2, 1, 100, tone(1)).replace('"track":"inbound"', '"track":"inbound\u0001"'), 'latin1').map((b) => (b === 1 ? 0xc3 : b))]],
  ])('closes the stream %s with 1007 invalid_utf8, counted', async (_name, build) => {
    gw = await startTestGateway({});
    const s = ids();
    const ws = new WebSocket(gw.ws);
    await new Promise((r) => ws.on('open', r));
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    for (const m of build(s)) ws.send(m, { binary: false });
    expect(await closed).toBe(1007);
    await waitFor(async () => (await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'invalid_utf8' })) === 1, 3000, 'invalid_utf8 counted');
  });
});

describe('fan-out isolation', () => {
  function throwingSink(): SinkFactory {
    return {
      name: 'broken',
      open: () => ({
        name: 'broken',
        accept(f: MediaFrame) {
          if (f.sequenceNumber === 10) throw new Error('disk on fire');
        },
        close: async () => undefined,
      }),
    };
  }

  /** A sink with a bounded queue of 8 frames drained one frame per 50 ms: it falls behind. */
  function slowSink(): SinkFactory & { received: number } {
    const f = {
      name: 'slow',
      received: 0,
      open(_info: unknown, ctx: { stats: { dropped: number; queued: number } }): Sink {
        const queue: number[] = [];
        const timer = setInterval(() => {
          if (queue.shift() !== undefined) {
            f.received++;
            ctx.stats.queued--;
          }
        }, 50);
        return {
          name: 'slow',
          accept(frame: MediaFrame) {
            if (queue.length >= 8) {
              ctx.stats.dropped++;
              return;
            }
            queue.push(frame.timestampMs);
            ctx.stats.queued++;
          },
          async close(_r: CloseReason) {
            clearInterval(timer);
          },
        };
      },
    };
    return f;
  }

  it('isolates a throwing sink and a slow sink: the stream and the other sink get every frame', async () => {
    const good = collectingSinkFactory();
    const slow = slowSink();
    gw = await startTestGateway({}, { sinkFactories: [throwingSink(), slow, good] });
    await replay(gw.ws, captureLines(), { closeAfter: true });
    await waitFor(() => good.streams[0]?.closed === 'stopped');
    expect(good.streams[0]!.frames).toHaveLength(363);
    expect(await metricValue(gw.http, 'streamgate_sink_errors_total', { sink: 'broken' })).toBe(1);
    expect(await metricValue(gw.http, 'streamgate_sink_dropped_frames_total', { sink: 'slow' })).toBeGreaterThan(300);
    expect(gw.logs.filter((l) => l.includes('sink threw'))).toHaveLength(1);
  });
});
