import { readFileSync } from 'node:fs';
import twilio from 'twilio';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { computeSignature, validateSignature, validateUpgradeSignature } from '../../src/twilio/signature.js';
import { startSim, type Sim } from '../../src/emulator/index.js';
import { FRAME_BYTES, toneSource } from '../../src/emulator/audio-source.js';
import { credentials, HELLO_WORLD } from './helpers/fixture.js';
import { startCallbackReceiver, startStreamReceiver, type CallbackReceiver, type StreamReceiver, type WireMessage } from './helpers/receivers.js';
import { restCaller } from './helpers/rest.js';
import { createStream, media, mediaFields, waitForMessages } from './helpers/streams.js';

const capture = readFileSync(HELLO_WORLD, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => ({ text: l, json: JSON.parse(l) as WireMessage }));
const captureParams = capture[1]!.json.start!.customParameters;

function toneFrames(hz: number, ms: number): string[] {
  const src = toneSource(hz, ms);
  return Array.from({ length: src.frameCount }, (_, i) => src.payload(i));
}

describe('Media Streams client', () => {
  let sim: Sim;
  let rx: StreamReceiver;
  let cb: CallbackReceiver;

  async function start(speed: number, extra: Partial<Parameters<typeof startSim>[0]> = {}): Promise<void> {
    sim = await startSim({ ...credentials(), speed, ...extra });
  }

  beforeEach(async () => {
    rx = await startStreamReceiver();
    cb = await startCallbackReceiver();
  });
  afterEach(async () => {
    await sim?.close();
    await rx.close();
    await cb.close();
  });

  it('replays a real capture byte for byte: payloads, timestamps, counters and custom parameters', async () => {
    await start(0);
    const call = await sim.createCall({ audio: HELLO_WORLD });
    const params: Record<string, string> = { Url: `${rx.origin}/media` };
    Object.entries(captureParams).forEach(([name, value], i) => {
      params[`Parameter${i + 1}.Name`] = name;
      params[`Parameter${i + 1}.Value`] = value;
    });
    expect((await createStream(sim, call.sid, params)).status).toBe(200);
    const conn = await rx.connection();
    await conn.closed;

    expect(conn.messages).toHaveLength(capture.length);
    const streamSid = conn.messages[1]!.json.streamSid!;
    const captured = capture[1]!.json.start!;
    const swap = (line: string): string =>
      line.replaceAll(captured.streamSid, streamSid).replaceAll(captured.accountSid, sim.accountSid).replaceAll(captured.callSid, call.sid);
    // start, all 363 media and stop are the capture's lines with only the SIDs swapped.
    for (let i = 1; i < capture.length; i++) expect(conn.messages[i]!.text).toBe(swap(capture[i]!.text));
    expect(conn.messages[1]!.json.start!.customParameters).toEqual(captureParams);
    // connected differs only in the version (the capture says 0.2.0, the docs 1.0.0).
    expect(conn.messages[0]!.json).toEqual({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    expect(conn.messages.at(-1)!.json).toEqual({
      event: 'stop',
      sequenceNumber: '365',
      streamSid,
      stop: { accountSid: sim.accountSid, callSid: call.sid },
    });
    expect(conn.closeCode).toBe(1000);
    // The call hangs up at the end of its audio.
    expect((await sim.waitForCallStatus(call.sid, 'completed')).status).toBe('completed');
  });

  it('sends connected and a Twilio-shaped start', async () => {
    await start(0);
    const call = await sim.createCall({ audio: { type: 'tone', hz: 440, ms: 100 } });
    const r = await createStream(sim, call.sid, { Url: `${rx.origin}/media`, Track: 'outbound_track', 'Parameter1.Name': 'tenant', 'Parameter1.Value': 'acme' });
    const conn = await rx.connection();
    await conn.closed;
    expect(conn.messages[1]!.json).toEqual({
      event: 'start',
      sequenceNumber: '1',
      start: {
        accountSid: sim.accountSid,
        streamSid: r.body.sid,
        callSid: call.sid,
        tracks: ['outbound'],
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        customParameters: { tenant: 'acme' },
      },
      streamSid: r.body.sid,
    });
    const m = media(conn).map(mediaFields);
    expect(m.length).toBeGreaterThan(0);
    for (const f of m) {
      expect(f.track).toBe('outbound');
      expect(Buffer.from(f.payload, 'base64')).toHaveLength(FRAME_BYTES);
      expect(f.payload).toHaveLength(216);
    }
  });

  it('signs the upgrade over the URL it dialled, as Twilio does', async () => {
    await start(0);
    const call = await sim.createCall({ audio: { type: 'silence', ms: 40 } });
    const url = `${rx.origin}/media`;
    await createStream(sim, call.sid, { Url: url });
    const conn = await rx.connection();
    const sig = conn.headers['x-twilio-signature'] as string;
    expect(sig).toBe(computeSignature(sim.authToken, url, {}));
    expect(validateSignature(sim.authToken, sig, url)).toBe(true);
    expect(validateUpgradeSignature(sim.authToken, sig, rx.origin.replace('ws:', 'http:'), '/media')).toBe(true);
    expect(validateUpgradeSignature('wrong-token', sig, rx.origin.replace('ws:', 'http:'), '/media')).toBe(false);
    // twilio-node's own validator agrees.
    expect(twilio.validateRequest(sim.authToken, sig, url, {})).toBe(true);
    expect(conn.path).toBe('/media');
  });

  it('interleaves inbound and outbound frames for both_tracks, each its own message', async () => {
    await start(0);
    const call = await sim.createCall({ audio: { type: 'tone', hz: 440, ms: 200 }, hears: { type: 'tone', hz: 1000, ms: 400 } });
    await createStream(sim, call.sid, { Url: `${rx.origin}/media`, Track: 'both_tracks' });
    const conn = await rx.connection();
    await conn.closed;
    expect(conn.messages[1]!.json.start!.tracks).toEqual(['inbound', 'outbound']);
    const m = media(conn).map(mediaFields);
    expect(m).toHaveLength(20);
    const inbound = toneFrames(440, 200);
    const outbound = toneFrames(1000, 400);
    for (let k = 0; k < 10; k++) {
      const [i, o] = [m[2 * k]!, m[2 * k + 1]!];
      expect([i.track, o.track]).toEqual(['inbound', 'outbound']);
      expect(i.timestamp).toBe(String(99 + 20 * k));
      expect(o.timestamp).toBe(i.timestamp);
      expect([i.chunk, o.chunk]).toEqual([String(k + 1), String(k + 1)]);
      expect(i.payload).toBe(inbound[k]);
      expect(o.payload).toBe(outbound[k]);
    }
    // One sequence counter across tracks and events.
    expect(m.map((f) => Number(f.sequenceNumber))).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
  });

  it('counts chunk across both tracks when configured to', async () => {
    await start(0, { chunkCounting: 'shared' });
    const call = await sim.createCall({ audio: { type: 'tone', hz: 440, ms: 60 } });
    await createStream(sim, call.sid, { Url: `${rx.origin}/media`, Track: 'both_tracks' });
    const conn = await rx.connection();
    await conn.closed;
    expect(media(conn).map((x) => mediaFields(x).chunk)).toEqual(['1', '2', '3', '4', '5', '6']);
  });

  it('paces frames 20 ms apart at speed 1', async () => {
    await start(1);
    const call = await sim.createCall({ audio: { type: 'tone', hz: 440, ms: 1000 } });
    await createStream(sim, call.sid, { Url: `${rx.origin}/media` });
    const conn = await rx.connection();
    await conn.closed;
    const at = media(conn).map((m) => m.at);
    expect(at).toHaveLength(50);
    const span = at.at(-1)! - at[0]!;
    expect(span).toBeGreaterThan(49 * 20 * 0.85);
    expect(span).toBeLessThan(49 * 20 * 1.3);
    const gaps = at.slice(1).map((t, i) => t - at[i]!).sort((a, b) => a - b);
    const median = gaps[Math.floor(gaps.length / 2)]!;
    expect(median).toBeGreaterThan(12);
    expect(median).toBeLessThan(28);
  });

  it('runs ten times faster at speed 10 and as fast as it can unpaced', async () => {
    await start(10);
    const call = await sim.createCall({ audio: { type: 'tone', hz: 440, ms: 2000 } });
    await createStream(sim, call.sid, { Url: `${rx.origin}/media` });
    const conn = await rx.connection();
    await conn.closed;
    const at = media(conn).map((m) => m.at);
    expect(at).toHaveLength(100);
    const span = at.at(-1)! - at[0]!;
    expect(span).toBeGreaterThan(99 * 2 * 0.8);
    expect(span).toBeLessThan(99 * 2 * 1.6);
    await sim.close();

    await start(0);
    const long = await sim.createCall({ audio: { type: 'tone', hz: 440, ms: 60_000 } });
    const t0 = performance.now();
    await createStream(sim, long.sid, { Url: `${rx.origin}/media` });
    const conn2 = await rx.connection(1);
    await conn2.closed;
    expect(media(conn2)).toHaveLength(3000);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('stops a stream found by Name on UpdateStream: stop, then a normal close; the call stays up', async () => {
    await start(10);
    const call = await sim.createCall();
    await createStream(sim, call.sid, { Url: `${rx.origin}/media`, Name: 'rec-1' });
    const conn = await rx.connection();
    await waitForMessages(conn, 5, (m) => m.json.event === 'media');
    const rest = restCaller(sim.url, sim.accountSid, sim.authToken);
    const r = await rest.post(`/2010-04-01/Accounts/${sim.accountSid}/Calls/${call.sid}/Streams/rec-1.json`, { Status: 'stopped' });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('stopped');
    expect(r.body.name).toBe('rec-1');
    expect(await conn.closed).toBe(1000);
    const last = conn.messages.at(-1)!.json;
    const before = conn.messages.at(-2)!.json;
    expect(last.event).toBe('stop');
    expect(Number(last.sequenceNumber)).toBe(Number(before.sequenceNumber) + 1);
    expect(sim.call(call.sid)!.status).toBe('in-progress');
    expect(sim.stream(r.body.sid as string)!.endReason).toBe('api');
  });

  it('stops every stream of a call that hangs up', async () => {
    await start(10);
    const call = await sim.createCall();
    await createStream(sim, call.sid, { Url: `${rx.origin}/a`, Track: 'inbound_track' });
    await createStream(sim, call.sid, { Url: `${rx.origin}/b`, Track: 'outbound_track' });
    const [a, b] = [await rx.connection(0), await rx.connection(1)];
    await waitForMessages(a, 3, (m) => m.json.event === 'media');
    await waitForMessages(b, 3, (m) => m.json.event === 'media');
    const rest = restCaller(sim.url, sim.accountSid, sim.authToken);
    const r = await rest.post(`/2010-04-01/Accounts/${sim.accountSid}/Calls/${call.sid}.json`, { Status: 'completed' });
    expect(r.body.status).toBe('completed');
    for (const conn of [a, b]) {
      expect(await conn.closed).toBe(1000);
      expect(conn.messages.at(-1)!.json.event).toBe('stop');
    }
  });

  it('stops the streams of every participant when the conference is ended via the API', async () => {
    await start(10);
    const conf = await sim.createConference({ participants: [{}, {}] });
    for (const p of conf.participants) await createStream(sim, p.callSid, { Url: `${rx.origin}/media`, Track: 'both_tracks' });
    const conns = [await rx.connection(0), await rx.connection(1)];
    for (const c of conns) await waitForMessages(c, 4, (m) => m.json.event === 'media');
    const rest = restCaller(sim.url, sim.accountSid, sim.authToken);
    const r = await rest.post(`/2010-04-01/Accounts/${sim.accountSid}/Conferences/${conf.sid}.json`, { Status: 'completed' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'completed', reason_conference_ended: 'conference-ended-via-api', call_sid_ending_conference: null });
    for (const c of conns) {
      expect(await c.closed).toBe(1000);
      expect(c.messages.at(-1)!.json.event).toBe('stop');
    }
    for (const p of conf.participants) expect(sim.call(p.callSid)!.status).toBe('completed');
  });

  it('plays each participant what the others say (one speaker passes through bit-exact)', async () => {
    await start(0);
    const conf = await sim.createConference({
      participants: [
        { audio: { type: 'tone', hz: 440, ms: 400 } },
        { audio: { type: 'tone', hz: 1000, ms: 2000 }, hangupOnAudioEnd: false },
      ],
    });
    await createStream(sim, conf.participants[0]!.callSid, { Url: `${rx.origin}/media`, Track: 'both_tracks' });
    const conn = await rx.connection();
    await conn.closed;
    const m = media(conn).map(mediaFields);
    const heard = m.filter((f) => f.track === 'outbound').map((f) => f.payload);
    expect(heard).toEqual(toneFrames(1000, 2000).slice(0, 20));
  });

  it('mixes two other speakers and sends silence before the conference starts', async () => {
    await start(0);
    const conf = await sim.createConference({
      participants: [{ audio: { type: 'silence', ms: 200 }, startConferenceOnEnter: false }],
    });
    const p0 = conf.participants[0]!.callSid;
    await createStream(sim, p0, { Url: `${rx.origin}/media`, Track: 'outbound_track' });
    const conn = await rx.connection();
    await conn.closed;
    // Alone in a conference that has not started: silence.
    for (const f of media(conn).map(mediaFields)) expect(new Set(Buffer.from(f.payload, 'base64'))).toEqual(new Set([0xff]));

    const conf2 = await sim.createConference({
      participants: [
        { audio: { type: 'silence', ms: 100 } },
        { audio: { type: 'tone', hz: 440, ms: 1000 } },
        { audio: { type: 'tone', hz: 1000, ms: 1000 } },
      ],
    });
    await createStream(sim, conf2.participants[0]!.callSid, { Url: `${rx.origin}/media`, Track: 'outbound_track' });
    const conn2 = await rx.connection(1);
    await conn2.closed;
    const out = media(conn2).map(mediaFields);
    expect(out).toHaveLength(5);
    const a = toneFrames(440, 1000);
    const b = toneFrames(1000, 1000);
    for (let k = 0; k < out.length; k++) {
      expect(out[k]!.payload).not.toBe(a[k]);
      expect(out[k]!.payload).not.toBe(b[k]);
      expect(Buffer.from(out[k]!.payload, 'base64')).toHaveLength(FRAME_BYTES);
    }
  });

  it('reports a refused connection with a stream-error callback (31902)', async () => {
    await start(0);
    const call = await sim.createCall();
    const closedPort = rx.origin.replace(/:\d+$/, ':1');
    const r = await createStream(sim, call.sid, { Url: `${closedPort}/media`, StatusCallback: `${cb.origin}/status` });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('in-progress');
    const [entry] = await sim.waitForCallbacks({ event: 'stream-error' });
    expect(entry!.params.StreamError).toMatch(/^Stream - WebSocket - Connection Refused/);
    expect(cb.received.at(-1)!.params.StreamEvent).toBe('stream-error');
    const s = sim.stream(r.body.sid as string)!;
    expect(s).toMatchObject({ status: 'stopped', connected: false, endReason: 'error' });
    expect(s.error!.code).toBe(31902);
  });

  it('reports a refused upgrade (non-101) as a handshake error (31920)', async () => {
    await start(0);
    rx.refuseWith = 403;
    const call = await sim.createCall();
    const r = await createStream(sim, call.sid, { Url: `${rx.origin}/media`, StatusCallback: `${cb.origin}/status` });
    await sim.waitForCallbacks({ event: 'stream-error' });
    const s = sim.stream(r.body.sid as string)!;
    expect(s.handshakeStatus).toBe(403);
    expect(s.error!.code).toBe(31920);
    expect(cb.received[0]!.params.StreamError).toContain('403');
  });

  it('refuses ws:// with 31922 when asked to behave like production Twilio', async () => {
    await start(0, { requireWss: true });
    const call = await sim.createCall();
    const r = await createStream(sim, call.sid, { Url: `${rx.origin}/media` });
    const s = await sim.waitUntil(() => {
      const x = sim.stream(r.body.sid as string)!;
      return x.status === 'stopped' ? x : null;
    });
    expect(s.error!.code).toBe(31922);
    expect(rx.connections).toHaveLength(0);
  });

  it('treats a socket the gateway closes as a stream error (31921) and keeps the call', async () => {
    await start(10);
    const call = await sim.createCall();
    const r = await createStream(sim, call.sid, { Url: `${rx.origin}/media`, StatusCallback: `${cb.origin}/status` });
    const conn = await rx.connection();
    await waitForMessages(conn, 3, (m) => m.json.event === 'media');
    conn.socket.close(1011);
    const [err] = await sim.waitForCallbacks({ event: 'stream-error' });
    expect(err!.params.StreamError).toContain('1011');
    expect(sim.stream(r.body.sid as string)!.error!.code).toBe(31921);
    expect(sim.call(call.sid)!.status).toBe('in-progress');
  });
});
