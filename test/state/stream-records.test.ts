/**
 * Handover-ready stream records on a real redis-server: compare-owner refresh, compare-and-delete
 * of ended streams, and the atomic compare-owner move.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../src/state/redis-connection.js';
import { RedisStreamRecords, streamRecordKey, type HandoverRecord } from '../../src/state/stream-records.js';
import { newSid } from '../../src/twilio/sids.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const log = pino({ level: 'silent' });
let redis: RedisServer;
const conns: RedisConnection[] = [];

async function connect(): Promise<RedisConnection> {
  const conn = new RedisConnection({ url: redis.url, log, registry: new Registry() });
  conns.push(conn);
  expect(await conn.connect()).toBe(true);
  return conn;
}

/** One process's records, on its own connection. */
async function proc(processId: string): Promise<RedisStreamRecords> {
  return new RedisStreamRecords({ redis: await connect(), processId, ttlMs: 30_000 });
}

function record(mediaMs: number): HandoverRecord {
  const conferenceSid = newSid('conference');
  return {
    streamSid: newSid('stream'),
    callSid: newSid('call'),
    accountSid: newSid('account'),
    conferenceSid,
    tracks: ['inbound'],
    startedAt: new Date().toISOString(),
    mediaMs: { inbound: mediaMs },
    recording: '/data/recordings/x.wav.partial',
    ruleKeys: [`sg:conf:{${conferenceSid}}:end`],
  };
}

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(conns.map((c) => c.close()));
  await redis.stop();
});

describe('RedisStreamRecords (real redis-server)', () => {
  it('keeps each live stream with its owner and handover fields, refreshed with an expiry', async () => {
    const a = await proc('a');
    const r = record(1000);
    expect(await a.sync([r])).toEqual([]);
    expect(await a.get(r.streamSid)).toEqual({ owner: 'a', record: r });
    const later = { ...r, mediaMs: { inbound: 3000 } };
    await a.sync([later]);
    expect((await a.get(r.streamSid))?.record.mediaMs).toEqual({ inbound: 3000 });
    const raw = await connect();
    const ttl = await raw.run<number>('t', ['PTTL', streamRecordKey(r.streamSid)]);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30_000);
    // Ended here: deleted at the next sync.
    await a.sync([]);
    expect(await a.get(r.streamSid)).toBeNull();
  });

  it('moves a stream only from its current owner, once among concurrent movers, and the old owner cannot take it back', async () => {
    const [a, b] = [await proc('a'), await proc('b')];
    const r = record(2000);
    await a.sync([r]);
    // Not the owner: nothing moves.
    expect(await b.moveStream(r.streamSid, 'b', 'c')).toBe(false);
    expect((await b.get(r.streamSid))?.owner).toBe('a');
    // No record: nothing to move.
    expect(await b.moveStream(newSid('stream'), 'a', 'b')).toBe(false);
    // Five processes try to take it from A at once: exactly one wins.
    const movers = ['b', 'c', 'd', 'e', 'f'];
    const results = await Promise.all(movers.map(async (to) => (await proc(to)).moveStream(r.streamSid, 'a', to)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = movers[results.indexOf(true)]!;
    expect(await b.get(r.streamSid)).toEqual({ owner: winner, record: r });
    // A, still beating with the stream (say it was paused), neither refreshes nor deletes it.
    expect(await a.sync([{ ...r, mediaMs: { inbound: 9999 } }])).toEqual([r.streamSid]);
    await a.sync([]);
    expect(await b.get(r.streamSid)).toEqual({ owner: winner, record: r });
  });
});
