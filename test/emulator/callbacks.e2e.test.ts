import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateSignature } from '../../src/twilio/signature.js';
import type { Sim } from '../../src/emulator/index.js';
import { closeSimBench, startSimBench } from './helpers/fixture.js';
import type { CallbackReceiver, ReceivedCallback, StreamReceiver } from './helpers/receivers.js';
import { restCaller } from './helpers/rest.js';
import { createStream, waitForMessages } from './helpers/streams.js';
import { waitFor } from '../helpers/wait.js';

/** Conference callback Timestamp: RFC 2822, the day not padded. */
const CALLBACK_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [1-9]\d? [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/;
/** Stream callback Timestamp: ISO 8601 UTC with nine fraction digits. */
const ISO_NANOS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/;

async function received(cb: CallbackReceiver, n: number, timeoutMs = 5000): Promise<ReceivedCallback[]> {
  await waitFor(() => cb.received.length >= n, timeoutMs, () => `${n} callbacks (have ${cb.received.length})`);
  return cb.received;
}

/** Checks X-Twilio-Signature of a received callback against the URL it was sent to. */
function signed(sim: Sim, cb: CallbackReceiver, r: ReceivedCallback): boolean {
  const sig = r.headers['x-twilio-signature'] as string;
  const url = cb.origin + r.url;
  return r.method === 'GET' ? validateSignature(sim.authToken, sig, url, {}) : validateSignature(sim.authToken, sig, url, r.params);
}

describe('callbacks', () => {
  let sim: Sim;
  let rx: StreamReceiver;
  let cb: CallbackReceiver;

  beforeEach(async () => ({ sim, rx, cb } = await startSimBench(10)));
  afterEach(() => closeSimBench({ sim, rx, cb }));

  it('posts signed stream-started and stream-stopped with the documented fields', async () => {
    const call = await sim.createCall();
    const r = await createStream(sim, call.sid, { Url: `${rx.origin}/media`, StatusCallback: `${cb.origin}/twilio/stream-status?x=1` });
    const sid = r.body.sid as string;
    await rx.connection();
    await received(cb, 1);
    sim.hangup(call.sid);
    const [started, stopped] = await received(cb, 2);
    for (const c of [started!, stopped!]) {
      expect(c.method).toBe('POST');
      expect(c.url).toBe('/twilio/stream-status?x=1');
      expect(c.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(signed(sim, cb, c)).toBe(true);
      expect(c.params.Timestamp).toMatch(ISO_NANOS);
    }
    const common = { AccountSid: sim.accountSid, CallSid: call.sid, StreamSid: sid, StreamName: sid };
    expect(started!.params).toEqual({ ...common, StreamEvent: 'stream-started', Timestamp: started!.params.Timestamp });
    expect(stopped!.params).toEqual({ ...common, StreamEvent: 'stream-stopped', Timestamp: stopped!.params.Timestamp });
    await sim.callbacksIdle();
    const log = sim.callbacks({ subject: sid });
    expect(log.map((e) => [e.event, e.status])).toEqual([
      ['stream-started', 200],
      ['stream-stopped', 200],
    ]);
  });

  it('uses the stream Name as StreamName and GET with a signed query when asked', async () => {
    const call = await sim.createCall();
    await createStream(sim, call.sid, { Url: `${rx.origin}/media`, Name: 'rec 1', StatusCallback: `${cb.origin}/status`, StatusCallbackMethod: 'GET' });
    const [started] = await received(cb, 1);
    expect(started!.method).toBe('GET');
    expect(started!.url.startsWith('/status?')).toBe(true);
    expect(started!.params.StreamName).toBe('rec 1');
    expect(signed(sim, cb, started!)).toBe(true);
  });

  it('sends stream-error with StreamError when the gateway cannot be reached', async () => {
    const call = await sim.createCall();
    await createStream(sim, call.sid, { Url: 'ws://127.0.0.1:1/media', StatusCallback: `${cb.origin}/status` });
    const [err] = await received(cb, 1);
    expect(err!.params.StreamEvent).toBe('stream-error');
    expect(err!.params.StreamError).toMatch(/Connection Refused/);
    expect(signed(sim, cb, err!)).toBe(true);
  });

  it('posts conference events in SequenceNumber order, signed, with participant fields', async () => {
    const conf = await sim.createConference({
      friendlyName: 'room-1',
      statusCallback: `${cb.origin}/twilio/conference-events`,
      statusCallbackEvent: 'start end join leave',
      participants: [{ label: 'agent', endConferenceOnExit: false }, { muted: true }],
    });
    const [a, b] = conf.participants;
    await received(cb, 3);
    const rest = restCaller(sim.url, sim.accountSid, sim.authToken);
    await rest.post(`/2010-04-01/Accounts/${sim.accountSid}/Conferences/${conf.sid}.json`, { Status: 'completed' });
    const all = await received(cb, 6);
    expect(all.map((c) => c.params.StatusCallbackEvent)).toEqual([
      'participant-join',
      'participant-join',
      'conference-start',
      'participant-leave',
      'participant-leave',
      'conference-end',
    ]);
    expect(all.map((c) => c.params.SequenceNumber)).toEqual(['1', '2', '3', '4', '5', '6']);
    for (const c of all) {
      expect(signed(sim, cb, c)).toBe(true);
      expect(c.params).toMatchObject({ ConferenceSid: conf.sid, FriendlyName: 'room-1', AccountSid: sim.accountSid });
      expect(c.params.Timestamp).toMatch(CALLBACK_DATE);
    }
    expect(all[0]!.params).toEqual({
      AccountSid: sim.accountSid,
      ConferenceSid: conf.sid,
      FriendlyName: 'room-1',
      SequenceNumber: '1',
      Timestamp: all[0]!.params.Timestamp,
      StatusCallbackEvent: 'participant-join',
      CallSid: a!.callSid,
      Muted: 'false',
      Hold: 'false',
      Coaching: 'false',
      EndConferenceOnExit: 'false',
      StartConferenceOnEnter: 'true',
      ParticipantLabel: 'agent',
    });
    expect(all[1]!.params).toMatchObject({ CallSid: b!.callSid, Muted: 'true' });
    expect(all[2]!.params.CallSid).toBeUndefined();
    expect(all[3]!.params).toMatchObject({ ReasonParticipantLeft: 'conference_ended_via_api', ParticipantCallStatus: 'completed' });
    expect(all[5]!.params).toMatchObject({ ReasonConferenceEnded: 'conference-ended-via-api', Reason: 'Conference ended via API' });
    expect(all[5]!.params.CallSidEndingConference).toBeUndefined();
    expect(sim.conference(conf.sid)).toMatchObject({ status: 'completed', reasonConferenceEnded: 'conference-ended-via-api' });
  });

  it('ends the conference when an endConferenceOnExit participant leaves', async () => {
    const conf = await sim.createConference({
      statusCallback: `${cb.origin}/conf`,
      statusCallbackEvent: ['start', 'end', 'join', 'leave'],
      participants: [{ endConferenceOnExit: true, label: 'host' }, {}, {}],
    });
    const [host, p1, p2] = conf.participants;
    await received(cb, 4);
    sim.hangup(host!.callSid);
    const all = await received(cb, 8);
    const tail = all.slice(4).map((c) => [c.params.StatusCallbackEvent, c.params.CallSid, c.params.ReasonParticipantLeft]);
    expect(tail).toEqual([
      ['participant-leave', host!.callSid, 'participant_hung_up'],
      ['participant-leave', p1!.callSid, 'moderator_ended_conference'],
      ['participant-leave', p2!.callSid, 'moderator_ended_conference'],
      ['conference-end', undefined, undefined],
    ]);
    expect(all[7]!.params).toMatchObject({
      ReasonConferenceEnded: 'participant-with-end-conference-on-exit-left',
      CallSidEndingConference: host!.callSid,
      ParticipantLabelEndingConference: 'host',
    });
    expect(sim.call(p1!.callSid)!.status).toBe('completed');
  });

  it('ends the conference when the last participant leaves, and sends only subscribed events', async () => {
    const conf = await sim.createConference({
      statusCallback: `${cb.origin}/conf`,
      statusCallbackEvent: 'start end',
      participants: [
        { audio: { type: 'silence', ms: 100 }, audioStartsAt: 'create' },
        { audio: { type: 'silence', ms: 300 }, audioStartsAt: 'create' },
      ],
    });
    // Nobody streams these calls: their audio starts at creation and they end on the paced end-of-audio timer.
    const ended = await sim.waitForConferenceStatus(conf.sid, 'completed');
    expect(ended.reasonConferenceEnded).toBe('last-participant-left');
    expect(ended.callSidEndingConference).toBe(conf.participants[1]!.callSid);
    const all = await received(cb, 2);
    await sim.callbacksIdle();
    expect(cb.received.map((c) => c.params.StatusCallbackEvent)).toEqual(['conference-start', 'conference-end']);
    expect(all.map((c) => c.params.SequenceNumber)).toEqual(['1', '2']);
    expect(all[1]!.params.ReasonConferenceEnded).toBe('last-participant-left');
  });

  it('stops participant streams before it reports the conference end', async () => {
    const conf = await sim.createConference({ statusCallback: `${cb.origin}/conf`, statusCallbackEvent: 'end leave', participants: [{}, {}] });
    await createStream(sim, conf.participants[0]!.callSid, { Url: `${rx.origin}/media`, StatusCallback: `${cb.origin}/stream` });
    const conn = await rx.connection();
    await waitForMessages(conn, 2, (m) => m.json.event === 'media');
    sim.endConference(conf.sid);
    await conn.closed;
    expect(conn.messages.at(-1)!.json.event).toBe('stop');
    await sim.callbacksIdle();
    const events = sim.callbacks().map((c) => c.event);
    expect(events).toContain('stream-stopped');
    expect(events.indexOf('stream-stopped')).toBeLessThan(events.indexOf('conference-end'));
  });

  it('logs a callback the receiver fails, without retrying', async () => {
    cb.status = 500;
    const call = await sim.createCall();
    await createStream(sim, call.sid, { Url: `${rx.origin}/media`, StatusCallback: `${cb.origin}/status` });
    const [entry] = await sim.waitForCallbacks({ event: 'stream-started' });
    expect(entry!.status).toBe(500);
    // The positive signal: the stream's next callback arrives; a retry would have come before it.
    sim.hangup(call.sid);
    await sim.waitForCallbacks({ event: 'stream-stopped' });
    expect(cb.received.map((r) => r.params.StreamEvent)).toEqual(['stream-started', 'stream-stopped']);
    expect(sim.callbacks({ event: 'stream-started' })).toHaveLength(1);
  });
});
