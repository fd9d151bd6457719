/**
 * What REDIS_URL costs (issue 14), short runs for a shared machine; ratios within one run:
 *
 * 1. per-message CPU of a real gateway process (recording on, transcription off) with REDIS_URL
 *    unset vs set, alternating runs: streams sent as fast as the sockets take them, the child's
 *    user+system CPU (from /proc) divided by the media messages it took;
 * 2. state-store operation latency (p50/p99) against a loopback redis-server;
 * 3. a spotted phrase → UpdateConference sent (the audit's decisionLatencyMs): one process with
 *    the in-memory store vs two processes sharing Redis (two engines, the end claimed in Redis).
 *
 * Run: node --import tsx bench/shared-state.bench.ts [--streams 40 --frames 1500 --rounds 2]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import { ConditionsEngine } from '../src/conditions/engine.js';
import { parseRules } from '../src/conditions/rules.js';
import { InMemoryConferenceStore, type ConferenceStore } from '../src/conditions/store.js';
import { EventBus } from '../src/core/events.js';
import { startSim } from '../src/emulator/index.js';
import { GatewayMetrics } from '../src/gateway/metrics.js';
import { RedisPeerLink } from '../src/state/peer-link.js';
import { RedisConferenceStore } from '../src/state/redis-conference-store.js';
import { RedisConnection } from '../src/state/redis-connection.js';
import { TwilioRestClient } from '../src/twilio/rest-client.js';
import { newSid } from '../src/twilio/sids.js';
import { freePort, startRedisServer } from './lib/redis.js';
import { machineLine, percentile } from './lib/stats.js';
import { connectedMessage, mediaMessage, newStreamIds, speechLikeFrames, startMessage, stopMessage } from './lib/twilio-frames.js';

const { values: args } = parseArgs({ options: { streams: { type: 'string', default: '40' }, frames: { type: 'string', default: '1500' }, rounds: { type: 'string', default: '2' } } });
const STREAMS = Number(args.streams);
const FRAMES = Number(args.frames);
const ROUNDS = Number(args.rounds);
const log = pino({ level: 'silent' });

/** user+system CPU of a process, ms. */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

async function gatewayRun(redisUrl: string | null, dataDir: string): Promise<number> {
  const port = await freePort();
  const env: Record<string, string> = { ...process.env, PORT: String(port), HOST: '127.0.0.1', TRANSCRIPTION: 'none', STREAMGATE_DATA_DIR: dataDir, LOG_LEVEL: 'warn', MAX_EVENT_LOOP_DELAY_MS: '60000' } as Record<string, string>;
  if (redisUrl !== null) env.REDIS_URL = redisUrl;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start'], { env, stdio: 'ignore' });
  const http = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${http}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 600) throw new Error('gateway did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  const frames = speechLikeFrames(50).map((f) => Buffer.from(f).toString('base64'));
  const sockets = await Promise.all(
    Array.from({ length: STREAMS }, async () => {
      const ws = new WebSocket(`${http.replace('http', 'ws')}/media`, { perMessageDeflate: false });
      await new Promise((r, j) => ws.once('open', r).once('error', j));
      const ids = newStreamIds();
      ws.send(connectedMessage());
      ws.send(startMessage(ids, ['inbound']));
      return { ws, ids };
    }),
  );
  await new Promise((r) => setTimeout(r, 500));
  const before = cpuMs(child.pid!);
  await Promise.all(
    sockets.map(async ({ ws, ids }) => {
      for (let i = 0; i < FRAMES; i++) {
        ws.send(mediaMessage(ids.streamSid, i + 2, 'inbound', i + 1, i * 20, frames[i % frames.length]!));
        if (ws.bufferedAmount > 256 * 1024) await new Promise((r) => setTimeout(r, 1));
      }
      ws.send(stopMessage(ids, FRAMES + 2));
      await new Promise((r) => ws.once('close', r));
    }),
  );
  const used = cpuMs(child.pid!) - before;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return (used * 1000) / (STREAMS * FRAMES); // µs per message
}

async function storeLatency(url: string): Promise<Record<string, { p50: number; p99: number }>> {
  const conn = new RedisConnection({ url, log, registry: new Registry() });
  await conn.connect();
  const store = new RedisConferenceStore({ redis: conn, processId: 'bench' });
  const ops: Record<string, number[]> = { tryClaimEnd: [], addStream: [], appendAudit: [], get: [] };
  for (let i = 0; i < 2000; i++) {
    const cf = newSid('conference');
    const time = async (name: string, f: () => Promise<unknown>) => {
      const t = performance.now();
      await f();
      ops[name]!.push(performance.now() - t);
    };
    await time('addStream', () => store.addStream(cf, 'conference', newSid('stream')));
    await time('tryClaimEnd', () => store.tryClaimEnd(cf, 'conference'));
    await time('appendAudit', () => store.appendAudit(cf, { atMs: 0, scope: cf, scopeKind: 'conference', rule: 'r', trigger: 'api', evidence: { kind: 'api', reason: 'b' }, mediaMs: null, dryRun: false, result: 'completed', decisionLatencyMs: 1, restMs: 1, operation: 'UpdateConference', httpStatus: 200, twilioCode: null, error: null }));
    await time('get', () => store.get(cf));
  }
  await conn.close();
  return Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, { p50: percentile(v, 0.5), p99: percentile(v, 0.99) }]));
}

async function phraseToUpdate(url: string | null, n: number): Promise<number[]> {
  const accountSid = newSid('account');
  const sim = await startSim({ accountSid, authToken: 'tok', port: 0, speed: 1 });
  const rules = parseRules('rules:\n  - name: bye\n    when: { phrase: "end the conference" }\n', 'yaml');
  const engines: { bus: EventBus; engine: ConditionsEngine; close: () => Promise<void> }[] = [];
  for (const id of url === null ? ['a'] : ['a', 'b']) {
    const bus = new EventBus(log);
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    let store: ConferenceStore = new InMemoryConferenceStore();
    let peers: RedisPeerLink | undefined;
    let conn: RedisConnection | null = null;
    if (url !== null) {
      conn = new RedisConnection({ url, log, registry: metrics.registry });
      await conn.connect();
      store = new RedisConferenceStore({ redis: conn, processId: id });
      peers = new RedisPeerLink({ redis: conn, processId: id, log });
      await peers.start();
    }
    const client = new TwilioRestClient({ baseUrl: sim.url, accountSid, username: accountSid, password: 'tok', logger: log });
    const engine = new ConditionsEngine({ bus, rules, log, metrics, twilio: client, store, peers });
    engines.push({ bus, engine, close: async () => { await engine.close(); peers?.close(); await conn?.close(); } });
  }
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const cf = (await sim.createConference({ participants: [{}, {}] })).sid;
    const a = engines[0]!;
    a.bus.emit('phrase', { accountSid, callSid: newSid('call'), streamSid: newSid('stream'), conferenceSid: cf, track: 'inbound', phrase: 'end the conference', startMs: 0, endMs: 900 });
    for (;;) {
      const audit = await a.engine.audit(cf);
      if (audit.length > 0) {
        out.push(audit[0]!.decisionLatencyMs);
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  for (const e of engines) await e.close();
  await sim.close();
  return out;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-bench-redis-'));
  const redis = await startRedisServer(dir);
  try {
    console.log(`# shared-state bench — ${machineLine()}`);
    console.log(`streams ${STREAMS} × frames ${FRAMES}, rounds ${ROUNDS}`);
    const unset: number[] = [];
    const set: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      unset.push(await gatewayRun(null, join(dir, `u${r}`)));
      set.push(await gatewayRun(redis.url, join(dir, `s${r}`)));
      console.log(`round ${r + 1}: µs/message unset ${unset[r]!.toFixed(2)}, REDIS_URL ${set[r]!.toFixed(2)}`);
    }
    const med = (v: number[]) => percentile(v, 0.5);
    console.log(`per-message CPU median: unset ${med(unset).toFixed(2)} µs, REDIS_URL ${med(set).toFixed(2)} µs, ratio ${(med(set) / med(unset)).toFixed(3)}`);
    const lat = await storeLatency(redis.url);
    for (const [op, v] of Object.entries(lat)) console.log(`store ${op}: p50 ${(v.p50 * 1000).toFixed(0)} µs, p99 ${(v.p99 * 1000).toFixed(0)} µs`);
    const single = await phraseToUpdate(null, 40);
    const two = await phraseToUpdate(redis.url, 40);
    console.log(`phrase → UpdateConference sent: one process (memory) p50 ${percentile(single, 0.5).toFixed(1)} ms p99 ${percentile(single, 0.99).toFixed(1)} ms; two processes (Redis) p50 ${percentile(two, 0.5).toFixed(1)} ms p99 ${percentile(two, 0.99).toFixed(1)} ms`);
  } finally {
    redis.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
