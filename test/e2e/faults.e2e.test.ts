/**
 * Reliability under the emulator's fault injection: the production gateway (createAppGateway)
 * streams calls the way Twilio would (admin API → CreateStream, or conference participant-join
 * → CreateStream) while the emulator drops, duplicates, reorders, delays, suppresses silence,
 * cuts sockets and fails REST requests. Every output is checked against what the emulator says
 * it did: recording manifests, WAV samples (an independent G.711 decode), soxi, metrics, and the
 * emulator's request log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, waitFor } from '../helpers/gateway.js';
import { channel, g711All, readWav, soxInfo } from '../sinks/recording/helpers.js';
import type { StreamFaults } from '../../src/emulator/index.js';
import { readManifest, recordingBase, startStack, startStream, toneMulaw, waitForEnd, type Stack } from '../helpers/stack.js';

const FRAME = 160;
/** The emulator's first media.timestamp (its default timestampOffsetMs). */
const T0 = 99;

/** Expected PCM: the decode of `audio` with the listed 1-based frames replaced by silence. */
function expectedPcm(audio: Uint8Array, silentFrames: readonly number[] = []): number[] {
  const pcm = g711All(audio);
  for (const f of silentFrames) pcm.fill(0, (f - 1) * FRAME, f * FRAME);
  return Array.from(pcm);
}

describe('gateway outputs under emulator faults', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ speed: 10 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Streams `audio` (raw mu-law) of a new call with `faults`; resolves once the gateway ended the stream. */
  async function run(audio: Uint8Array, faults: StreamFaults) {
    const call = await stack.sim.createCall({ audio: { type: 'mulaw', data: audio }, streamFaults: faults });
    const streamSid = await startStream(stack, call.sid);
    const reason = await waitForEnd(stack, streamSid);
    const base = recordingBase(stack, call.sid, streamSid);
    const manifest = await readManifest(base);
    const wav = readWav(base + '.wav');
    const simStream = stack.sim.stream(streamSid)!;
    await waitFor(() => stack.summaries.has(streamSid), 2000, 'stream ended log line');
    const summary = stack.summaries.get(streamSid)!;
    return { callSid: call.sid, streamSid, reason, base, manifest, wav, simStream, summary };
  }

  it('dropped frames: framesLost and gaps are exactly the frames the emulator never sent; WAV spans the media clock', async () => {
    const audio = toneMulaw(2000); // 100 frames
    const dropped = [3, 5, 6, 7, 50];
    const lostBefore = await metricValue(stack.http, 'streamgate_media_frames_lost_total');
    const r = await run(audio, { drop: { frames: dropped } });
    expect(r.reason).toBe('stopped');
    // What the emulator did: generated 100 frames, sent 95.
    expect(r.simStream.faults).toEqual({ drop: { frames: dropped } });
    expect(r.simStream.mediaSent.inbound).toBe(100 - dropped.length);
    expect(r.manifest).toMatchObject({
      framesReceived: 95,
      framesLost: dropped.length,
      framesDuplicate: 0,
      framesLate: 0,
      framesDropped: 0,
      closeReason: 'stopped',
      mediaStartMs: T0,
      mediaEndMs: T0 + 2000,
      durationMs: 2000,
    });
    expect(r.manifest.gaps).toEqual([
      { track: 'inbound', startMs: T0 + 40, lengthMs: 20, cause: 'timestamp-gap' },
      { track: 'inbound', startMs: T0 + 80, lengthMs: 60, cause: 'timestamp-gap' },
      { track: 'inbound', startMs: T0 + 980, lengthMs: 20, cause: 'timestamp-gap' },
    ]);
    // Duration = media-clock span; the dropped frames are silence, everything else exact.
    expect(r.wav.dataSize / 2).toBe(((r.manifest.mediaEndMs! - r.manifest.mediaStartMs!) * 8000) / 1000);
    expect(Array.from(channel(r.wav, 0))).toEqual(expectedPcm(audio, dropped));
    // The sequence-number view in the metrics agrees.
    expect((await metricValue(stack.http, 'streamgate_media_frames_lost_total')) - lostBefore).toBe(dropped.length);
    expect(r.summary).toMatchObject({ outcome: 'stopped', frames: 95, lost: dropped.length, duplicate: 0, late: 0 });
  });

  it('duplicated frames: counted as duplicates, audio written once', async () => {
    const audio = toneMulaw(2000);
    const r = await run(audio, { duplicate: { frames: [5, 20, 21] } });
    expect(r.reason).toBe('stopped');
    expect(r.simStream.mediaSent.inbound).toBe(103);
    // The session drops wire duplicates by sequenceNumber before the sinks and hands its count to
    // the recording sink at close, so the manifest accounts for them while the audio is written once.
    expect(r.summary).toMatchObject({ outcome: 'stopped', frames: 100, duplicate: 3, lost: 0, late: 0 });
    expect(r.manifest).toMatchObject({ framesReceived: 100, framesDuplicate: 3, framesLost: 0, framesLate: 0, durationMs: 2000 });
    expect(r.manifest.gaps).toEqual([]);
    expect(Array.from(channel(r.wav, 0))).toEqual(expectedPcm(audio));
  });

  it('reordered and delayed frames: late ones counted and placed where they belong', async () => {
    const audio = toneMulaw(2000);
    const r = await run(audio, { reorder: { frames: [10, 40], by: 3 }, delay: { frames: [60], ms: 150 } });
    expect(r.reason).toBe('stopped');
    expect(r.simStream.mediaSent.inbound).toBe(100);
    expect(r.manifest).toMatchObject({ framesReceived: 100, framesLate: 2, framesLateDropped: 0, framesDuplicate: 0, framesLost: 0, durationMs: 2000 });
    expect(r.summary).toMatchObject({ frames: 100, late: 2, lost: 0, duplicate: 0 });
    expect(r.manifest.gaps).toEqual([]);
    expect(Array.from(channel(r.wav, 0))).toEqual(expectedPcm(audio));
  });

  it('timestamp gaps during suppressed silence: exactly that much silence in the file', async () => {
    // 200 ms tone, 300 ms digital silence (suppressed by the emulator), 200 ms tone.
    const tone = toneMulaw(200);
    const audio = new Uint8Array(tone.length * 2 + 15 * FRAME).fill(0xff);
    audio.set(tone, 0);
    audio.set(tone, tone.length + 15 * FRAME);
    const lostBefore = await metricValue(stack.http, 'streamgate_media_frames_lost_total');
    const r = await run(audio, { silenceGaps: true });
    expect(r.reason).toBe('stopped');
    expect(r.simStream.mediaSent.inbound).toBe(20);
    expect(r.manifest).toMatchObject({ framesReceived: 20, framesLost: 15, mediaStartMs: T0, mediaEndMs: T0 + 700, durationMs: 700 });
    expect(r.manifest.gaps).toEqual([{ track: 'inbound', startMs: T0 + 200, lengthMs: 300, cause: 'timestamp-gap' }]);
    // mu-law 0xFF decodes to 0, so the file equals the decode of what the caller said.
    expect(Array.from(channel(r.wav, 0))).toEqual(expectedPcm(audio));
    // Sequence numbers stayed contiguous: nothing was lost on the wire.
    expect((await metricValue(stack.http, 'streamgate_media_frames_lost_total')) - lostBefore).toBe(0);
    expect(r.summary).toMatchObject({ frames: 20, lost: 0, gapMs: 300 });
  });

  it('abrupt close without stop: stream aborted, WAV complete and valid, outcome counted', async () => {
    const abortedBefore = await metricValue(stack.http, 'streamgate_streams_total', { outcome: 'aborted' });
    const audio = toneMulaw(2000);
    const r = await run(audio, { closeAfterFrames: 30 });
    expect(r.reason).toBe('aborted');
    expect(r.simStream).toMatchObject({ endReason: 'fault', stopSent: false, mediaSent: { inbound: 30, outbound: 0 } });
    expect(r.manifest).toMatchObject({ closeReason: 'aborted', framesReceived: 30, framesLost: 0, durationMs: 600, recovered: false, error: null });
    expect(r.wav.riffSize).toBe(r.wav.size - 8);
    expect(r.wav.dataOffset + r.wav.dataSize).toBe(r.wav.size);
    expect(Array.from(channel(r.wav, 0))).toEqual(expectedPcm(audio.subarray(0, 30 * FRAME)));
    const info = await soxInfo(r.base + '.wav');
    expect(info['Sample Rate']).toBe('8000');
    expect(info['Duration']).toMatch(/^00:00:00\.60 = 4800 samples/);
    expect((await metricValue(stack.http, 'streamgate_streams_total', { outcome: 'aborted' })) - abortedBefore).toBe(1);
    expect(r.summary).toMatchObject({ outcome: 'aborted', frames: 30, lost: 0 });
    stack.sim.hangup(r.callSid);
  });

  it('CreateStream answered 429 once: retried, the stream starts and records', async () => {
    stack.sim.faults.addRestFault({ operation: 'CreateStream', status: 429, next: 1 });
    const audio = toneMulaw(1000);
    const r = await run(audio, {});
    const creates = stack.sim.requests({ operation: 'CreateStream' }).filter((q) => q.path.includes(r.callSid));
    expect(creates.map((q) => q.injected)).toEqual([true, false]);
    expect(creates[0]!.status).toBe(429);
    expect(creates[1]!.status).toBeGreaterThanOrEqual(200);
    expect(creates[1]!.status).toBeLessThan(300);
    expect(stack.started.has(r.streamSid)).toBe(true);
    expect(r.reason).toBe('stopped');
    expect(r.manifest).toMatchObject({ framesReceived: 50, framesLost: 0, durationMs: 1000 });
    expect(Array.from(channel(r.wav, 0))).toEqual(expectedPcm(audio));
    expect(await metricValue(stack.http, 'streamgate_twilio_requests_total', { operation: 'CreateStream', status: '429' })).toBe(1);
  });
});

describe('conference end under REST faults', () => {
  it('a max-duration rule ends the conference through 429 and 500: exactly one successful UpdateConference', async () => {
    const stack = await startStack({ speed: 10, rules: 'rules:\n  - name: short\n    when: { maxDurationSeconds: 1 }\n    action: end-conference\n' });
    try {
      const { sim } = stack;
      // Overlapping `next` faults are all consumed by a request: 429 takes the first, the 500
      // (two left) the second, and the third goes through.
      sim.faults.addRestFault({ operation: 'UpdateConference', status: 429, next: 1 });
      sim.faults.addRestFault({ operation: 'UpdateConference', status: 500, next: 2 });
      const tone = { type: 'tone', hz: 440, ms: 1000 } as const;
      const conf = await sim.createConference({
        friendlyName: 'faults',
        statusCallback: `${stack.http}/twilio/conference-events`,
        statusCallbackEvent: 'start end join leave',
        participants: [
          { label: 'a', audio: tone, loop: true },
          { label: 'b', audio: tone, loop: true },
        ],
      });
      const done = await sim.waitForConferenceStatus(conf.sid, 'completed', { timeoutMs: 15_000 });
      expect(done.reasonConferenceEnded).toBe('conference-ended-via-api');
      await waitFor(async () => (await metricValue(stack.http, 'streamgate_conferences_ended_total', { result: 'completed' })) === 1, 5000, 'conferences_ended_total');
      // Streams of both participants ran and ended with the conference.
      await waitFor(() => stack.ends.size === 2, 5000, 'both streams ended');
      // Twilio's conference-end callback handled: the conference's rules stop here, so a wrong
      // second end (a rule firing again, a retry after the 200) would have been sent before it.
      await waitFor(() => stack.lines.some((l) => l.msg === 'conference ended (Twilio callback); its rules stop' && l.conferenceSid === conf.sid), 10_000, 'the conference-end callback handled');
      const updates = sim.requests({ operation: 'UpdateConference' });
      expect(updates.map((u) => u.status)).toEqual([429, 500, 200]);
      expect(updates.filter((u) => u.status === 200)).toHaveLength(1);
      expect(updates.every((u) => u.params.Status === 'completed' && u.path.includes(conf.sid))).toBe(true);
      expect(await metricValue(stack.http, 'streamgate_conferences_ended_total', { result: 'completed' })).toBe(1);
      expect(await metricValue(stack.http, 'streamgate_conferences_ended_total', { result: 'failed' })).toBe(0);
      expect(sim.streams().filter((s) => s.status === 'stopped')).toHaveLength(2);
    } finally {
      await stack.close();
    }
  });
});
