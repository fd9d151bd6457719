/**
 * Two-way streams (`<Connect><Stream>`) against a real WebSocket server that talks back as
 * Twilio's connect-basic sample does: media played into the call, marks echoed after their
 * audio, clear, dtmf from keys pressed through the control API, and Twilio's warnings.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSim, type Sim } from '../../src/emulator/index.js';
import { credentials } from './helpers/fixture.js';
import { startStreamReceiver, type ReceivedMessage, type StreamConnection, type StreamReceiver } from './helpers/receivers.js';
import { media, waitForMessages } from './helpers/streams.js';
import { waitFor } from '../helpers/wait.js';

let sim: Sim;
let rx: StreamReceiver;

beforeEach(async () => {
  const { accountSid, authToken } = credentials();
  sim = await startSim({ accountSid, authToken, speed: 10 });
  rx = await startStreamReceiver();
});

afterEach(async () => {
  await sim.close();
  await rx.close();
});

/** A call whose TwiML opens an outbound_track stream at /out, then a two-way stream at /two. */
async function connectCall(): Promise<{ callSid: string; two: StreamConnection; out: StreamConnection; streamSid: string }> {
  const call = await sim.createCall({
    twiml: `<Response><Start><Stream url="${rx.origin}/out" track="outbound_track"/></Start><Connect><Stream url="${rx.origin}/two"/></Connect></Response>`,
  });
  await sim.waitUntil(() => rx.connections.length >= 2 || undefined, { timeoutMs: 20_000 });
  const two = rx.connections.find((c) => c.path === '/two')!;
  const out = rx.connections.find((c) => c.path === '/out')!;
  await waitForMessages(two, 1, (m) => m.json.event === 'start');
  const streamSid = two.messages.find((m) => m.json.event === 'start')!.json.start!.streamSid;
  return { callSid: call.sid, two, out, streamSid };
}

function send(conn: StreamConnection, msg: unknown): void {
  conn.socket.send(JSON.stringify(msg));
}

const ZERO_FRAMES = (n: number): string => Buffer.alloc(160 * n, 0x00).toString('base64');
const ZERO_PAYLOAD = Buffer.alloc(160, 0x00).toString('base64');

function seq(m: ReceivedMessage): number {
  return Number(m.json.sequenceNumber);
}

async function control(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(sim.url + path, { method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('two-way streams', () => {
  it('plays media back into the call, visible as its outbound audio, and echoes a mark once the audio before it has played', async () => {
    const { two, out, streamSid } = await connectCall();
    const before = media(two).length;
    // As connect-basic does: one second of audio (50 frames) in one message, then a mark.
    send(two, { event: 'media', streamSid, media: { payload: ZERO_FRAMES(50) } });
    send(two, { event: 'mark', streamSid, mark: { name: 'one-second' } });
    await waitForMessages(two, 1, (m) => m.json.event === 'mark');
    const echo = two.messages.find((m) => m.json.event === 'mark')!;
    expect(echo.json.mark).toEqual({ name: 'one-second' });
    expect(echo.json.streamSid).toBe(streamSid);
    // The echo waited for the 50 frames to play: at least 50 inbound frames went out first.
    const framesBeforeEcho = media(two).filter((m) => seq(m) < seq(echo)).length;
    expect(framesBeforeEcho - before).toBeGreaterThanOrEqual(50);
    // Marks share the stream's sequenceNumber counter (twilio-protocol.md §12.6).
    await waitForMessages(two, 1, (m) => m.json.event === 'media' && seq(m) > seq(echo));
    expect(seq(media(two).find((m) => seq(m) > seq(echo))!)).toBe(seq(echo) + 1);
    // What the server played is what the call hears: the outbound_track stream carries it.
    await waitFor(() => sim.stream(streamSid)!.twoWay!.framesPlayed === 50, 15_000, 'the audio to play');
    await waitForMessages(out, 40, (m) => m.json.media?.payload === ZERO_PAYLOAD);
    const snap = sim.stream(streamSid)!;
    expect(snap.twoWay).toMatchObject({ mediaReceived: 1, marksReceived: 1, marksEchoed: 1, pendingMarks: [], framesPlayed: 50 });
  });

  it('echoes a mark at once when nothing is buffered; clear drops the audio and echoes every pending mark', async () => {
    const { two, streamSid } = await connectCall();
    send(two, { event: 'mark', streamSid, mark: { name: 'now' } });
    await waitForMessages(two, 1, (m) => m.json.mark?.name === 'now');
    // 80 s of audio before 'a' (8 s of real time at speed 10): only clear can release these marks.
    send(two, { event: 'media', streamSid, media: { payload: ZERO_FRAMES(4000) } });
    send(two, { event: 'mark', streamSid, mark: { name: 'a' } });
    send(two, { event: 'media', streamSid, media: { payload: ZERO_FRAMES(4000) } });
    send(two, { event: 'mark', streamSid, mark: { name: 'b' } });
    await waitFor(() => sim.stream(streamSid)!.twoWay!.pendingMarks.length === 2, 15_000, 'two pending marks');
    send(two, { event: 'clear', streamSid });
    await waitForMessages(two, 3, (m) => m.json.event === 'mark');
    expect(two.messages.filter((m) => m.json.event === 'mark').map((m) => m.json.mark!.name)).toEqual(['now', 'a', 'b']);
    const tw = sim.stream(streamSid)!.twoWay!;
    expect(tw.clears).toBe(1);
    expect(tw.pendingMarks).toEqual([]);
    expect(tw.framesDiscarded).toBeGreaterThan(7000);
  });

  it('delivers keys pressed through the control API as dtmf events, in order', async () => {
    const { callSid, two, streamSid } = await connectCall();
    const r = await control('POST', `/sim/calls/${callSid}/digits`, { digits: '12#' });
    expect(r.status).toBe(200);
    await waitForMessages(two, 3, (m) => m.json.event === 'dtmf');
    const dtmf = two.messages.filter((m) => m.json.event === 'dtmf');
    expect(dtmf.map((m) => m.json.dtmf)).toEqual([
      { track: 'inbound_track', digit: '1' },
      { track: 'inbound_track', digit: '2' },
      { track: 'inbound_track', digit: '#' },
    ]);
    expect(dtmf.every((m) => m.json.streamSid === streamSid)).toBe(true);
    expect(seq(dtmf[1]!)).toBe(seq(dtmf[0]!) + 1);
    expect(sim.stream(streamSid)!.dtmfSent).toBe(3);
    expect((await control('POST', `/sim/calls/${callSid}/digits`, { digits: 'x' })).status).toBe(400);
  });

  it('refuses dtmf on a call without a two-way stream and ignores what a one-way stream server sends', async () => {
    const call = await sim.createCall({ twiml: `<Response><Start><Stream url="${rx.origin}/one"/></Start><Pause length="600"/></Response>` });
    const conn = await rx.connection();
    await waitForMessages(conn, 1, (m) => m.json.event === 'start');
    const r = await control('POST', `/sim/calls/${call.sid}/digits`, { digits: '5' });
    expect(r.status).toBe(400);
    expect(String(r.body.error)).toContain('<Connect><Stream>');
    conn.socket.send(JSON.stringify({ event: 'mark', streamSid: 'x', mark: { name: 'm' } }));
    await waitFor(() => sim.streams({ callSid: call.sid })[0]!.messagesReceived === 1, 15_000, 'the message to arrive');
    const snap = sim.streams({ callSid: call.sid })[0]!;
    expect(snap.twoWay).toBeNull();
    // A later frame proves the mark was processed and never echoed.
    const seen = media(conn).length;
    await waitForMessages(conn, seen + 5, (m) => m.json.event === 'media');
    expect(conn.messages.some((m) => m.json.event === 'mark')).toBe(false);
  });

  it('counts what Twilio warns about (31951 invalid, 31950 binary) and keeps the stream up', async () => {
    const { two, streamSid } = await connectCall();
    two.socket.send('not json');
    send(two, { event: 'media', streamSid: 'MZ' + '0'.repeat(32), media: { payload: ZERO_FRAMES(1) } });
    send(two, { event: 'media', streamSid, media: { payload: ZERO_FRAMES(1), track: 'outbound' } });
    send(two, { event: 'dance', streamSid });
    two.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    // A valid mark after them: its echo proves everything before it was judged.
    send(two, { event: 'mark', streamSid, mark: { name: 'after' } });
    await waitForMessages(two, 1, (m) => m.json.mark?.name === 'after');
    const tw = sim.stream(streamSid)!.twoWay!;
    expect(tw.warnings).toEqual({ '31951': 4, '31950': 1 });
    expect(tw.mediaReceived).toBe(0);
    expect(sim.stream(streamSid)!.status).toBe('in-progress');
  });

  it('discards audio beyond 10 minutes of buffer (31931) and keeps the stream up', async () => {
    const { two, streamSid } = await connectCall();
    // 8 × 4000 frames = 640 s queued at once; the limit is 600 s (30 000 frames).
    for (let i = 0; i < 8; i++) send(two, { event: 'media', streamSid, media: { payload: ZERO_FRAMES(4000) } });
    send(two, { event: 'mark', streamSid, mark: { name: 'end' } });
    await waitFor(() => sim.stream(streamSid)!.twoWay!.marksReceived === 1, 15_000, 'all eight messages judged');
    const tw = sim.stream(streamSid)!.twoWay!;
    expect(tw.mediaReceived).toBe(8);
    expect(tw.warnings['31931']).toBeGreaterThanOrEqual(1);
    // The buffer holds 30 000 unplayed frames: of the 32 000 sent, what neither fit nor made room
    // by playing meanwhile is dropped.
    expect(tw.framesDiscarded).toBeGreaterThan(0);
    expect(tw.framesDiscarded).toBeLessThanOrEqual(2000);
    expect(tw.framesDiscarded).toBeGreaterThanOrEqual(2000 - tw.framesPlayed);
    expect(tw.pendingMarks).toEqual(['end']);
    expect(sim.stream(streamSid)!.status).toBe('in-progress');
  });
});
