/**
 * Many processes, one gateway: real `streamgate start` processes sharing one real redis-server,
 * the Twilio emulator as Twilio, real pocketsphinx on the process that hears the phrase.
 */
import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisConnection } from '../../src/state/redis-connection.js';
import { EVENTS_STREAM_KEY } from '../../src/state/events-stream.js';
import { ROOT } from '../helpers/process.js';
import { startCluster, until, type Cluster, type GatewayProcess } from './multi-process-helpers.js';

const PHRASE = { type: 'file' as const, path: join(ROOT, 'test/fixtures/speech/phrase-flite.ulaw') };
/** A sentence, then 2 s of silence (the recogniser's end of utterance, shorter than the dead-air rule), looped. */
const SPEECH = { type: 'mulaw' as const, data: Buffer.concat([readFileSync(join(ROOT, 'test/fixtures/speech/wer-1.ulaw')), Buffer.alloc(16_000, 0xff)]) };
const TONE = { type: 'tone' as const, hz: 440, ms: 1000, amplitude: 0.5 };
const RULES = `rules:
  - name: bye
    when: { phrase: "end the conference" }
  - name: dead-air
    when: { silenceSeconds: 8 }
`;

let cluster: Cluster | null = null;
const conns: RedisConnection[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) await c.close();
  await cluster?.close();
  cluster = null;
});

async function redisClient(c: Cluster): Promise<RedisConnection> {
  const conn = new RedisConnection({ url: c.redis.url, log: pino({ level: 'silent' }) });
  conns.push(conn);
  await conn.connect();
  return conn;
}

function updates(c: Cluster, cf: string): number {
  return c.sim.requests({ operation: 'UpdateConference', pathIncludes: cf }).length;
}

function lines(p: GatewayProcess, msg: string): Record<string, unknown>[] {
  return p.cli.lines.filter((l) => l.msg === msg);
}

async function countFiles(dir: string, ext: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name.endsWith(ext)) out.push(join(d, e.name));
    }
  };
  await walk(dir);
  return out;
}

/** The final transcripts a process wrote (its JSONL files; hole markers left out). */
async function finalsOf(dataDir: string): Promise<Record<string, unknown>[]> {
  const files = await countFiles(join(dataDir, 'transcripts'), '.jsonl');
  const lines = (await Promise.all(files.map(async (f) => (await readFile(f, 'utf8')).split('\n')))).flat();
  const out: Record<string, unknown>[] = [];
  for (const l of lines) {
    if (l === '' || l.includes('"hole":true')) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // A line being appended while we read (polling); the final read is after the process exited.
    }
  }
  return out;
}

describe('three gateway processes, one Redis', () => {
  it('one view, one end per conference, one stream per participant, surviving a kill -9, every event in the consumer group once', async () => {
    const c = (cluster = await startCluster({ rules: RULES }));
    const reader = await redisClient(c);
    await reader.run('x', ['XGROUP', 'CREATE', EVENTS_STREAM_KEY, 'pipeline', '$', 'MKSTREAM']);
    const [a, b, cc] = await Promise.all([c.start('a', { TRANSCRIPTION: 'pocketsphinx' }), c.start('b'), c.start('c')]);
    const confEvents = { statusCallback: `${a.http}/twilio/conference-events`, statusCallbackEvent: 'end' };

    // Conference X: the phrase is spoken on A's stream; B's participant is silent.
    const x = await c.sim.createConference({ ...confEvents, participants: [{ label: 'talker', audio: PHRASE, hangupOnAudioEnd: false }, { label: 'quiet' }] });
    const [p1, p2] = x.participants.map((p) => p.callSid);
    const s1 = await c.stream(a, p1!, x.sid);
    const s2 = await c.stream(b, p2!, x.sid);
    // Any process lists both, with the process that holds each.
    await until(async () => (await c.streams(cc)).filter((s) => s.streamSid === s1 || s.streamSid === s2).length === 2, 30_000, 'both streams listed on C').catch(async (e) => {
      console.log(JSON.stringify(await c.streams(cc)), JSON.stringify(await c.streams(a)));
      for (const p of [a, b, cc]) console.log(p.name, p.cli.lines.filter((l) => l.level as number >= 30 && !String(l.msg).includes('incoming')).map((l) => JSON.stringify(l)).join('\n'), p.cli.stderr.join(''));
      throw e;
    });
    // A lone call on A says a sentence again and again until A stops: pocketsphinx writes finals for it.
    const talk = await c.sim.createCall({ audio: SPEECH, loop: true });
    const s6 = await c.stream(a, talk.sid);
    const owners = Object.fromEntries((await c.streams(cc)).map((s) => [s.streamSid, s.owner]));
    expect(owners[s1]).not.toBe(owners[s2]);
    await until(() => updates(c, x.sid) >= 1, 30_000, 'the phrase ending conference X');

    // Conference Y: the same participant-join, to all three processes, twice: one CreateStream.
    const y = await c.sim.createConference({ participants: [{ label: 'joiner' }, { label: 'other' }] });
    const p3 = y.participants[0]!.callSid;
    const joinEvent = { AccountSid: c.accountSid, ConferenceSid: y.sid, CallSid: p3, StatusCallbackEvent: 'participant-join', SequenceNumber: '3' };
    const skipped = () => [a, b, cc].reduce((n, p) => n + lines(p, 'participant already streamed; no new stream').length, 0);
    expect(await Promise.all([a, b, cc].map((p) => c.conferenceEvent(p, joinEvent)))).toEqual([204, 204, 204]);
    await until(() => skipped() >= 2, 15_000, 'two processes skipping the join');
    await until(async () => (await c.streams(b)).some((s) => s.callSid === p3), 15_000, 'the joiner streamed');
    // Again, as a new delivery (an identical signed request is a replay, which each process drops on its own).
    expect(await Promise.all([a, b, cc].map((p) => c.conferenceEvent(p, { ...joinEvent, SequenceNumber: '4' })))).toEqual([204, 204, 204]);
    await until(() => skipped() >= 4, 15_000, 'the retried joins skipped');
    expect(c.sim.requests({ operation: 'CreateStream', pathIncludes: p3 })).toHaveLength(1);

    // Conference Z: a talker on C, a silent participant on A. Silence is every track's: it holds.
    const z = await c.sim.createConference({ ...confEvents, participants: [{ label: 'tone', audio: TONE, loop: true }, { label: 'quiet' }] });
    const [p4, p5] = z.participants.map((p) => p.callSid);
    const s4 = await c.stream(cc, p4!, z.sid);
    const s5 = await c.stream(a, p5!, z.sid);
    await until(async () => (await c.streams(a)).filter((s) => s.streamSid === s4 || s.streamSid === s5).length === 2, 15_000, 'Z streams listed');
    // A's silent track passes 8 s while C's talks: nothing ends. (Positive signal first: A's frames past 10 s.)
    await until(async () => ((await c.streams(a)).find((s) => s.streamSid === s5)?.frames ?? 0) >= 500, 30_000, "ten seconds of A's track");
    expect(updates(c, z.sid)).toBe(0);

    // kill -9 of C mid-call.
    const framesBefore = (await c.streams(a)).find((s) => s.streamSid === s5)!.frames;
    const killedAt = Date.now();
    cc.cli.child.kill('SIGKILL');
    await cc.cli.exited;
    await until(async () => !(await c.streams(a)).some((s) => s.streamSid === s4), 15_000, "C's stream leaving /v1/streams");
    const goneAfterMs = Date.now() - killedAt;
    expect(goneAfterMs).toBeLessThan(6000 + 2000);
    // A's stream is untouched, and the silence rule of the surviving track ends Z once.
    await until(() => updates(c, z.sid) >= 1, 20_000, 'silence ending Z after C died');
    const s5line = await a.cli.waitForLine((l) => l.msg === 'stream ended' && l.streamSid === s5, 20_000);
    expect(s5line.frames as number).toBeGreaterThan(framesBefore);
    expect(s5line.lost).toBe(0);

    // The lone call's sentence is in A's transcript before A stops (waited for, on a loaded machine).
    await until(async () => (await finalsOf(a.dataDir)).some((t) => t.streamSid === s6 && /\w/.test(String(t.text))), 90_000, "a final transcript of the lone call's sentence");
    // Stopped through B, which does not hold it.
    const stop = await fetch(`${b.http}/v1/calls/${talk.sid}/streams/${s6}`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(stop.status).toBe(200);
    await a.cli.waitForLine((l) => l.msg === 'stream ended' && l.streamSid === s6, 30_000);

    // Graceful stop of A and B: every stream ends, every event is written.
    a.cli.child.kill('SIGTERM');
    b.cli.child.kill('SIGTERM');
    expect((await a.cli.exited).code).toBe(0);
    expect((await b.cli.exited).code).toBe(0);
    expect(updates(c, x.sid)).toBe(1);
    expect(updates(c, z.sid)).toBe(1);

    // The consumer group got every lifecycle event and transcript once.
    const seen = new Map<string, number>();
    const byType: Record<string, Record<string, unknown>[]> = {};
    for (;;) {
      const reply = (await reader.run('x', ['XREADGROUP', 'GROUP', 'pipeline', 'c1', 'COUNT', '100', 'STREAMS', EVENTS_STREAM_KEY, '>'])) as [string, [string, string[]][]][] | null;
      if (reply === null) break;
      const ids: string[] = [];
      for (const [id, fields] of reply[0]![1]) {
        const f: Record<string, string> = {};
        for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
        seen.set(f.id!, (seen.get(f.id!) ?? 0) + 1);
        (byType[f.type!] ??= []).push(JSON.parse(f.data!) as Record<string, unknown>);
        ids.push(id);
      }
      await reader.run('x', ['XACK', EVENTS_STREAM_KEY, 'pipeline', ...ids]);
    }
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    const started = [a, b, cc].flatMap((p) => lines(p, 'stream started').map((l) => l.streamSid)).sort();
    expect((byType['stream.started'] ?? []).map((e) => e.streamSid).sort(), 'stream.started events vs started lines').toEqual(started);
    // C's lines too: a stream that ended on C before its kill (the joiner's, when C won its claim) has its event.
    const ended = [a, b, cc].flatMap((p) => lines(p, 'stream ended').map((l) => l.streamSid)).sort();
    expect((byType['stream.stopped'] ?? []).map((e) => e.streamSid).sort(), 'stream.stopped events vs ended lines').toEqual(ended);
    const stopped1 = byType['stream.stopped']!.find((e) => e.streamSid === s5)!;
    expect(stopped1).toMatchObject({ frames: s5line.frames, lost: 0, conferenceSid: z.sid });
    // Every final of A's JSONL transcripts is in the events stream, and nothing else (the lone call's sentence at least).
    const finalKey = (t: Record<string, unknown>) => `${String(t.streamSid)} ${String(t.track)} ${String(t.startMs)} ${String(t.text)}`;
    const jsonl = await finalsOf(a.dataDir);
    expect(jsonl.filter((t) => t.streamSid === s6 && /\w/.test(String(t.text))).length).toBeGreaterThan(0);
    const jsonlFinals = jsonl.map(finalKey).sort();
    expect((byType['transcript.final'] ?? []).map(finalKey).sort(), 'transcript.final events vs JSONL finals').toEqual(jsonlFinals);
    expect((byType['conference.ended'] ?? []).map((e) => e.conferenceSid).sort()).toEqual([x.sid, z.sid].sort());
    const pending = (await reader.run('x', ['XPENDING', EVENTS_STREAM_KEY, 'pipeline'])) as [number];
    expect(pending[0]).toBe(0);
  }, 240_000);
});
