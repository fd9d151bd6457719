import { afterEach, describe, expect, it } from 'vitest';
import { computeSignature } from '../../src/twilio/signature.js';
import { newSid } from '../../src/twilio/sids.js';
import { createStreamToken, deriveStreamTokenSecret } from '../../src/twilio/stream-token.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { metricValue, replay, waitFor, startTwilioStack, type TwilioStack } from '../helpers/gateway.js';
import { connected, media, start, stop, tone, type StreamIds } from '../helpers/messages.js';

const ADMIN = 'admin-token-stream-token';

let gw: TwilioStack | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function setup(required: boolean, sink = collectingSinkFactory()) {
  gw = await startTwilioStack({ ADMIN_TOKEN: ADMIN, STREAM_TOKEN_REQUIRED: String(required) }, [sink]);
  return { gw, sim: gw.sim, sink };
}

/**
 * Plays Twilio: dials the gateway (signed) and streams 5 frames with these custom parameters.
 * A stream expected to be refused is left open, so the close code seen is the gateway's.
 */
async function dial(s: StreamIds, customParameters: Record<string, string>, expectAccepted = false) {
  const frames = 5;
  const msgs = [connected(), start(s, { customParameters })];
  for (let i = 0; i < frames; i++) msgs.push(media(s, i + 2, i + 1, 100 + 20 * i, tone(i)));
  msgs.push(stop(s, frames + 2));
  const signature = computeSignature(gw!.sim.authToken, `${gw!.publicUrl.replace(/^http:/, 'ws:')}/media`);
  return replay(gw!.ws, msgs, { headers: { 'x-twilio-signature': signature }, lingerMs: 3000, closeAfter: expectAccepted });
}

function streamIds(callSid = newSid('call')): StreamIds {
  return { accountSid: gw!.sim.accountSid, callSid, streamSid: newSid('stream') };
}

describe('per-call stream token', () => {
  it('admits the stream the gateway asked for: the parameters sent on CreateStream pass the start check', async () => {
    const { sim, sink } = await setup(true);
    // 100 ms of speech, then the caller hangs up: 5 frames, then `stop`.
    const callSid = (await sim.createCall({ audio: { type: 'tone', hz: 440, ms: 100 } })).sid;
    const conferenceSid = newSid('conference');
    const res = await fetch(`${gw!.http}/v1/calls/${callSid}/streams`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ conferenceSid, parameters: { tenant: 'acme' } }),
    });
    expect(res.status).toBe(201);
    // Twilio echoes ParameterN.Name/Value as start.customParameters (docs/twilio-protocol.md §1):
    // the emulator dials back with them.
    const form = sim.requests({ operation: 'CreateStream' })[0]!.params as Record<string, string>;
    const customParameters: Record<string, string> = {};
    for (let n = 1; form[`Parameter${n}.Name`] !== undefined; n++) customParameters[form[`Parameter${n}.Name`]!] = form[`Parameter${n}.Value`]!;
    expect(Object.keys(customParameters)).toEqual(['sgToken', 'conferenceSid', 'tenant']);

    await waitFor(() => sink.streams[0]?.closed === 'stopped', 10_000, 'the stream to stop');
    expect(sink.streams[0]!.info.streamSid).toBe(sim.streams()[0]!.sid);
    expect(sink.streams[0]!.frames).toHaveLength(5);
    expect(sink.streams[0]!.info.conferenceSid).toBe(conferenceSid);
    expect(await metricValue(gw!.http, 'streamgate_streams_total', { outcome: 'stopped' })).toBe(1);
    expect(await metricValue(gw!.http, 'streamgate_streams_total', { outcome: 'rejected' })).toBe(0);
    // The token never reaches a log line (the session logs its custom parameters' owner, not them).
    expect(gw!.logs.join('')).not.toContain(customParameters.sgToken!);
  });

  it.each([true, false])('closes 1008 token_invalid before any audio reaches a sink for a wrong token (required=%s)', async (required) => {
    const { sink } = await setup(required);
    const s = streamIds();
    const res = await dial(s, { sgToken: 'A'.repeat(32) });
    expect(res).toEqual({ closeCode: 1008, closeReason: 'token_invalid' });
    expect(sink.streams).toHaveLength(0);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'token_invalid' })).toBe(1);
    expect(await metricValue(gw!.http, 'streamgate_streams_total', { outcome: 'rejected' })).toBe(1);
    expect(await metricValue(gw!.http, 'streamgate_media_frames_total', { track: 'inbound' })).toBe(0);
  });

  it.each([
    ['another call', (s: StreamIds, secret: Buffer, conf: string) => ({ sgToken: createStreamToken(secret, newSid('call'), conf), conferenceSid: conf })],
    ['another conference', (s: StreamIds, secret: Buffer) => ({ sgToken: createStreamToken(secret, s.callSid, newSid('conference')), conferenceSid: newSid('conference') })],
    ['the conference parameter removed', (s: StreamIds, secret: Buffer, conf: string) => ({ sgToken: createStreamToken(secret, s.callSid, conf) })],
    ['the conference parameter swapped', (s: StreamIds, secret: Buffer, conf: string) => ({ sgToken: createStreamToken(secret, s.callSid, conf), conferenceSid: newSid('conference') })],
    ['another key', (s: StreamIds, _secret: Buffer, conf: string) => ({ sgToken: createStreamToken(deriveStreamTokenSecret('other-token'), s.callSid, conf), conferenceSid: conf })],
    ['an empty token', () => ({ sgToken: '' })],
  ])('refuses a token made for %s', async (_what, make) => {
    const { sink } = await setup(false);
    const s = streamIds();
    const res = await dial(s, make(s, deriveStreamTokenSecret(gw!.sim.authToken), newSid('conference')));
    expect(res).toEqual({ closeCode: 1008, closeReason: 'token_invalid' });
    expect(sink.streams).toHaveLength(0);
  });

  it('closes 1008 token_missing when STREAM_TOKEN_REQUIRED and the start carries no token', async () => {
    const { sink } = await setup(true);
    const res = await dial(streamIds(), { tenant: 'acme' });
    expect(res).toEqual({ closeCode: 1008, closeReason: 'token_missing' });
    expect(sink.streams).toHaveLength(0);
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'token_missing' })).toBe(1);
    expect(await metricValue(gw!.http, 'streamgate_streams_total', { outcome: 'rejected' })).toBe(1);
  });

  it('admits a stream without a token when tokens are not required (e.g. started by TwiML)', async () => {
    const { sink } = await setup(false);
    const s = streamIds();
    await dial(s, { tenant: 'acme' }, true);
    await waitFor(() => sink.streams[0]?.closed === 'stopped');
    expect(sink.streams[0]!.frames).toHaveLength(5);
    expect(sink.streams[0]!.info.customParameters).toEqual({ tenant: 'acme' });
    expect(await metricValue(gw!.http, 'streamgate_protocol_errors_total', { reason: 'token_missing' })).toBe(0);
  });

  it('admits a correct token computed from the auth token, with and without a conference', async () => {
    const { sink } = await setup(true);
    const secret = deriveStreamTokenSecret(gw!.sim.authToken);
    const a = streamIds();
    const conferenceSid = newSid('conference');
    await dial(a, { sgToken: createStreamToken(secret, a.callSid, conferenceSid), conferenceSid }, true);
    const b = streamIds();
    await dial(b, { sgToken: createStreamToken(secret, b.callSid) }, true);
    await waitFor(() => sink.streams.length === 2 && sink.streams.every((c) => c.closed === 'stopped'));
    expect(sink.streams.map((c) => c.frames.length)).toEqual([5, 5]);
    expect(sink.streams.map((c) => c.info.conferenceSid)).toEqual([conferenceSid, null]);
  });
});
