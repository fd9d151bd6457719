/**
 * A DTMF rule ending a conference, set up the way a user would: participants dial in through
 * TwiML (<Dial><Conference statusCallback=…> pointing at the gateway), the gateway streams each
 * on participant-join, and a moderator's call runs <Connect><Stream> to the gateway's /media
 * with the conference and its stream token as <Parameter>s. Keys pressed on that call reach the gateway as dtmf
 * events (Twilio sends them only on two-way streams); "*#" ends the conference.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createStreamToken, deriveStreamTokenSecret } from '../../src/twilio/stream-token.js';
import { waitFor } from '../helpers/gateway.js';
import { startTwimlApp, type TwimlApp } from '../emulator/helpers/twiml-app.js';
import { startStack, type Stack } from '../helpers/stack.js';

const RULES = 'rules:\n  - name: star-hash\n    when: { dtmf: "*#" }\n';
const WAIT = { timeoutMs: 20_000 };

let stack: Stack | undefined;
let app: TwimlApp | undefined;

afterEach(async () => {
  await stack?.close();
  await app?.close();
  stack = app = undefined;
});

describe('TwiML-driven calls through the gateway', () => {
  it('a dtmf rule ends the conference from a <Connect><Stream> call, and the participants go on after <Dial>', async () => {
    // A loaded test machine must not make the gateway refuse upgrades as overloaded.
    stack = await startStack({ rules: RULES, speed: 10, env: { MAX_EVENT_LOOP_DELAY_MS: '60000' } });
    const { sim } = stack;
    app = await startTwimlApp(sim.authToken);
    const digits: string[] = [];
    stack.gateway.bus.on('dtmf', (_info, digit) => digits.push(digit));
    app.routes.set(
      '/voice',
      `<Response><Dial><Conference statusCallback="${stack.http}/twilio/conference-events" statusCallbackEvent="start end join leave">standup</Conference></Dial></Response>`,
    );
    const alice = await sim.createCall({ url: `${app.origin}/voice`, audio: { type: 'tone', hz: 440, ms: 120_000 } });
    const bob = await sim.createCall({ url: `${app.origin}/voice` });
    const [startCb] = await sim.waitForCallbacks({ kind: 'conference', event: 'conference-start' }, 1, WAIT);
    const confSid = startCb!.subject;
    // The gateway answered participant-join with CreateStream for each participant.
    await sim.waitForRequests({ operation: 'CreateStream', status: 200 }, 2, WAIT);
    await waitFor(() => stack!.started.size >= 2, 20_000, 'the participants streaming');

    // The moderator's call is no participant: its app proves the claim with the stream token it
    // computes from the auth token for this call and conference (README "Trust model").
    const secret = deriveStreamTokenSecret(sim.authToken);
    app.routes.set(
      '/moderator',
      (params) =>
        `<Response><Connect><Stream url="${stack!.http.replace(/^http/, 'ws')}/media"><Parameter name="conferenceSid" value="${confSid}"/>` +
        `<Parameter name="sgToken" value="${createStreamToken(secret, params.CallSid!, confSid)}"/></Stream></Connect></Response>`,
    );
    const mod = await sim.createCall({ url: `${app.origin}/moderator` });
    const modStream = await sim.waitForStream({ callSid: mod.sid, connected: true }, WAIT);
    expect(modStream.bidirectional).toBe(true);
    await waitFor(() => stack!.started.has(modStream.sid), 20_000, 'the gateway to start the moderator stream');

    // "*1" is not the sequence: the conference stays up while the gateway hears both keys.
    sim.pressDigits(mod.sid, '*1');
    await waitFor(() => digits.length === 2, 20_000, 'two dtmf events at the gateway');
    expect(sim.conference(confSid)!.status).toBe('in-progress');
    sim.pressDigits(mod.sid, '*#');

    const ended = await sim.waitForConferenceStatus(confSid, 'completed', WAIT);
    expect(ended.reasonConferenceEnded).toBe('conference-ended-via-api');
    expect(digits).toEqual(['*', '1', '*', '#']);
    const updates = await sim.waitForRequests({ operation: 'UpdateConference' }, 1, WAIT);
    expect(updates).toHaveLength(1);
    expect(updates[0]!.params).toMatchObject({ Status: 'completed' });
    expect(updates[0]!.path).toContain(confSid);
    const fired = (await stack.gateway.metrics.conditionsTriggered.get()).values.filter((v) => v.value > 0).map((v) => v.labels.rule);
    expect(fired).toEqual(['star-hash']);
    // Nothing follows <Dial> in their TwiML: the participants hang up, their streams stop.
    await sim.waitForCallStatus(alice.sid, 'completed', WAIT);
    await sim.waitForCallStatus(bob.sid, 'completed', WAIT);
    expect(sim.streams({ callSid: alice.sid }).every((s) => s.status === 'stopped' && s.stopSent)).toBe(true);
  });
});
