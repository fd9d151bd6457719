/**
 * Walks every (state, event) pair of the session state table (src/gateway/media/stream-state.ts)
 * against a real StreamSession: brought into the state by real messages, given the event as
 * Twilio or the gateway would deliver it, it must end where the table says, refuse with the
 * table's reason, or do nothing at all.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/events.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { CLOSE, StreamSession } from '../../src/gateway/media/stream-session.js';
import { IGNORED, SESSION_EVENT, STATE, TRANSITIONS, type SessionEvent, type SessionState } from '../../src/gateway/media/stream-state.js';
import { connected, ids, media, start, stop, tone } from '../helpers/messages.js';

const STATES = Object.entries(STATE) as [string, SessionState][];
const EVENTS = Object.entries(SESSION_EVENT) as [string, SessionEvent][];

function harness() {
  const closes: { code: number; reason: string }[] = [];
  const log = pino({ level: 'silent' });
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const bus = new EventBus(log);
  const seen = { dtmf: 0, frames: 0 };
  bus.on('dtmf', () => seen.dtmf++);
  const session = new StreamSession({
    log,
    metrics,
    bus,
    sinkFactories: [{ name: 'count', open: () => ({ name: 'count', accept: () => void seen.frames++, close: async () => undefined }) }],
    maxFrameBytes: 1024,
    checkStart: null,
    closeSocket: (code, reason) => closes.push({ code, reason }),
    onStarted: () => undefined,
    onStopped: () => undefined,
    onEnded: () => undefined,
  });
  const s = ids();
  let seq = 1;
  const send = (text: string) => session.onText(text, performance.now());
  const other = ids();
  return {
    session,
    metrics,
    closes,
    seen,
    /** Brings the fresh session into `state` with real messages. */
    reach(state: SessionState) {
      if (state === STATE.OPEN) return;
      send(connected());
      if (state === STATE.CONNECTED) return;
      send(start(s, { seq: seq++ }));
      if (state === STATE.STARTED) return;
      send(stop(s, seq++));
    },
    /** Delivers `event` the way it reaches a session in production. */
    deliver(event: SessionEvent): Promise<void> | void {
      switch (event) {
        case SESSION_EVENT.CONNECTED:
          return send(connected());
        case SESSION_EVENT.START:
          return send(start(s, { seq: seq++ }));
        case SESSION_EVENT.MEDIA:
          return send(media(s, seq++, 1, 0, tone(160)));
        case SESSION_EVENT.DTMF:
          return send(JSON.stringify({ event: 'dtmf', streamSid: s.streamSid, sequenceNumber: String(seq++), dtmf: { track: 'inbound_track', digit: '5' } }));
        case SESSION_EVENT.MARK:
          return send(JSON.stringify({ event: 'mark', streamSid: s.streamSid, sequenceNumber: String(seq++), mark: { name: 'm' } }));
        case SESSION_EVENT.STOP:
          return send(stop(s, seq++));
        case SESSION_EVENT.FOREIGN_STREAM:
          return send(media(other, seq++, 1, 0, tone(160)));
        case SESSION_EVENT.UNKNOWN:
          return send(JSON.stringify({ event: 'no-such-event', streamSid: s.streamSid, sequenceNumber: String(seq++) }));
        case SESSION_EVENT.ERROR:
          return session.fail('test_error', CLOSE.PROTOCOL_ERROR);
        case SESSION_EVENT.SOCKET_CLOSED:
          return session.onSocketClose(1006);
        case SESSION_EVENT.STALLED:
          return session.stall();
        case SESSION_EVENT.SHUTDOWN:
          return session.shutdown();
      }
    },
  };
}

async function protocolErrors(metrics: GatewayMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.protocolErrors.get()).values) out[String(v.labels.reason)] = v.value;
  return out;
}

describe('the session state table', () => {
  it('has an outcome for every (state, event) pair', () => {
    for (const [, state] of STATES) for (const [name, event] of EVENTS) expect(TRANSITIONS[state]?.[event], `${state} × ${name}`).toBeDefined();
  });

  it('never consults FOREIGN_STREAM before start, and marks those cells so', () => {
    expect(TRANSITIONS[STATE.OPEN]![SESSION_EVENT.FOREIGN_STREAM]).toBe(IGNORED);
    expect(TRANSITIONS[STATE.CONNECTED]![SESSION_EVENT.FOREIGN_STREAM]).toBe(IGNORED);
  });

  it('has CLOSED ignore everything (a stream ends once)', () => {
    for (const [, event] of EVENTS) expect(TRANSITIONS[STATE.CLOSED]![event]).toBe(IGNORED);
  });

  for (const [stateName, state] of STATES) {
    for (const [eventName, event] of EVENTS) {
      // Before `start` there is no streamSid to differ from: a message of another stream is
      // judged by its kind, so its cell is never consulted (stream-state.ts SESSION_EVENT).
      const unclassified = event === SESSION_EVENT.FOREIGN_STREAM && state < STATE.STARTED;
      const outcome = unclassified ? TRANSITIONS[state]![SESSION_EVENT.MEDIA]! : TRANSITIONS[state]![event]!;
      const says = typeof outcome === 'number' ? `→ ${STATES.find(([, s]) => s === outcome)![0]}` : outcome === IGNORED ? 'ignored' : `refused (${outcome.reason})`;
      it(`${stateName} × ${eventName}: ${says}`, async () => {
        const h = harness();
        h.reach(state);
        expect(h.session.state).toBe(state);
        const closesBefore = h.closes.length;
        const errorsBefore = await protocolErrors(h.metrics);
        const seenBefore = { ...h.seen };
        await h.deliver(event);
        const errors = await protocolErrors(h.metrics);
        if (typeof outcome === 'number') {
          expect(h.session.state).toBe(outcome);
          if (event === SESSION_EVENT.MEDIA) expect(h.seen.frames).toBe(seenBefore.frames + 1);
          if (event === SESSION_EVENT.DTMF) expect(h.seen.dtmf).toBe(seenBefore.dtmf + 1);
          if (outcome === STATE.CLOSED) {
            expect(h.session.ending).not.toBeNull();
            await h.session.ending;
          }
        } else if (outcome === IGNORED) {
          expect(h.session.state).toBe(state);
          // Shutdown closes the socket (1001) whatever the state: a closed session may still hold one.
          expect(h.closes.slice(closesBefore)).toEqual(event === SESSION_EVENT.SHUTDOWN && state === STATE.CLOSED ? [{ code: CLOSE.GOING_AWAY, reason: 'shutdown' }] : []);
          expect(h.seen).toEqual(seenBefore);
          // message_after_stop is the one count an ignored message may leave (a stopped stream).
          const { message_after_stop: _after, ...rest } = errors;
          const { message_after_stop: _before, ...restBefore } = errorsBefore;
          expect(rest).toEqual(restBefore);
        } else {
          expect(h.session.state).toBe(STATE.CLOSED);
          expect(h.session.closeReason).toBe('protocol-error');
          expect(h.closes.slice(closesBefore)).toEqual([{ code: CLOSE.PROTOCOL_ERROR, reason: outcome.reason }]);
          expect(errors[outcome.reason]).toBe((errorsBefore[outcome.reason] ?? 0) + 1);
          expect(h.seen).toEqual(seenBefore);
        }
      });
    }
  }

  it('ends a stopped stream as stopped and counts what Twilio sends after it', async () => {
    const h = harness();
    h.reach(STATE.CLOSED);
    expect(h.session.closeReason).toBe('stopped');
    h.deliver(SESSION_EVENT.MEDIA);
    expect((await protocolErrors(h.metrics)).message_after_stop).toBe(1);
  });
});
