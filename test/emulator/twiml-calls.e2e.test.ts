/**
 * Calls as Twilio runs them: twilio-node places a call against the emulator, the emulator
 * fetches the TwiML from a real HTTP app (signed), and runs <Start>/<Stop>/<Connect><Stream>,
 * <Dial><Conference>, <Pause>, <Redirect> and <Hangup> against real WebSocket servers.
 */
import pino from 'pino';
import twilio from 'twilio';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSim, type Sim } from '../../src/emulator/index.js';
import { credentials } from './helpers/fixture.js';
import { startCallbackReceiver, startStreamReceiver, type CallbackReceiver, type StreamReceiver } from './helpers/receivers.js';
import { waitForMessages } from './helpers/streams.js';
import { startTwimlApp, type TwimlApp } from './helpers/twiml-app.js';

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

let sim: Sim;
let app: TwimlApp;
let rx: StreamReceiver;
let cb: CallbackReceiver;
let logs: LogLine[];
let wait: { timeoutMs: number };

beforeEach(async () => {
  const { accountSid, authToken } = credentials();
  logs = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s) as LogLine) });
  sim = await startSim({ accountSid, authToken, speed: 10, logger });
  // Generous waits: the machine may be loaded.
  wait = { timeoutMs: 20_000 };
  app = await startTwimlApp(authToken);
  rx = await startStreamReceiver();
  cb = await startCallbackReceiver();
});

afterEach(async () => {
  await sim.close();
  await Promise.all([app.close(), rx.close(), cb.close()]);
});

function client(): twilio.Twilio {
  const c = twilio(sim.accountSid, sim.authToken);
  c.api.baseUrl = sim.url;
  return c;
}

describe('TwiML calls', () => {
  it('twilio-node calls.create: signed TwiML fetch, <Start><Stream> with <Parameter>, hang-up at the end, progress callbacks in order', async () => {
    app.routes.set(
      '/voice',
      `<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Start><Stream url="${rx.origin}/media" track="both_tracks" name="rec"><Parameter name="tenant" value="a&amp;b"/></Stream></Start>
  <Pause length="30"/>
</Response>`,
    );
    const call = await client().calls.create({
      to: '+15005550002',
      from: '+15005550006',
      url: `${app.origin}/voice`,
      statusCallback: `${cb.origin}/progress`,
      statusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
    });
    expect(call.status).toBe('queued');
    expect(call.direction).toBe('outbound-api');
    const [fetch] = await app.requested('/voice');
    expect(fetch!.method).toBe('POST');
    expect(fetch!.signed).toBe(true);
    expect(fetch!.params).toMatchObject({ CallSid: call.sid, AccountSid: sim.accountSid, From: '+15005550006', To: '+15005550002', CallStatus: 'in-progress', Direction: 'outbound-api', ApiVersion: '2010-04-01' });

    const conn = await rx.connection();
    await waitForMessages(conn, 1, (m) => m.json.event === 'start');
    const start = conn.messages.find((m) => m.json.event === 'start')!.json.start!;
    expect(start.callSid).toBe(call.sid);
    expect(start.tracks).toEqual(['inbound', 'outbound']);
    expect(start.customParameters).toEqual({ tenant: 'a&b' });
    // The document ends after the pause: Twilio hangs up, the stream gets `stop`.
    await sim.waitForCallStatus(call.sid, 'completed', wait);
    await waitForMessages(conn, 1, (m) => m.json.event === 'stop');
    expect(sim.stream(start.streamSid)!.endReason).toBe('hangup');

    const progress = await sim.waitForCallbacks({ kind: 'call', subject: call.sid }, 4, wait);
    expect(progress.map((c) => c.event)).toEqual(['initiated', 'ringing', 'answered', 'completed']);
    expect(progress.map((c) => c.params.SequenceNumber)).toEqual(['0', '1', '2', '3']);
    expect(progress.map((c) => c.params.CallStatus)).toEqual(['queued', 'ringing', 'in-progress', 'completed']);
    expect(cb.received.filter((r) => r.url === '/progress')).toHaveLength(4);
    // One line per lifecycle event at info level.
    const msgs = logs.filter((l) => l.callSid === call.sid).map((l) => l.msg);
    for (const m of ['call created', 'call answered', 'twiml fetched', 'stream created', 'stream connected', 'stream started', 'stream stopped', 'call ended']) {
      expect(msgs).toContain(m);
    }
    const stopped = logs.find((l) => l.msg === 'stream stopped')!;
    expect((stopped.mediaSent as { inbound: number }).inbound).toBeGreaterThan(0);
  });

  it('<Connect><Stream> holds the call until the server closes the socket, then the next verb runs (<Redirect>)', async () => {
    app.routes.set('/after', '<Response><Hangup/></Response>');
    const call = await sim.createCall({
      twiml: `<Response><Connect><Stream url="${rx.origin}/two"><Parameter name="who" value="bot"/></Stream></Connect><Redirect method="GET">${app.origin}/after</Redirect></Response>`,
    });
    const conn = await rx.connection();
    await waitForMessages(conn, 5, (m) => m.json.event === 'media');
    const stream = sim.streams({ callSid: call.sid })[0]!;
    expect(stream.bidirectional).toBe(true);
    expect(stream.parameters).toEqual({ who: 'bot' });
    // Still inside <Connect>: the next document has not been asked for.
    expect(app.requests).toHaveLength(0);
    conn.socket.close(1000);
    const [after] = await app.requested('/after');
    expect(after!.method).toBe('GET');
    expect(after!.signed).toBe(true);
    const ended = await sim.waitForCallStatus(call.sid, 'completed', wait);
    expect(ended.status).toBe('completed');
    // Closing a two-way stream is how it ends: no error.
    expect(sim.stream(stream.sid)!.error).toBeNull();
    expect(sim.stream(stream.sid)!.endReason).toBe('server-closed');
  });

  it('<Dial><Conference statusCallback statusCallbackEvent>: participants join, the conference ends via the API, each call goes on after <Dial>', async () => {
    const dial = `<Response><Dial><Conference statusCallback="${cb.origin}/conf" statusCallbackEvent="start end join leave">room-1</Conference></Dial><Redirect>${app.origin}/after</Redirect></Response>`;
    app.routes.set('/voice', dial);
    app.routes.set('/after', '<Response><Pause length="30"/><Hangup/></Response>');
    const a = await sim.createCall({ url: `${app.origin}/voice`, audio: { type: 'tone', hz: 440, ms: 60_000 } });
    const b = await sim.createCall({ url: `${app.origin}/voice` });
    const started = await sim.waitForCallbacks({ kind: 'conference', event: 'conference-start' }, 1, wait);
    const confSid = started[0]!.subject;
    expect(sim.conference(confSid)!.friendlyName).toBe('room-1');
    expect(sim.callbacks({ kind: 'conference', event: 'participant-join' }).map((c) => c.params.CallSid).sort()).toEqual([a.sid, b.sid].sort());

    await client().conferences(confSid).update({ status: 'completed' });
    // Both calls leave, the conference ends, and each call runs the verbs after <Dial>.
    await app.requested('/after', 2);
    expect(sim.call(a.sid)!.status).toBe('in-progress');
    await sim.waitForCallStatus(a.sid, 'completed', wait);
    await sim.waitForCallStatus(b.sid, 'completed', wait);
    const events = (await sim.waitForCallbacks({ kind: 'conference', subject: confSid, event: 'conference-end' }, 1, wait)).map((c) => c.params.ReasonConferenceEnded);
    expect(events).toEqual(['conference-ended-via-api']);
    const leaves = sim.callbacks({ kind: 'conference', subject: confSid, event: 'participant-leave' });
    expect(leaves.map((l) => l.params.ReasonParticipantLeft)).toEqual(['conference_ended_via_api', 'conference_ended_via_api']);
    expect(leaves.map((l) => l.params.ParticipantCallStatus)).toEqual(['in-progress', 'in-progress']);
  });

  it('UpdateCall: Url interrupts a <Pause>, Twiml replaces the document, Status=completed hangs up, and an ended call answers 21220', async () => {
    app.routes.set('/wait', '<Response><Pause length="600"/></Response>');
    app.routes.set('/next', `<Response><Start><Stream url="${rx.origin}/late" name="late"/></Start><Pause length="600"/></Response>`);
    const c = client();
    const call = await c.calls.create({ to: '+15005550002', from: '+15005550006', url: `${app.origin}/wait` });
    await app.requested('/wait');
    await c.calls(call.sid).update({ url: `${app.origin}/next`, method: 'POST' });
    const conn = await rx.connection();
    expect(conn.path).toBe('/late');
    await c.calls(call.sid).update({ twiml: '<Response><Stop><Stream name="late"/></Stop><Pause length="600"/></Response>' });
    await waitForMessages(conn, 1, (m) => m.json.event === 'stop');
    expect(sim.call(call.sid)!.status).toBe('in-progress');
    expect(sim.streams({ name: 'late' })[0]!.endReason).toBe('twiml');
    const done = await c.calls(call.sid).update({ status: 'completed' });
    expect(done.status).toBe('completed');
    for (const update of [{ url: `${app.origin}/next` }, { twiml: '<Response/>' }, { status: 'completed' as const }]) {
      await expect(c.calls(call.sid).update(update)).rejects.toMatchObject({ status: 400, code: 21220 });
    }
  });

  it('<Play> plays a fetched file into the call (its outbound track) for the file\'s length; an undecodable one is skipped', async () => {
    const zero = Buffer.alloc(160, 0x00);
    app.routes.set('/half-second.ulaw', { contentType: 'audio/basic', body: Buffer.concat(Array.from({ length: 25 }, () => zero)) });
    app.routes.set('/song.mp3', { contentType: 'audio/mpeg', body: Buffer.from('ID3 not really') });
    const call = await sim.createCall({
      twiml: `<Response><Start><Stream url="${rx.origin}/out" track="outbound_track"/></Start><Pause length="10"/><Play>${app.origin}/song.mp3</Play><Play loop="2">${app.origin}/half-second.ulaw</Play><Hangup/></Response>`,
    });
    const conn = await rx.connection();
    await sim.waitForCallStatus(call.sid, 'completed', wait);
    await waitForMessages(conn, 1, (m) => m.json.event === 'stop');
    // Two loops of 25 frames (the pause lets the stream start first; a frame or two may have
    // gone out before the file was scheduled).
    const played = conn.messages.filter((m) => m.json.media?.payload === zero.toString('base64')).length;
    expect(played).toBeGreaterThanOrEqual(45);
    expect(played).toBeLessThanOrEqual(50);
    expect(logs.find((l) => l.callSid === call.sid && l.code === 13227)).toBeDefined();
  });

  it('documents Twilio cannot run end the call with their code; refused streams are logged and the next verb runs', async () => {
    app.routes.set('/broken', '<Response><Say>unclosed</Response>');
    const broken = await sim.createCall({ url: `${app.origin}/broken` });
    await sim.waitForCallStatus(broken.sid, 'completed', wait);
    expect(logs.find((l) => l.callSid === broken.sid && l.code === 12100)).toBeDefined();

    const missing = await sim.createCall({ url: `${app.origin}/nowhere` });
    await sim.waitForCallStatus(missing.sid, 'completed', wait);
    expect(logs.find((l) => l.callSid === missing.sid && l.code === 11200)).toBeDefined();

    // <Connect> takes only inbound_track (31941); five one-way tracks exceed the four allowed.
    const streams = ['inbound_track', 'both_tracks', 'outbound_track', 'inbound_track'].map((t, i) => `<Stream url="${rx.origin}/s${i}" track="${t}"/>`).join('');
    const call = await sim.createCall({
      twiml: `<Response><Connect><Stream url="${rx.origin}/two" track="both_tracks"/></Connect><Start>${streams}</Start><Pause length="600"/></Response>`,
    });
    await sim.waitUntil(() => logs.find((l) => l.callSid === call.sid && l.code === 31900), wait);
    expect(logs.find((l) => l.callSid === call.sid && l.code === 31941)).toBeDefined();
    const live = sim.streams({ callSid: call.sid, status: 'in-progress' });
    expect(live.map((s) => s.url)).toEqual([`${rx.origin}/s0`, `${rx.origin}/s1`, `${rx.origin}/s2`]);
    expect(live.every((s) => !s.bidirectional)).toBe(true);
  });
});
