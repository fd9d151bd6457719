/**
 * The real Twilio capture, played by the emulator as a call's audio and streamed into the
 * production gateway the way Twilio would (admin API → CreateStream → signed wss upgrade): what
 * the gateway keeps is exactly what the real call sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLines, decodePayloads, HELLO_WORLD } from '../helpers/capture.js';
import { waitFor } from '../helpers/gateway.js';
import { channel, readWav, soxInfo } from '../sinks/recording/helpers.js';
import { readManifest, recordingBase, startStack, startStream, waitForEnd, type Stack } from '../helpers/stack.js';

describe('hello-world capture: emulator → gateway', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ speed: 10 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("records the call's 363 frames sample-exact, on the capture's media clock, with nothing lost", async () => {
    const lines = captureLines();
    const media = lines.map((l) => JSON.parse(l) as { event: string; media?: { timestamp: string } }).filter((m) => m.event === 'media');
    const call = await stack.sim.createCall({ audio: HELLO_WORLD });
    const streamSid = await startStream(stack, call.sid);
    expect(await waitForEnd(stack, streamSid, 15_000)).toBe('stopped');

    const base = recordingBase(stack, call.sid, streamSid);
    const manifest = await readManifest(base);
    expect(manifest).toMatchObject({
      accountSid: stack.sim.accountSid,
      callSid: call.sid,
      streamSid,
      tracks: ['inbound'],
      framesReceived: 363,
      framesLost: 0,
      framesDuplicate: 0,
      framesLate: 0,
      framesDropped: 0,
      gaps: [],
      mediaStartMs: Number(media[0]!.media!.timestamp),
      durationMs: 363 * 20,
    });
    // The samples are an independent G.711 decode of the capture's payloads, in order.
    expect(Array.from(channel(readWav(base + '.wav'), 0))).toEqual(Array.from(decodePayloads(lines)));
    expect((await soxInfo(base + '.wav')).Duration).toMatch(/= 58080 samples/);
    // The session's own wire accounting agrees.
    await waitFor(() => stack.summaries.has(streamSid), 2000, 'stream ended log line');
    expect(stack.summaries.get(streamSid)).toMatchObject({ outcome: 'stopped', frames: 363, lost: 0, duplicate: 0, late: 0, bytes: 363 * 160 });
  });
});
