import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/conditions/types.js';
import { RedisConferenceStore } from '../../src/state/redis-conference-store.js';
import { RedisConnection } from '../../src/state/redis-connection.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const log = pino({ level: 'silent' });
let n = 0;
/** A fresh conference SID per test: the tests share one server. */
const newCf = () => `CF${(++n).toString(16).padStart(32, '0')}`;

function entry(cf: string, i: number): AuditEntry {
  return {
    atMs: i, scope: cf, scopeKind: 'conference', rule: `r${i}`, trigger: 'api', evidence: { kind: 'api', reason: 'x' }, mediaMs: null,
    dryRun: false, result: 'suppressed', decisionLatencyMs: 0, restMs: null, operation: null, httpStatus: null, twilioCode: null, error: null,
  };
}

describe('RedisConferenceStore (real redis-server)', () => {
  let redis: RedisServer;
  const conns: RedisConnection[] = [];
  /** A store as one process would have it: its own connection and process id. */
  async function storeOf(processId: string, opts: { maxAuditEntries?: number; claimTtlMs?: number } = {}) {
    const conn = new RedisConnection({ url: redis.url, log, registry: new Registry() });
    conns.push(conn);
    expect(await conn.connect()).toBe(true);
    return new RedisConferenceStore({ redis: conn, processId, ...opts });
  }

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close()));
    await redis.stop();
  });

  it('lets exactly one of many concurrent claims win across three processes', async () => {
    const stores = await Promise.all(['a', 'b', 'c'].map((p) => storeOf(p)));
    const cf = newCf();
    const wins = await Promise.all(Array.from({ length: 30 }, (_, i) => stores[i % 3]!.tryClaimEnd(cf, 'conference')));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect((await stores[0]!.get(cf))?.endState).toBe('claimed');
  });

  it('reopens the claim after a failed outcome (only the holder releases it), and closes it for good after any other', async () => {
    const [a, b] = await Promise.all([storeOf('a'), storeOf('b')]);
    const cf = newCf();
    expect(await a.tryClaimEnd(cf, 'conference')).toBe(true);
    // b holds no claim: its failed outcome must not release a's.
    await b.recordOutcome(cf, { result: 'failed', by: 'r', atMs: 0 });
    expect((await b.get(cf))?.endState).toBe('claimed');
    await a.recordOutcome(cf, { result: 'failed', by: 'r', atMs: 1 });
    expect((await b.get(cf))?.endState).toBe('open');
    expect(await b.tryClaimEnd(cf, 'conference')).toBe(true);
    await b.recordOutcome(cf, { result: 'completed', by: 'r', atMs: 2 });
    expect(await a.tryClaimEnd(cf, 'conference')).toBe(false);
    const rec = await a.get(cf);
    expect(rec?.endState).toBe('ended');
    expect(rec?.outcome).toEqual({ result: 'completed', by: 'r', atMs: 2 });
  });

  it('refuses claims once the conference is marked ended, even while a claim is held', async () => {
    const [a, b] = await Promise.all([storeOf('a'), storeOf('b')]);
    const cf = newCf();
    expect(await a.tryClaimEnd(cf, 'conference')).toBe(true);
    await b.markEnded(cf, { result: 'already-ended', by: 'conference-end', atMs: 3 });
    await a.recordOutcome(cf, { result: 'failed', by: 'r', atMs: 4 });
    expect((await a.get(cf))?.endState).toBe('ended');
    expect(await b.tryClaimEnd(cf, 'conference')).toBe(false);
  });

  it('lets a claim whose holder vanished expire, so the conference can still be ended', async () => {
    const [a, b] = await Promise.all([storeOf('a', { claimTtlMs: 300 }), storeOf('b')]);
    const cf = newCf();
    expect(await a.tryClaimEnd(cf, 'conference')).toBe(true);
    expect(await b.tryClaimEnd(cf, 'conference')).toBe(false);
    // a "dies" without an outcome; b's claim succeeds once the claim's TTL has passed.
    await expect.poll(() => b.tryClaimEnd(cf, 'conference'), { timeout: 10_000, interval: 100 }).toBe(true);
  });

  it('shares streams, the first creation time and a bounded audit trail between processes', async () => {
    const [a, b] = await Promise.all([storeOf('a', { maxAuditEntries: 3 }), storeOf('b', { maxAuditEntries: 3 })]);
    const cf = newCf();
    expect(await a.get(cf)).toBeUndefined();
    const first = await a.getOrCreate(cf, 'conference', 1000);
    expect(first).toMatchObject({ id: cf, kind: 'conference', createdAtMs: 1000, streams: [], endState: 'open', outcome: null });
    expect((await b.getOrCreate(cf, 'conference', 2000)).createdAtMs).toBe(1000);
    await a.addStream(cf, 'conference', 'MZ1');
    await b.addStream(cf, 'conference', 'MZ2');
    expect(await a.removeStream(cf, 'MZ1')).toBe(1);
    expect((await b.get(cf))?.streams).toEqual(['MZ2']);
    for (let i = 0; i < 5; i++) await (i % 2 === 0 ? a : b).appendAudit(cf, entry(cf, i));
    expect((await b.audit(cf)).map((e) => e.rule)).toEqual(['r2', 'r3', 'r4']);
    expect(await a.audit(newCf())).toEqual([]);
  });

  it('rejects within the command timeout and counts the error while Redis is down, then works again', async () => {
    const own = await startRedis();
    const registry = new Registry();
    const conn = new RedisConnection({ url: own.url, log, registry, commandTimeoutMs: 500 });
    try {
      expect(await conn.connect()).toBe(true);
      const store = new RedisConferenceStore({ redis: conn, processId: 'a' });
      const cf = newCf();
      await own.pause();
      await expect.poll(() => conn.up, { timeout: 10_000 }).toBe(false);
      await expect(store.tryClaimEnd(cf, 'conference')).rejects.toThrow();
      const text = await registry.metrics();
      expect(text).toMatch(/streamgate_state_store_up 0/);
      expect(text).toMatch(/streamgate_state_store_errors_total\{op="end_claim"\} [1-9]/);
      await own.resume();
      await expect.poll(() => conn.up, { timeout: 15_000 }).toBe(true);
      expect(await store.tryClaimEnd(cf, 'conference')).toBe(true);
      expect(await registry.metrics()).toMatch(/streamgate_state_store_latency_seconds_count\{op="end_claim"\} 1/);
    } finally {
      await conn.close();
      await own.stop();
    }
  });
});
