/**
 * Token and account binding (issue 13, finding 5). The upgrade signature covers only the URL,
 * so anyone who saw one signed upgrade and one `start` can dial again; the per-call token must
 * then admit only the stream the gateway asked for, once, and only for our account.
 * The emulator plays Twilio's REST API (its CreateStream answers the MZ SID); the test plays
 * the Media Streams side itself, so it can send what an attacker would.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Sim } from '../../src/emulator/index.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { newSid } from '../../src/twilio/sids.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { metricValue, replay, startTwilioStack, waitFor, type TwilioStack } from '../helpers/gateway.js';
import { connected, media, start, stop, tone, type StreamIds } from '../helpers/messages.js';

const PUBLIC = 'https://gw.example.com';
const ADMIN = 'admin-token-stream-binding';
const ACCOUNT = newSid('account');
const AUTH = 'binding-auth-token-0123456789ab';

let gw: TwilioStack | undefined;
let sim: Sim | undefined;
afterEach(async () => {
  await gw?.close();
  gw = sim = undefined;
});

// Load shedding is not this file's subject: a busy test machine must not turn an upgrade into a 503.
async function setup(sink = collectingSinkFactory()) {
  gw = await startTwilioStack({ PUBLIC_URL: PUBLIC, ADMIN_TOKEN: ADMIN, STREAM_TOKEN_REQUIRED: 'true', MAX_EVENT_LOOP_DELAY_MS: '60000' }, [sink], {
    sim: { accountSid: ACCOUNT, authToken: AUTH },
  });
  sim = gw.sim;
  return { sink };
}

/** Asks the gateway to stream `callSid`; returns the MZ SID and the custom parameters Twilio would echo. */
async function createStream(callSid: string, body: Record<string, unknown> = {}): Promise<{ streamSid: string; parameters: Record<string, string> }> {
  const res = await fetch(`${gw!.http}/v1/calls/${callSid}/streams`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
  const { streamSid } = (await res.json()) as { streamSid: string };
  return { streamSid, parameters: sim!.stream(streamSid)!.parameters };
}

/** Dials /media as Twilio would (signed), with this start; a refused one is left for the gateway to close. */
function dial(s: StreamIds, customParameters: Record<string, string>, accepted: boolean) {
  const msgs = [connected(), start(s, { customParameters }), media(s, 2, 1, 0, tone(1)), stop(s, 3)];
  return replay(gw!.ws, msgs, { headers: { 'x-twilio-signature': computeSignature(AUTH, `wss://gw.example.com/media`) }, closeAfter: accepted, lingerMs: 3000 });
}

describe('stream token binding', () => {
  it('admits the stream the gateway created once; the same token for a new streamSid is refused (1008 token_reused)', async () => {
    const { sink } = await setup();
    const call = await sim!.createCall();
    const { streamSid, parameters } = await createStream(call.sid);
    await dial({ accountSid: ACCOUNT, callSid: call.sid, streamSid }, parameters, true);
    await waitFor(() => sink.streams[0]?.closed === 'stopped', 10_000, 'the created stream');
    // The attack: the same call's token, new streamSids.
    for (let i = 0; i < 3; i++) {
      const res = await dial({ accountSid: ACCOUNT, callSid: call.sid, streamSid: newSid('stream') }, parameters, false);
      expect(res).toEqual({ closeCode: 1008, closeReason: 'token_reused' });
    }
    expect(sink.streams).toHaveLength(1);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'token_reused' })).toBe(3);
  });

  it('while a created stream is pending, its token admits only that MZ SID (token_stream_mismatch), then that one', async () => {
    const { sink } = await setup();
    const call = await sim!.createCall();
    const conferenceSid = newSid('conference');
    const { streamSid, parameters } = await createStream(call.sid, { conferenceSid });
    const intruder = await dial({ accountSid: ACCOUNT, callSid: call.sid, streamSid: newSid('stream') }, parameters, false);
    expect(intruder).toEqual({ closeCode: 1008, closeReason: 'token_stream_mismatch' });
    await dial({ accountSid: ACCOUNT, callSid: call.sid, streamSid }, parameters, true);
    await waitFor(() => sink.streams[0]?.closed === 'stopped', 10_000, 'the created stream');
    expect(sink.streams.map((c) => c.info.streamSid)).toEqual([streamSid]);
    // A second CreateStream on the same call and conference gets its own admission.
    const again = await createStream(call.sid, { conferenceSid });
    expect(again.parameters.sgToken).toBe(parameters.sgToken);
    await dial({ accountSid: ACCOUNT, callSid: call.sid, streamSid: again.streamSid }, again.parameters, true);
    await waitFor(() => sink.streams[1]?.closed === 'stopped', 10_000, 'the second created stream');
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'token_stream_mismatch' })).toBe(1);
  });

  it('refuses a start for another account (1008 account_mismatch) before anything is recorded', async () => {
    const { sink } = await setup();
    const call = await sim!.createCall();
    const { streamSid, parameters } = await createStream(call.sid);
    const foreign = await dial({ accountSid: newSid('account'), callSid: call.sid, streamSid }, parameters, false);
    expect(foreign).toEqual({ closeCode: 1008, closeReason: 'account_mismatch' });
    // The genuine stream is still admitted afterwards: the refusal used nothing up.
    await dial({ accountSid: ACCOUNT, callSid: call.sid, streamSid }, parameters, true);
    await waitFor(() => sink.streams[0]?.closed === 'stopped', 10_000, 'the created stream');
    expect(sink.streams.map((c) => c.info.accountSid)).toEqual([ACCOUNT]);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'account_mismatch' })).toBe(1);
    expect(await metricValue(gw!.http, 'streamgate_streams_total', { outcome: 'rejected' })).toBe(1);
  });
});
