/**
 * Conference membership (issue 13, finding 6): with TWILIO_AUTH_TOKEN set, a stream may drive
 * a conference's rules only as a verified member. The production gateway with a DTMF rule and
 * the emulator's conference (its signed callbacks reaching the gateway, AUTO_STREAM_TRACK=off so
 * the gateway creates no streams itself); the test dials /media as the streams would.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { computeSignature } from '../../src/twilio/signature.js';
import { newSid } from '../../src/twilio/sids.js';
import { metricValue, replay, waitFor } from '../helpers/gateway.js';
import { connected, start, stop, type StreamIds } from '../helpers/messages.js';
import { startStack, type Stack } from '../helpers/stack.js';

const RULES = 'rules:\n  - name: star-hash\n    when: { dtmf: "*#" }\n';
const WAIT = { timeoutMs: 20_000 };

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const dtmf = (s: StreamIds, seq: number, digit: string) => JSON.stringify({ event: 'dtmf', sequenceNumber: String(seq), streamSid: s.streamSid, dtmf: { track: 'inbound_track', digit } });

/** A signed stream naming `conferenceSid` that presses *# and stops; resolves when the gateway has ended it. */
async function pressStarHash(st: Stack, s: StreamIds, conferenceSid: string): Promise<void> {
  const url = st.http.replace(/^http/, 'ws') + '/media';
  const msgs = [connected(), start(s, { customParameters: { conferenceSid } }), dtmf(s, 2, '*'), dtmf(s, 3, '#'), stop(s, 4)];
  await replay(url, msgs, { headers: { 'x-twilio-signature': computeSignature(st.sim.authToken, url) }, closeAfter: true });
  await waitFor(() => st.ends.has(s.streamSid), 10_000, 'the stream to end');
}

describe('conference trust (TWILIO_AUTH_TOKEN set)', () => {
  it("a stream of a call that is not in the conference is recorded but cannot end it; a participant's own stream can", async () => {
    stack = await startStack({ rules: RULES, env: { AUTO_STREAM_TRACK: 'off', MAX_EVENT_LOOP_DELAY_MS: '60000' } });
    const { sim } = stack;
    const tone = { type: 'tone', hz: 440, ms: 120_000 } as const;
    const conf = await sim.createConference({
      statusCallback: `${stack.http}/twilio/conference-events`,
      statusCallbackEvent: 'start end join leave',
      participants: [{ audio: tone }, { audio: tone }],
    });
    await sim.waitForCallbacks({ kind: 'conference', event: 'participant-join' }, 2, WAIT);
    await sim.callbacksIdle();
    const accountSid = sim.accountSid;

    // The intruder: a signed upgrade (the signature covers only the URL), a call of its own.
    const intruder = { accountSid, callSid: newSid('call'), streamSid: newSid('stream') };
    await pressStarHash(stack, intruder, conf.sid);
    expect(stack.ends.get(intruder.streamSid)).toBe('stopped');
    // Its *# is judged in its own scope (a lone stream), never as the conference's.
    expect(stack.lines.some((l) => l.msg === 'conditions decision' && l.conferenceSid === conf.sid)).toBe(false);
    expect(sim.requests({ operation: 'UpdateConference' })).toHaveLength(0);
    expect(stack.lines.some((l) => l.msg === 'stream is not a verified member of the conference it names; kept out of its rules' && l.claimedConferenceSid === conf.sid)).toBe(true);
    expect(sim.conference(conf.sid)!.status).toBe('in-progress');
    expect(await metricValue(stack.http, 'streamgate_unverified_streams_total')).toBe(1);

    // A participant's own stream (the user's <Start><Stream>, no token) is a verified member.
    const member = { accountSid, callSid: conf.participants[0]!.callSid, streamSid: newSid('stream') };
    await pressStarHash(stack, member, conf.sid);
    await sim.waitForConferenceStatus(conf.sid, 'completed', WAIT);
    expect(sim.requests({ operation: 'UpdateConference' })).toHaveLength(1);
    expect(await metricValue(stack.http, 'streamgate_unverified_streams_total')).toBe(1);
  });
});
