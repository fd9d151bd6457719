import { afterEach, describe, expect, it } from 'vitest';
import { transcriptsSse } from '../../src/gateway/control/transcripts-sse.js';
import type { TranscriptEvent } from '../../src/core/transcript.js';
import { newSid } from '../../src/twilio/sids.js';
import { startTwilioGateway, type TwilioTestGateway } from '../helpers/gateway.js';

let gw: TwilioTestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

function transcript(callSid: string, text: string, isFinal = true): TranscriptEvent {
  return { accountSid: newSid('account'), callSid, streamSid: newSid('stream'), conferenceSid: null, track: 'inbound', text, isFinal, words: [], startMs: 100, endMs: 900 };
}

/** Reads SSE `data:` payloads from a fetch body until `count` arrive. */
async function readEvents(body: ReadableStream<Uint8Array>, count: number): Promise<TranscriptEvent[]> {
  const reader = body.getReader();
  const out: TranscriptEvent[] = [];
  let buf = '';
  while (out.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += Buffer.from(value).toString();
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (data) out.push(JSON.parse(data.slice(6)));
    }
  }
  await reader.cancel();
  return out;
}

describe('GET /v1/transcripts', () => {
  it('streams final transcripts as SSE, filtered by callSid, behind the admin token', async () => {
    gw = await startTwilioGateway({ ADMIN_TOKEN: 'sse-admin-token' }, [], { adminExtensions: [transcriptsSse] });
    const callSid = newSid('call');
    expect((await fetch(`${gw.http}/v1/transcripts`)).status).toBe(401);
    expect((await fetch(`${gw.http}/v1/transcripts?callSid=CA123`, { headers: { authorization: 'Bearer sse-admin-token' } })).status).toBe(400);
    const res = await fetch(`${gw.http}/v1/transcripts?callSid=${callSid}`, { headers: { authorization: 'Bearer sse-admin-token' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    // The handler that sent these headers subscribed to the bus in the same turn: no wait needed.
    const events = readEvents(res.body!, 2);
    gw.gw.bus.emit('transcript', transcript(newSid('call'), 'other call'));
    gw.gw.bus.emit('transcript', transcript(callSid, 'partial words', false));
    gw.gw.bus.emit('transcript', transcript(callSid, 'hello there'));
    gw.gw.bus.emit('transcript', transcript(callSid, 'goodbye now'));
    const got = await events;
    expect(got.map((e) => e.text)).toEqual(['hello there', 'goodbye now']);
    expect(got[0]).toMatchObject({ callSid, track: 'inbound', startMs: 100, endMs: 900 });
  });
});
