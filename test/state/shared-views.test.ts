/**
 * The shared views on a real redis-server: the live-stream directory (heartbeat TTL), the
 * participant-join claims, the events stream read through a consumer group, and transcripts
 * fanned out over pub/sub. Each "process" is its own connection and process id.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TranscriptEvent } from '../../src/core/transcript.js';
import { RedisEventsStream } from '../../src/state/events-stream.js';
import { RedisJoinGate } from '../../src/state/join-claims.js';
import { RedisPeerLink } from '../../src/state/peer-link.js';
import { RedisConferenceStore } from '../../src/state/redis-conference-store.js';
import { RedisConnection } from '../../src/state/redis-connection.js';
import { RedisStreamDirectory } from '../../src/state/stream-directory.js';
import { newSid } from '../../src/twilio/sids.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const log = pino({ level: 'silent' });
let redis: RedisServer;
const conns: RedisConnection[] = [];

async function connect(): Promise<RedisConnection> {
  const c = new RedisConnection({ url: redis.url, log, registry: new Registry() });
  conns.push(c);
  expect(await c.connect()).toBe(true);
  return c;
}

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(conns.map((c) => c.close()));
  await redis.stop();
});

describe('stream directory', () => {
  it("lists every process's streams; a process that stops beating drops out within the TTL, one that closes at once", async () => {
    const [ca, cb, cc] = await Promise.all([connect(), connect(), connect()]);
    const mine = { a: [{ streamSid: 'MZa1', n: 1 }, { streamSid: 'MZa2', n: 2 }], b: [{ streamSid: 'MZb1', n: 3 }], c: [{ streamSid: 'MZc1', n: 4 }] };
    const dir = (conn: RedisConnection, p: 'a' | 'b' | 'c') =>
      new RedisStreamDirectory({ redis: conn, processId: p, log, local: () => mine[p], heartbeatMs: 200, ttlMs: 800 });
    const [a, b, c] = [dir(ca, 'a'), dir(cb, 'b'), dir(cc, 'c')];
    for (const d of [a, b, c]) d.start();
    await expect.poll(async () => (await b.list()).map((r) => `${r.owner}:${r.streamSid}`).sort(), { timeout: 5000 }).toEqual(['a:MZa1', 'a:MZa2', 'b:MZb1', 'c:MZc1']);
    // A stream ends on a: the next beat replaces a's entry.
    mine.a = [mine.a[1]!];
    a.touch();
    await expect.poll(async () => (await c.list()).filter((r) => r.owner === 'a').map((r) => r.streamSid), { timeout: 5000 }).toEqual(['MZa2']);
    // b is "killed": its connection drops first, so no goodbye is sent and no beat follows.
    await cb.close();
    await b.close();
    expect((await a.list()).some((r) => r.owner === 'b')).toBe(true);
    const killedAt = Date.now();
    // c closes cleanly: gone at once.
    await c.close();
    expect((await a.list()).some((r) => r.owner === 'c')).toBe(false);
    await expect.poll(async () => (await a.list()).some((r) => r.owner === 'b'), { timeout: 5000, interval: 50 }).toBe(false);
    expect(Date.now() - killedAt).toBeLessThan(800 + 1000);
    expect((await a.list()).map((r) => r.streamSid)).toEqual(['MZa2']);
    await a.close();
  });
});

describe('participant-join claims', () => {
  it('streams a participant once however many processes get the callback, releases on failure, and refuses after the end', async () => {
    const gates = await Promise.all(['a', 'b', 'c'].map(async (p) => new RedisJoinGate({ redis: await connect(), processId: p })));
    const cf = newSid('conference');
    const ca = newSid('call');
    const results = await Promise.all([...gates, ...gates].map((g) => g.claim(cf, ca)));
    expect(results.filter((r) => r === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r === 'taken')).toHaveLength(5);
    const winner = gates[results.indexOf('claimed') % 3]!;
    const other = gates.find((g) => g !== winner)!;
    await other.release(cf, ca); // not the holder: no effect
    expect(await other.claim(cf, ca)).toBe('taken');
    await winner.release(cf, ca); // CreateStream failed: a retried callback may try again
    expect(await other.claim(cf, ca)).toBe('claimed');
    // Twilio's conference-end reached some process: a later join starts nothing.
    const store = new RedisConferenceStore({ redis: await connect(), processId: 'd' });
    await store.markEnded(cf, { result: 'already-ended', by: 'conference-end', atMs: Date.now() });
    expect(await winner.claim(cf, newSid('call'))).toBe('ended');
  });
});

describe('events stream', () => {
  it('a consumer group receives every event of several processes once, including those appended while Redis was down', async () => {
    // Persistence on, as a production Redis under a durable feed would have it.
    const own = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const mk = async (p: string) => {
      const c = new RedisConnection({ url: own.url, log, registry: new Registry(), commandTimeoutMs: 300 });
      conns.push(c);
      expect(await c.connect()).toBe(true);
      return new RedisEventsStream({ redis: c, processId: p, log, maxLen: 1000 });
    };
    try {
      const [a, b] = await Promise.all([mk('a'), mk('b')]);
      const reader = new RedisConnection({ url: own.url, log, registry: new Registry() });
      conns.push(reader);
      await reader.connect();
      await reader.run('x', ['XGROUP', 'CREATE', a.key, 'pipeline', '$', 'MKSTREAM']);
      for (let i = 0; i < 20; i++) (i % 2 === 0 ? a : b).append('transcript.final', { n: i });
      await expect.poll(() => a.queued + b.queued, { timeout: 5000 }).toBe(0);
      // Redis goes away: appends wait in the queue and are written when it is back.
      await own.pause();
      await expect.poll(() => conns.filter((c) => !c.up).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
      for (let i = 20; i < 30; i++) (i % 2 === 0 ? a : b).append('stream.stopped', { n: i });
      expect(a.queued + b.queued).toBe(10);
      await own.resume();
      await expect.poll(() => a.queued + b.queued, { timeout: 15_000 }).toBe(0);
      const seen: number[] = [];
      const ids = new Set<string>();
      for (;;) {
        await expect.poll(() => reader.up, { timeout: 15_000 }).toBe(true);
        const reply = (await reader.run('x', ['XREADGROUP', 'GROUP', 'pipeline', 'c1', 'COUNT', '7', 'STREAMS', a.key, '>'])) as [string, [string, string[]][]][] | null;
        if (reply === null) break;
        const acks: string[] = [];
        for (const [entryId, fields] of reply[0]![1]) {
          const f = Object.fromEntries(fields.flatMap((v, i) => (i % 2 === 0 ? [[v, fields[i + 1]!]] : [])));
          expect(f.type).toMatch(/^(transcript\.final|stream\.stopped)$/);
          expect(f.process).toMatch(/^[ab]$/);
          ids.add(f.id!);
          seen.push((JSON.parse(f.data!) as { n: number }).n);
          acks.push(entryId);
        }
        await reader.run('x', ['XACK', a.key, 'pipeline', ...acks]);
      }
      expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i));
      expect(ids.size).toBe(30);
      const pending = (await reader.run('x', ['XPENDING', a.key, 'pipeline'])) as [number, ...unknown[]];
      expect(pending[0]).toBe(0);
    } finally {
      await own.stop();
    }
  });
});

describe('transcripts over pub/sub', () => {
  it("delivers each process's final transcripts to the others, not back to itself", async () => {
    const links = await Promise.all(['a', 'b', 'c'].map(async (p) => {
      const l = new RedisPeerLink({ redis: await connect(), processId: p, log });
      await l.start();
      return l;
    }));
    const got: Record<string, string[]> = { a: [], b: [], c: [] };
    for (const l of links) l.onTranscript((t) => got[l.self]!.push(t.text));
    const t = (text: string): TranscriptEvent => ({ accountSid: newSid('account'), callSid: newSid('call'), streamSid: newSid('stream'), conferenceSid: null, track: 'inbound', text, isFinal: true, words: [], startMs: 0, endMs: 1 });
    links[0]!.publishTranscript(t('from a'));
    links[1]!.publishTranscript(t('from b'));
    await expect.poll(() => got.c!.length, { timeout: 5000 }).toBe(2);
    await expect.poll(() => got.a!.length + got.b!.length, { timeout: 5000 }).toBe(2);
    expect(got.a).toEqual(['from b']);
    expect(got.b).toEqual(['from a']);
    for (const l of links) l.close();
  });
});
