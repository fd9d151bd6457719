/**
 * The conditions engine end to end: a real gateway (level sink on), streams over real
 * WebSockets, and the Twilio emulator answering UpdateConference / UpdateStream over HTTP.
 * Transcripts and spotted phrases are emitted on the gateway's bus, as the speech engine does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TranscriptEvent } from '../../src/core/transcript.js';
import { newSid } from '../../src/twilio/sids.js';
import { metricValue, waitFor } from '../helpers/gateway.js';
import { LOUD, QUIET, TestStream, progressReached, startHarness, type Harness } from './helpers.js';

let h: Harness | undefined;
const streams: TestStream[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  await h?.close();
  h = undefined;
});

async function open(conferenceSid: string | null, tracks?: ('inbound' | 'outbound')[]): Promise<TestStream> {
  const s = await TestStream.open(h!.tg.ws, { conferenceSid: conferenceSid ?? undefined, tracks });
  streams.push(s);
  // One frame, so the stream has started at the gateway before the test goes on.
  const started = progressReached(h!.tg.gw.bus, s.streamSid, 20);
  s.send(QUIET, 20);
  await started;
  return s;
}

function transcript(s: TestStream, conferenceSid: string | null, text: string, opts: Partial<TranscriptEvent> = {}): TranscriptEvent {
  return {
    accountSid: s.ids.accountSid,
    callSid: s.ids.callSid,
    streamSid: s.streamSid,
    conferenceSid,
    track: 'inbound',
    text,
    isFinal: true,
    words: [],
    startMs: 400,
    endMs: 1900,
    ...opts,
  };
}

const metric = (name: string, labels: Record<string, string>) => metricValue(h!.tg.http, `streamgate_${name}`, labels);

describe('conditions: phrase', () => {
  it('ends the conference once on a final transcript with the phrase, and records the decision', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: ["end the conference"], track: inbound }\n');
    const cf = await h.conference();
    const s = await open(cf, ['inbound', 'outbound']);
    const bus = h.tg.gw.bus;

    bus.emit('transcript', transcript(s, cf, 'please end the', { isFinal: false }));
    bus.emit('transcript', transcript(s, cf, 'End the conference.', { track: 'outbound' }));
    bus.emit('transcript', transcript(s, cf, 'we could end the conferences later'));
    await h.settle();
    expect(h.requests()).toHaveLength(0);

    bus.emit('transcript', transcript(s, cf, 'OK, END the conference!'));
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({
      scope: cf,
      scopeKind: 'conference',
      rule: 'bye',
      trigger: 'phrase',
      result: 'completed',
      mediaMs: 1900,
      operation: 'UpdateConference',
      httpStatus: 200,
      dryRun: false,
      evidence: { kind: 'transcript', text: 'OK, END the conference!', matched: 'end the conference', final: true, track: 'inbound', streamSid: s.streamSid },
    });
    expect(entry!.decisionLatencyMs).toBeLessThan(500);
    expect(entry!.restMs).toBeGreaterThan(0);
    expect(h.requests()).toEqual([{ params: { Status: 'completed' }, status: 200, twilioCode: null }]);
    expect(h.sim.conference(cf)?.status).toBe('completed');
    expect(await metric('conditions_triggered_total', { rule: 'bye' })).toBe(1);
    expect(await metric('conferences_ended_total', { result: 'completed' })).toBe(1);
    expect(h.decisions()).toHaveLength(1);
    expect(h.decisions()[0]).toMatchObject({ conferenceSid: cf, rule: 'bye', result: 'completed', level: 30 });

    // The conference is over: the same words again change nothing.
    bus.emit('transcript', transcript(s, cf, 'end the conference'));
    await h.settle();
    expect(h.requests()).toHaveLength(1);
  });

  it('matches partial transcripts when the rule says partial: true', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: goodbye everyone, partial: true }\n');
    const cf = await h.conference();
    const s = await open(cf);
    h.tg.gw.bus.emit('transcript', transcript(s, cf, 'goodbye everyone and', { isFinal: false }));
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({ result: 'completed', evidence: { final: false, matched: 'goodbye everyone' } });
  });

  it('fires on a phrase the keyword spotter reports', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: ["end the conference"] }\n');
    const cf = await h.conference();
    const s = await open(cf);
    h.tg.gw.bus.emit('phrase', { accountSid: s.ids.accountSid, callSid: s.ids.callSid, streamSid: s.streamSid, conferenceSid: cf, track: 'inbound', phrase: 'end the conference', startMs: 1000, endMs: 2200 });
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({ rule: 'bye', result: 'completed', mediaMs: 2200, evidence: { kind: 'spotted', phrase: 'end the conference' } });
    expect(entry!.decisionLatencyMs).toBeLessThan(500);
    expect(h.requests()).toHaveLength(1);
  });

  it('plays the announcement first, then ends the conference', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: bye }\n    announceUrl: https://example.com/bye.xml\n');
    const cf = await h.conference();
    const s = await open(cf);
    h.tg.gw.bus.emit('transcript', transcript(s, cf, 'bye'));
    await h.audit(cf);
    expect(h.requests().map((r) => r.params)).toEqual([{ AnnounceUrl: 'https://example.com/bye.xml' }, { Status: 'completed' }]);
  });
});

describe('conditions: silence', () => {
  it('ends the conference when every track has been silent for N seconds of media', async () => {
    h = await startHarness('rules:\n  - name: dead-air\n    when: { silenceSeconds: 1 }\n');
    const cf = await h.conference();
    const bus = h.tg.gw.bus;
    // B first, so the track that decides (B) is not the last one the engine looks at.
    const b = await open(cf);
    const a = await open(cf);
    // A: silent from its first frame. B: talks for a second, then pauses for 0.6 s.
    const processed = Promise.all([progressReached(bus, a.streamSid, 3000), progressReached(bus, b.streamSid, 1600)]);
    a.send(QUIET, 2980);
    b.send(LOUD, 980);
    b.send(QUIET, 600);
    await processed;
    await h.settle();
    expect(h.requests()).toHaveLength(0);

    // 0.6 s more of B's silence: its pause reaches 1 s (at 2000 ms on B's clock).
    b.send(QUIET, 600);
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({ rule: 'dead-air', trigger: 'silence', result: 'completed', mediaMs: 2000 });
    const evidence = entry!.evidence;
    if (evidence.kind !== 'silence') throw new Error('not silence evidence');
    expect(evidence.silentMs).toBeGreaterThanOrEqual(1000);
    expect(evidence.silentMs).toBeLessThan(1300);
    const spans = Object.fromEntries(evidence.tracks.map((t) => [t.streamSid, t]));
    expect(spans[b.streamSid]!.fromMs).toBe(1000); // the first quiet frame after B's speech
    expect(spans[a.streamSid]!.fromMs).toBeLessThanOrEqual(40); // A counts from its first frame
    expect(entry!.decisionLatencyMs).toBeLessThan(500);
    expect(h.requests()).toEqual([{ params: { Status: 'completed' }, status: 200, twilioCode: null }]);
  });

  it('counts from the first frame when nobody has spoken yet', async () => {
    h = await startHarness('rules:\n  - name: dead-air\n    when: { silenceSeconds: 1.5 }\n');
    const cf = await h.conference();
    // The media clock starts at 1000 ms, not 0: silence is counted from the first frame.
    const s = await TestStream.open(h.tg.ws, { conferenceSid: cf, firstTimestampMs: 1000 });
    streams.push(s);
    const processed = progressReached(h.tg.gw.bus, s.streamSid, 2200);
    s.send(QUIET, 1200);
    await processed;
    await h.settle();
    expect(h.requests()).toHaveLength(0);
    s.send(QUIET, 600);
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({ result: 'completed', trigger: 'silence' });
    expect(entry!.mediaMs).toBeGreaterThanOrEqual(2500);
    expect(entry!.mediaMs).toBeLessThanOrEqual(2540);
    expect(entry!.decisionLatencyMs).toBeLessThan(500);
  });

  it('stops a stream that has no conference (UpdateStream Status=stopped), streamed by the emulator', async () => {
    h = await startHarness('rules:\n  - name: dead-air\n    when: { silenceSeconds: 1 }\n', { speed: 4 });
    const call = await h.sim.createCall({});
    const created = await h.client.createStream(call.sid, { url: h.tg.ws });
    const [entry] = await h.audit(created.sid);
    expect(entry).toMatchObject({ scope: created.sid, scopeKind: 'stream', rule: 'dead-air', result: 'completed', operation: 'UpdateStream', httpStatus: 200 });
    expect(entry!.decisionLatencyMs).toBeLessThan(500);
    expect(h.requests('UpdateConference')).toHaveLength(0);
    expect(h.requests('UpdateStream')).toEqual([{ params: { Status: 'stopped' }, status: 200, twilioCode: null }]);
    await waitFor(() => h!.sim.stream(created.sid)?.status === 'stopped');
    expect(h.sim.stream(created.sid)?.endReason).toBe('api');
    // Not a conference: conferences_ended_total does not count it.
    expect(await metric('conferences_ended_total', { result: 'completed' })).toBe(0);
    expect(await metric('conditions_triggered_total', { rule: 'dead-air' })).toBe(1);
  });
});

describe('conditions: max duration', () => {
  it('ends the conference when its age on the media clock passes the limit', async () => {
    h = await startHarness('rules:\n  - name: too-long\n    when: { maxDurationSeconds: 1 }\n');
    const cf = await h.conference();
    const s = await open(cf);
    const processed = progressReached(h.tg.gw.bus, s.streamSid, 900);
    s.send(LOUD, 880);
    await processed;
    await h.settle();
    expect(h.requests()).toHaveLength(0);
    s.send(LOUD, 400);
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({ rule: 'too-long', trigger: 'max-duration', result: 'completed', mediaMs: 1000, evidence: { kind: 'duration', clock: 'media' } });
    expect(entry!.decisionLatencyMs).toBeLessThan(500);
  });

  it('falls back to the wall clock when media stops', async () => {
    h = await startHarness('rules:\n  - name: too-long\n    when: { maxDurationSeconds: 1 }\n');
    const cf = await h.conference();
    const s = await open(cf);
    s.send(QUIET, 100); // then nothing: the socket stays open, the media clock stands still at 120 ms
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({ trigger: 'max-duration', result: 'completed', mediaMs: null, evidence: { kind: 'duration', clock: 'wall' } });
    const evidence = entry!.evidence;
    expect(evidence.kind === 'duration' && evidence.ageMs).toBeGreaterThanOrEqual(1000);
    expect(entry!.decisionLatencyMs).toBeLessThan(500);
  });
});

describe('conditions: dtmf', () => {
  it('ends the conference on the digit sequence, across dtmf events', async () => {
    h = await startHarness('rules:\n  - name: star-hash\n    when: { dtmf: "*#" }\n');
    const cf = await h.conference();
    const s = await open(cf, ['inbound', 'outbound']);
    // The engine hears dtmf on the bus before this listener (it subscribed first).
    const heard = new Promise<void>((resolve) => {
      const off = h!.tg.gw.bus.on('dtmf', (_info, digit) => {
        if (digit !== '#') return;
        off();
        resolve();
      });
    });
    s.dtmf('*');
    s.dtmf('1');
    s.dtmf('#');
    await heard;
    await h.settle();
    expect(h.requests()).toHaveLength(0);
    s.dtmf('*');
    s.dtmf('#');
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({ rule: 'star-hash', trigger: 'dtmf', result: 'completed', evidence: { kind: 'dtmf', digits: '*#', streamSid: s.streamSid } });
  });
});

describe('conditions: once per conference', () => {
  it('sends exactly one request when two rules fire together, and audits both decisions', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: goodbye }\n  - name: rude\n    when: { regex: "\\\\bgood\\\\w*" }\n');
    const cf = await h.conference();
    const s = await open(cf);
    h.tg.gw.bus.emit('transcript', transcript(s, cf, 'goodbye'));
    const entries = await h.audit(cf, 2);
    expect(entries.map((e) => [e.rule, e.result]).sort()).toEqual([
      ['bye', 'completed'],
      ['rude', 'suppressed'],
    ]);
    await h.settle();
    expect(h.requests()).toHaveLength(1);
    expect(await metric('conditions_triggered_total', { rule: 'bye' })).toBe(1);
    expect(await metric('conditions_triggered_total', { rule: 'rude' })).toBe(1);
    expect(await metric('conferences_ended_total', { result: 'completed' })).toBe(1);
  });

  it('sends one request when streams of the conference and the admin API ask at the same time', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: goodbye }\n');
    const cf = await h.conference();
    const a = await open(cf);
    const b = await open(cf);
    const bus = h.tg.gw.bus;
    const api = h.engine.endConference(cf, 'admin');
    bus.emit('transcript', transcript(a, cf, 'goodbye'));
    bus.emit('transcript', transcript(b, cf, 'goodbye'));
    const outcome = await api;
    expect(outcome.result).toBe('completed');
    const entries = await h.audit(cf, 2);
    expect(entries.map((e) => [e.rule, e.trigger, e.result])).toEqual([
      ['bye', 'phrase', 'suppressed'],
      [null, 'api', 'completed'],
    ]);
    await h.settle();
    expect(h.requests()).toHaveLength(1);

    // A later admin request learns who ended it.
    const again = await h.engine.endConference(cf, 'admin');
    expect(again).toMatchObject({ result: 'suppressed', previous: { result: 'completed', by: 'api:admin' } });
    const hook = await h.engine.endConferenceHook()(cf, 'admin');
    expect(hook).toEqual({ conferenceSid: cf, result: 'already-ended', status: null });
    expect(h.requests()).toHaveLength(1);
  });

  it('does not act in dry-run: logs, audits and counts only', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: goodbye }\n    dryRun: true\n');
    const cf = await h.conference();
    const s = await open(cf);
    h.tg.gw.bus.emit('transcript', transcript(s, cf, 'goodbye'));
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({ rule: 'bye', result: 'dry-run', dryRun: true, operation: null, restMs: null });
    expect(entry!.decisionLatencyMs).toBeLessThan(500);
    await h.settle();
    expect(h.requests()).toHaveLength(0);
    expect(h.sim.conference(cf)?.status).toBe('in-progress');
    expect(await metric('conferences_ended_total', { result: 'dry-run' })).toBe(1);
    expect(h.decisions()[0]).toMatchObject({ rule: 'bye', result: 'dry-run', dryRun: true });
  });

  it('stops evaluating a conference Twilio reported ended', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: goodbye }\n');
    const cf = await h.conference();
    const s = await open(cf);
    h.engine.onConferenceEnded(cf);
    h.tg.gw.bus.emit('transcript', transcript(s, cf, 'goodbye'));
    await h.settle();
    expect(h.requests()).toHaveLength(0);
    expect(await h.engine.audit(cf)).toEqual([]);
    expect((await h.engine.endConference(cf, 'admin')).result).toBe('suppressed');
    expect(h.requests()).toHaveLength(0);
  });
});

describe('conditions: Twilio answers', () => {
  it('retries a 429 (the REST client does) and then succeeds', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: goodbye }\n');
    const cf = await h.conference();
    const s = await open(cf);
    h.sim.faults.addRestFault({ operation: 'UpdateConference', status: 429, next: 1 });
    h.tg.gw.bus.emit('transcript', transcript(s, cf, 'goodbye'));
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({ result: 'completed', httpStatus: 200 });
    expect(h.requests().map((r) => r.status)).toEqual([429, 200]);
    expect(h.sim.conference(cf)?.status).toBe('completed');
    expect(await metric('twilio_requests_total', { operation: 'UpdateConference', status: '429' })).toBe(1);
    expect(await metric('twilio_requests_total', { operation: 'UpdateConference', status: '200' })).toBe(1);
  });

  it('counts a conference that had already ended (400, Twilio 16022) as done', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: goodbye }\n');
    const cf = await h.conference();
    const s = await open(cf);
    h.sim.endConference(cf); // ended on Twilio's side; the callback never reached us
    h.tg.gw.bus.emit('transcript', transcript(s, cf, 'goodbye'));
    const [entry] = await h.audit(cf);
    expect(entry).toMatchObject({ result: 'already-ended', httpStatus: 400, twilioCode: 16022 });
    expect(h.requests()).toEqual([{ params: { Status: 'completed' }, status: 400, twilioCode: 16022 }]);
    expect(await metric('conferences_ended_total', { result: 'already-ended' })).toBe(1);
    // Done means done: no retry from the admin API either.
    expect((await h.engine.endConference(cf, 'admin')).result).toBe('suppressed');
    expect(h.requests()).toHaveLength(1);
  });

  it('counts an unknown conference (404, Twilio 20404) as not-found', async () => {
    h = await startHarness('rules: []\n');
    const unknown = newSid('conference');
    const outcome = await h.engine.endConference(unknown, 'admin');
    expect(outcome).toMatchObject({ result: 'not-found', httpStatus: 404, twilioCode: 20404 });
    expect(await metric('conferences_ended_total', { result: 'not-found' })).toBe(1);
    await expect(h.engine.endConferenceHook()(unknown, 'admin')).resolves.toMatchObject({ result: 'already-ended' });
  });

  it('reports a failure after the client retries (503 ×4), and lets a later request try again', async () => {
    h = await startHarness('rules: []\n');
    const cf = await h.conference();
    h.sim.faults.addRestFault({ operation: 'UpdateConference', status: 503, next: 4 });
    const failed = await h.engine.endConference(cf, 'admin');
    expect(failed).toMatchObject({ result: 'failed', httpStatus: 503 });
    await expect(h.engine.endConferenceHook()(cf, 'admin')).resolves.toEqual({ conferenceSid: cf, result: 'ended', status: 'completed' });
    expect(h.requests().map((r) => r.status)).toEqual([503, 503, 503, 503, 200]);
    expect(await metric('conferences_ended_total', { result: 'failed' })).toBe(1);
  });
});

describe('conditions: state', () => {
  it('forgets scopes whose streams ended, after the retention period', async () => {
    h = await startHarness('rules:\n  - name: bye\n    when: { phrase: goodbye }\n', { retentionMs: 0, tickMs: 20 });
    const cf = await h.conference();
    const a = await open(cf);
    const b = await open(null);
    expect(h.engine.scopeCount).toBe(2);
    a.stop();
    b.stop();
    await waitFor(() => h!.engine.scopeCount === 0, 3000, 'scopes forgotten');
  });
});
