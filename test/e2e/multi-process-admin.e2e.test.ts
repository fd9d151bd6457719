/**
 * Admin commands on whichever process receives them: two real `streamgate start` processes
 * sharing one real redis-server, the Twilio emulator as Twilio. Every stream lives on A; every
 * command is sent to B, which holds none of them.
 */
import { stat } from 'node:fs/promises';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../src/state/redis-connection.js';
import { RedisStreamRecords } from '../../src/state/stream-records.js';
import { newSid } from '../../src/twilio/sids.js';
import { startCluster, until, type Cluster, type GatewayProcess } from './multi-process-helpers.js';

let cluster: Cluster | null = null;
let reader: RedisConnection | null = null;
afterEach(async () => {
  await reader?.close();
  reader = null;
  await cluster?.close();
  cluster = null;
});

async function admin(p: GatewayProcess, method: string, path: string, body?: object): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${p.http}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('admin commands on a process that does not hold the stream', () => {
  it('DELETE a stream and end a conference through B while the streams live on A; unknown ones answer as Twilio does', async () => {
    const c = (cluster = await startCluster({ rules: 'rules: []\n' }));
    const [a, b] = await Promise.all([c.start('a'), c.start('b')]);
    const x = await c.sim.createConference({ participants: [{ label: 'one' }, { label: 'two' }] });
    const [p1, p2] = x.participants.map((p) => p.callSid) as [string, string];
    const named = await admin(a, 'POST', `/v1/calls/${p1}/streams`, { track: 'inbound_track', name: 'rec-one', conferenceSid: x.sid });
    expect(named.status).toBe(201);
    const s1 = named.body.streamSid as string;
    const s2 = await c.stream(a, p2, x.sid);
    await until(async () => (await c.streams(b)).filter((s) => (s.streamSid === s1 || s.streamSid === s2) && s.owner !== undefined && s.frames > 0).length === 2, 30_000, 'B listing both of A\'s streams');
    const ownerA = (await c.streams(b)).find((s) => s.streamSid === s1)!.owner;
    expect((await c.streams(a)).find((s) => s.streamSid === s1)!.owner).toBe(ownerA);

    // The handover record of s1 (refreshed at A's heartbeat): owner, media position moving on,
    // the recording segment A is writing, the conference's rule-state keys.
    reader = new RedisConnection({ url: c.redis.url, log: pino({ level: 'silent' }) });
    await reader.connect();
    const records = new RedisStreamRecords({ redis: reader, processId: 'test' });
    const first = await records.get(s1);
    expect(first).toMatchObject({ owner: ownerA, record: { streamSid: s1, callSid: p1, conferenceSid: x.sid, tracks: ['inbound'] } });
    expect(first!.record.recording).toMatch(new RegExp(`^${a.dataDir}/.*${s1}\\.wav\\.partial$`));
    expect((await stat(first!.record.recording!)).isFile()).toBe(true);
    expect(first!.record.ruleKeys).toContain(`sg:conf:{${x.sid}}:end`);
    const startMs = first!.record.mediaMs.inbound ?? 0;
    await until(async () => ((await records.get(s1))?.record.mediaMs.inbound ?? 0) > startMs + 1000, 15_000, "s1's media position advancing at A's heartbeat");

    // By name, on B: Twilio stops the stream on the process that holds its socket.
    const byName = await admin(b, 'DELETE', `/v1/calls/${p1}/streams/rec-one`);
    expect(byName).toMatchObject({ status: 200, body: { streamSid: s1, callSid: p1, name: 'rec-one', status: 'stopped' } });
    const ended1 = await a.cli.waitForLine((l) => l.msg === 'stream ended' && l.streamSid === s1, 20_000);
    expect(ended1.lost).toBe(0);
    // Gone from both views.
    await until(async () => !(await c.streams(a)).some((s) => s.streamSid === s1) && !(await c.streams(b)).some((s) => s.streamSid === s1), 15_000, 's1 leaving /v1/streams on A and B');
    expect((await c.streams(b)).find((s) => s.streamSid === s2)?.owner).toBe(ownerA);

    // By SID, on B.
    const bySid = await admin(b, 'DELETE', `/v1/calls/${p2}/streams/${s2}`);
    expect(bySid).toMatchObject({ status: 200, body: { streamSid: s2, status: 'stopped' } });
    await a.cli.waitForLine((l) => l.msg === 'stream ended' && l.streamSid === s2, 20_000);
    // Ended streams' records are deleted by their owner at its next beat.
    await until(async () => (await records.get(s1)) === null && (await records.get(s2)) === null, 10_000, 'the ended streams\' records deleted');
    expect(c.sim.requests({ operation: 'UpdateStream' })).toHaveLength(2);

    // Unknown on B: the answer a single process gives (Twilio's 404, 20404, passed on as 404).
    for (const p of [b, a]) {
      const missing = await admin(p, 'DELETE', `/v1/calls/${p1}/streams/nope`);
      expect(missing).toMatchObject({ status: 404, body: { error: 'not_found', twilioCode: 20404, status: 404 } });
    }
    const unknownCall = await admin(b, 'DELETE', `/v1/calls/${newSid('call')}/streams/${s2}`);
    expect(unknownCall).toMatchObject({ status: 404, body: { error: 'not_found', twilioCode: 20404, status: 404 } });

    // A conference whose only stream lives on A, ended on B: once, through the shared claim.
    const y = await c.sim.createConference({ participants: [{ label: 'three' }, { label: 'four' }] });
    const s3 = await c.stream(a, y.participants[0]!.callSid, y.sid);
    await until(async () => (await c.streams(b)).some((s) => s.streamSid === s3 && s.frames > 0), 30_000, "B listing A's stream of Y");
    // Twilio's stream-started callback reaches B, as a balancer may deliver it: B files it, but A holds the stream.
    expect(await c.callback(b, '/twilio/stream-status', { AccountSid: c.accountSid, CallSid: y.participants[0]!.callSid, StreamSid: s3, StreamName: s3, StreamEvent: 'stream-started', Timestamp: new Date().toUTCString() })).toBe(204);
    expect((await c.streams(b)).filter((s) => s.streamSid === s3)).toMatchObject([{ owner: ownerA, state: 'streaming' }]);
    const end = await admin(b, 'POST', `/v1/conferences/${y.sid}/end`);
    expect(end).toMatchObject({ status: 200, body: { conferenceSid: y.sid, result: 'ended', status: 'completed' } });
    await a.cli.waitForLine((l) => l.msg === 'stream ended' && l.streamSid === s3, 20_000);
    // Gone from B's view too once A's directory entry drops it: B's callback table leaves no ghost.
    await until(async () => !(await c.streams(a)).some((s) => s.streamSid === s3) && !(await c.streams(b)).some((s) => s.streamSid === s3), 15_000, 's3 leaving /v1/streams on A and B');
    // Again, on the owner and on B: already ended, nothing sent.
    for (const p of [a, b]) expect(await admin(p, 'POST', `/v1/conferences/${y.sid}/end`)).toMatchObject({ status: 200, body: { result: 'already-ended' } });
    expect(c.sim.requests({ operation: 'UpdateConference', pathIncludes: y.sid })).toHaveLength(1);
    const missingConf = await admin(b, 'POST', `/v1/conferences/${newSid('conference')}/end`);
    expect(missingConf).toMatchObject({ status: 404, body: { error: 'not_found', twilioCode: 20404 } });
  }, 120_000);
});
