/**
 * Redis going away mid-call, and WORKERS: real processes, a real redis-server, the emulator.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/process.js';
import { startRedis } from '../helpers/redis-server.js';
import { freePort } from '../helpers/ports.js';
import { startTestSim } from '../helpers/sim.js';
import { startCluster, until, type Cluster } from './multi-process-helpers.js';
import { WARM_UP_FRAMES } from '../../src/warm-up.js';

let cluster: Cluster | null = null;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await cluster?.close();
  cluster = null;
  for (const c of cleanups.splice(0)) await c();
});

describe('Redis stopped for 10 s mid-call', () => {
  it('loses no frame, completes the recordings, ends the conference once after Redis returns, and shows the outage', async () => {
    const c = (cluster = await startCluster({ rules: 'rules:\n  - name: bye\n    when: { phrase: "end the conference" }\n' }));
    const [a, b] = await Promise.all([c.start('a', { TRANSCRIPTION: 'pocketsphinx' }), c.start('b')]);
    // Four seconds of silence, then the phrase: it is heard while Redis is away.
    const phrase = await readFile(join(ROOT, 'test/fixtures/speech/phrase-flite.ulaw'));
    const audio = Buffer.concat([Buffer.alloc(4 * 8000, 0xff), phrase]);
    const w = await c.sim.createConference({ participants: [{ label: 'talker', audio: { type: 'mulaw', data: audio }, hangupOnAudioEnd: false }, { label: 'quiet' }] });
    const [p1, p2] = w.participants.map((p) => p.callSid);
    const s1 = await c.stream(a, p1!, w.sid);
    const s2 = await c.stream(b, p2!, w.sid);
    await until(async () => (await c.streams(a)).filter((s) => s.streamSid === s1 || s.streamSid === s2).length === 2, 30_000, 'both streams live');

    await c.redis.pause();
    const sentAtPause = c.sim.stream(s1)!.mediaSent.inbound;
    for (const p of [a, b]) {
      await until(async () => (await fetch(`${p.http}/readyz`)).status === 503, 10_000, `${p.name} not ready`);
      const body = (await (await fetch(`${p.http}/readyz`)).json()) as { reason?: string };
      expect(body.reason).toMatch(/state store/);
      expect(await c.metric(p, 'streamgate_state_store_up')).toBe(0);
    }
    // The phrase is heard during the outage: the decision waits, nothing is sent.
    await a.cli.waitForLine((l) => l.msg === 'conditions decision waits for the conference store', 20_000);
    expect(c.sim.requests({ operation: 'UpdateConference' })).toHaveLength(0);
    // Signals, not a wall-clock wait: the outage lasts ten seconds of the call's audio, and the
    // decision is tried again meanwhile (each end claim fails on the paused store, counted).
    const failedClaims = await c.metric(a, 'streamgate_state_store_errors_total', { op: 'end_claim' });
    await until(() => c.sim.stream(s1)!.mediaSent.inbound >= sentAtPause + 10 * 50, 30_000, 'ten seconds of audio sent during the outage');
    await until(async () => (await c.metric(a, 'streamgate_state_store_errors_total', { op: 'end_claim' })) >= failedClaims + 2, 30_000, 'two more end claims tried while Redis is away');
    expect(c.sim.requests({ operation: 'UpdateConference' })).toHaveLength(0);
    await c.redis.resume();

    await until(() => c.sim.requests({ operation: 'UpdateConference' }).length >= 1, 20_000, 'the end after Redis returned');
    for (const p of [a, b]) {
      await until(async () => (await fetch(`${p.http}/readyz`)).status === 200, 15_000, `${p.name} ready again`);
      expect(await c.metric(p, 'streamgate_state_store_up')).toBe(1);
    }
    // A's end claims failed while Redis was away (B had nothing to ask of it: an idle process sends nothing while down).
    expect(await c.metric(a, 'streamgate_state_store_errors_total', { op: 'end_claim' })).toBeGreaterThan(0);
    // Both streams end with the conference, whole.
    const ends = await Promise.all([
      a.cli.waitForLine((l) => l.msg === 'stream ended' && l.streamSid === s1, 20_000),
      b.cli.waitForLine((l) => l.msg === 'stream ended' && l.streamSid === s2, 20_000),
    ]);
    for (const e of ends) {
      expect(e.lost).toBe(0);
      expect(e.frames as number).toBeGreaterThan(10 * 50);
    }
    for (const [p, call, sid] of [[a, p1!, s1], [b, p2!, s2]] as const) {
      const base = join(p.dataDir, 'recordings', c.accountSid, call, sid);
      await until(async () => (await stat(`${base}.wav`).catch(() => null)) !== null, 15_000, `${sid}.wav`);
      const manifest = JSON.parse(await readFile(`${base}.json`, 'utf8')) as { frames?: unknown; lost?: number };
      expect(manifest.lost ?? 0).toBe(0);
    }
    const decisions = a.cli.lines.filter((l) => l.msg === 'conditions decision');
    expect(decisions.map((d) => d.result)).toEqual(['completed']);
    expect(c.sim.requests({ operation: 'UpdateConference' })).toHaveLength(1);
  }, 180_000);
});

/** The value of one exposition line (`name{labels}`), or NaN when absent. */
function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

describe('WORKERS', () => {
  it('refuses more than one worker without REDIS_URL, with one clear line', async () => {
    const cli = runCli(['start'], { WORKERS: '2', PORT: '0' });
    const { code } = await cli.exited;
    expect(code).toBe(1);
    expect(cli.stderr.join('')).toMatch(/WORKERS=2 needs REDIS_URL/);
  });

  it('WORKERS=2: two processes share the port, 200 streams spread over both, SIGTERM drains both and exits 0', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const sim = await startTestSim({ speed: 1 });
    const { accountSid, authToken } = sim;
    cleanups.push(() => sim.close());
    const port = await freePort();
    const http = `http://127.0.0.1:${port}`;
    const cli = runCli(['start'], {
      WORKERS: '2',
      REDIS_URL: redis.url,
      PORT: String(port),
      PUBLIC_URL: http,
      TWILIO_ACCOUNT_SID: accountSid,
      TWILIO_AUTH_TOKEN: authToken,
      TWILIO_API_URL: sim.url,
      STREAMGATE_DATA_DIR: join(redis.dir, 'data'),
      TRANSCRIPTION: 'none',
      MAX_EVENT_LOOP_DELAY_MS: '10000',
      DRAIN_TIMEOUT: '30',
      // Each worker warms up first (src/warm-up.ts): its throwaway gateway's streams must not reach the merged metrics below.
      WARMUP_STREAMS: '4',
    });
    cleanups.push(async () => {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await cli.exited;
    });
    await until(() => new Set(cli.lines.filter((l) => l.msg === 'streamgate listening').map((l) => l.pid)).size === 2, 60_000, 'two workers listening');
    expect(new Set(cli.lines.filter((l) => l.msg === 'warmed up' && l.frames === 4 * WARM_UP_FRAMES).map((l) => l.pid)).size).toBe(2);

    // 200 calls of 2 s each, streamed through the shared port (the admin API answers on any worker).
    const calls = await Promise.all(Array.from({ length: 200 }, () => sim.createCall({ audio: { type: 'tone', hz: 440, ms: 2000 } })));
    for (let i = 0; i < calls.length; i += 20) {
      await Promise.all(
        calls.slice(i, i + 20).map(async (call) => {
          const res = await fetch(`${http}/v1/calls/${call.sid}/streams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
          expect(res.status).toBe(201);
        }),
      );
    }
    const started = () => cli.lines.filter((l) => l.msg === 'stream started');
    await until(() => started().length === 200, 60_000, '200 streams started');
    const perWorker = new Map<unknown, number>();
    for (const l of started()) perWorker.set(l.pid, (perWorker.get(l.pid) ?? 0) + 1);
    expect(perWorker.size).toBe(2);
    // Every stream is in the shared list, whichever worker answers.
    const listed = ((await (await fetch(`${http}/v1/streams`)).json()) as { streams: { owner?: string }[] }).streams;
    expect(new Set(listed.map((s) => s.owner)).size).toBe(2);

    // Once every call has hung up, any scrape (each on a fresh connection, so the kernel hands
    // them to either worker) gives both workers' numbers added up: frames, streams, histogram counts.
    const endedLines = () => cli.lines.filter((l) => l.msg === 'stream ended');
    await until(() => endedLines().length === 200, 60_000, '200 streams ended');
    const frames = endedLines().reduce((n, l) => n + (l.frames as number), 0);
    const framesOf = new Map<unknown, number>();
    for (const l of endedLines()) framesOf.set(l.pid, (framesOf.get(l.pid) ?? 0) + (l.frames as number));
    expect([...framesOf.values()].every((n) => n > 0 && n < frames)).toBe(true);
    for (let i = 0; i < 4; i++) {
      const text = await (await fetch(`${http}/metrics`, { headers: { connection: 'close' } })).text();
      expect(metricValue(text, 'streamgate_media_frames_total{track="inbound"}')).toBe(frames);
      expect(metricValue(text, 'streamgate_frame_ingest_lag_seconds_count')).toBe(frames);
      expect(metricValue(text, 'streamgate_streams_total{outcome="stopped"}')).toBe(200);
      expect(metricValue(text, 'streamgate_streams_active')).toBe(0);
      expect(metricValue(text, 'streamgate_state_store_up')).toBe(1);
    }

    cli.child.kill('SIGTERM');
    const { code } = await cli.exited;
    expect(code).toBe(0);
    const ended = endedLines();
    expect(ended).toHaveLength(200);
    expect(ended.every((l) => l.lost === 0)).toBe(true);
    expect(cli.lines.some((l) => l.msg === 'all workers exited')).toBe(true);
  }, 180_000);
});
