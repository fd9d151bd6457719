/**
 * Conference rules over tracks held by different processes: two gateways (each its own bus,
 * level sink, conditions engine, Redis connection and process id), one real redis-server, the
 * Twilio emulator answering UpdateConference. Each gateway only sees its own frames; the
 * other's speaking/silent transitions and its end claim arrive through Redis.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConditionsEngine } from '../../src/conditions/engine.js';
import { parseRules } from '../../src/conditions/rules.js';
import { EventBus } from '../../src/core/events.js';
import type { TranscriptEvent } from '../../src/core/transcript.js';
import { startSim, type Sim } from '../../src/emulator/index.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { createLevelSinkFactory } from '../../src/sinks/level/level-sink.js';
import { RedisPeerLink } from '../../src/state/peer-link.js';
import { RedisConferenceStore } from '../../src/state/redis-conference-store.js';
import { RedisConnection } from '../../src/state/redis-connection.js';
import { TwilioRestClient } from '../../src/twilio/rest-client.js';
import { newSid } from '../../src/twilio/sids.js';
import { LOUD, QUIET, TestStream, progressReached } from '../conditions/helpers.js';
import { startTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { captureLog } from '../helpers/log.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

interface Proc {
  id: string;
  tg: TestGateway;
  engine: ConditionsEngine;
  conn: RedisConnection;
  peers: RedisPeerLink;
  client: TwilioRestClient;
}

let redis: RedisServer;
let sim: Sim;
const accountSid = newSid('account');
const authToken = 'sim-auth-token';
const procs: Proc[] = [];
const streams: TestStream[] = [];

beforeAll(async () => {
  redis = await startRedis();
  sim = await startSim({ accountSid, authToken, speed: 1 });
});
afterAll(async () => {
  await sim.close();
  await redis.stop();
});
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  for (const p of procs.splice(0)) {
    await p.tg.close();
    p.peers.close();
    await p.conn.close();
  }
});

async function startProc(id: string, rulesYaml: string): Promise<Proc> {
  // In the app's order: log, metrics, bus, store, client, sinks, conditions, then the gateway.
  const captured = captureLog();
  const log = captured.log;
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const bus = new EventBus(log);
  const conn = new RedisConnection({ url: redis.url, log, registry: metrics.registry });
  expect(await conn.connect()).toBe(true);
  const peers = new RedisPeerLink({ redis: conn, processId: id, log, aliveMs: 300 });
  const store = new RedisConferenceStore({ redis: conn, processId: id });
  const client = new TwilioRestClient({ baseUrl: sim.url, accountSid, username: accountSid, password: authToken, retryBaseMs: 20, logger: log });
  const level = createLevelSinkFactory({ bus });
  const engine = new ConditionsEngine({ rules: parseRules(rulesYaml, 'yaml'), twilio: client, store, peers, bus, log: log.child({ component: 'conditions' }), metrics });
  const tg = await startTestGateway({}, { sinkFactories: [level], metrics, bus }, captured);
  tg.gw.onClose(() => engine.close());
  await peers.start();
  const p = { id, tg, engine, conn, peers, client };
  procs.push(p);
  return p;
}

/**
 * The positive signal behind "nothing was sent": another conference ended through each process's
 * REST client, answered. A request either engine had decided on would have been sent first.
 */
async function settleThrough(...ps: Proc[]): Promise<void> {
  for (const p of ps) {
    const other = (await sim.createConference({ participants: [{}] })).sid;
    await p.client.updateConference(other, { status: 'completed' });
  }
}

async function open(p: Proc, conferenceSid: string): Promise<TestStream> {
  const s = await TestStream.open(p.tg.ws, { conferenceSid });
  streams.push(s);
  const started = progressReached(p.tg.gw.bus, s.streamSid, 20);
  s.send(QUIET, 20);
  await started;
  return s;
}

/** Sends frames on every stream at the pace of the wall clock (the media clock tracks it, as with Twilio). */
async function play(parts: [TestStream, Uint8Array][], ms: number): Promise<void> {
  const t0 = performance.now();
  let sent = 0;
  while (sent < ms) {
    await new Promise((r) => setTimeout(r, 40));
    const due = Math.min(ms, Math.floor((performance.now() - t0) / 20) * 20);
    if (due > sent) for (const [s, frame] of parts) s.send(frame, due - sent);
    sent = Math.max(sent, due);
  }
}

function updates(cf: string): number {
  return sim.requests({}).filter((r) => r.operation === 'UpdateConference' && r.path.includes(cf)).length;
}

function transcript(s: TestStream, conferenceSid: string, text: string): TranscriptEvent {
  return { accountSid: s.ids.accountSid, callSid: s.ids.callSid, streamSid: s.streamSid, conferenceSid, track: 'inbound', text, isFinal: true, words: [], startMs: 0, endMs: 900 };
}

describe('conference rules across processes (real Redis)', () => {
  it('a phrase heard on one process ends the conference with exactly one UpdateConference; the same phrase on the other is suppressed', async () => {
    const rules = 'rules:\n  - name: bye\n    when: { phrase: "end the conference" }\n';
    const [a, b] = [await startProc('proc-a', rules), await startProc('proc-b', rules)];
    const cf = (await sim.createConference({ participants: [{}, {}] })).sid;
    const sa = await open(a, cf);
    const sb = await open(b, cf);
    a.tg.gw.bus.emit('transcript', transcript(sa, cf, 'please end the conference'));
    b.tg.gw.bus.emit('transcript', transcript(sb, cf, 'yes end the conference'));
    await waitFor(async () => (await a.engine.audit(cf)).length >= 2, 10_000, 'both decisions audited');
    const results = (await b.engine.audit(cf)).map((e) => e.result).sort();
    expect(results).toEqual(['completed', 'suppressed']);
    expect(updates(cf)).toBe(1);
  });

  it('silence means every track of the conference, wherever it is: a talker on the other process holds it off, then it ends once', async () => {
    const rules = 'rules:\n  - name: dead-air\n    when: { silenceSeconds: 1 }\n';
    const [a, b] = [await startProc('proc-a', rules), await startProc('proc-b', rules)];
    const cf = (await sim.createConference({ participants: [{}, {}] })).sid;
    const sa = await open(a, cf);
    const sb = await open(b, cf);
    // Real time, as Twilio sends: a peer's track is carried forward on the wall clock between its transitions.
    // A is silent for 2.5 s while B talks: A alone would have ended it after 1 s.
    const progressed = Promise.all([progressReached(a.tg.gw.bus, sa.streamSid, 2500, 'inbound', 10_000), progressReached(b.tg.gw.bus, sb.streamSid, 2500, 'inbound', 10_000)]);
    await play([[sa, QUIET], [sb, LOUD]], 2500);
    await progressed;
    await settleThrough(a, b);
    expect(updates(cf)).toBe(0);
    expect(await a.engine.audit(cf)).toEqual([]);
    // Now B goes quiet too: the conference is silent everywhere and is ended once.
    const decided = waitFor(async () => (await a.engine.audit(cf)).some((e) => e.result === 'completed'), 15_000, 'the silence decision');
    // B has judged all of its own audio too, before the check that it sent nothing.
    const bJudged = progressReached(b.tg.gw.bus, sb.streamSid, 5000, 'inbound', 15_000);
    await play([[sa, QUIET], [sb, QUIET]], 2500);
    await decided;
    await bJudged;
    await settleThrough(a, b);
    expect(updates(cf)).toBe(1);
    const completed = (await b.engine.audit(cf)).filter((e) => e.result === 'completed');
    expect(completed).toHaveLength(1);
    expect(completed[0]!.trigger).toBe('silence');
    if (completed[0]!.evidence.kind !== 'silence') throw new Error('not silence evidence');
    expect(completed[0]!.evidence.silentMs).toBeGreaterThanOrEqual(1000);
  });

  it('maxDurationSeconds counts from the conference\'s first stream on any process', async () => {
    const rules = 'rules:\n  - name: too-long\n    when: { maxDurationSeconds: 2 }\n';
    const a = await startProc('proc-a', rules);
    const b = await startProc('proc-b', rules);
    const cf = (await sim.createConference({ participants: [{}, {}] })).sid;
    const sa = await open(a, cf);
    const progressedA = progressReached(a.tg.gw.bus, sa.streamSid, 1200);
    sa.send(QUIET, 1200);
    await progressedA;
    await new Promise((r) => setTimeout(r, 1200));
    // B's stream starts 1.2+ s after A's; on its own clock it is far below 2 s when the conference is past 2 s.
    const sb = await open(b, cf);
    await waitFor(async () => (await b.engine.audit(cf)).some((e) => e.result === 'completed'), 10_000, 'the duration decision');
    expect(updates(cf)).toBe(1);
    expect(sb.clock()).toBeLessThan(2000);
  });
});
