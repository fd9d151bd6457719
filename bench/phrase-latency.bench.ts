/**
 * Phrase end → UpdateConference latency through the real gateway (createAppGateway, pocketsphinx,
 * rules for the evaluation set's held-out phrases) with the Twilio emulator at real time, four
 * calls at a time: two conferences, each with a speaker who says a held-out phrase clip and a
 * talker saying non-matching speech, so every round has 4 tracks to transcribe and phrase-check
 * at once (the issue's capacity target on a 2-core machine).
 *
 * Phrase end: the clips used are those whose carrier sentence ends with the phrase ("alright
 * then {p}"), so the phrase ends where the clip's speech ends (last sample above -36 dBFS; the
 * synthesisers leave digital silence after speech). The emulator streams with first timestamp 0,
 * so a clip sample's media time is its time in the clip. The wall time the gateway had the audio
 * up to the phrase end comes from its 'media-progress' events of the speaker's track (one per
 * 250 ms of media; the emulator paces at real time), the UpdateConference time from the
 * emulator's request log: latency = request − phrase end. Gateway and emulator share this process
 * (one event loop; the recognisers are child processes).
 *
 * Per round it also checks: every track is "transcribed" in GET /v1/streams while all four are
 * live, and at the end the transcription sink's dropped frames
 * (streamgate_sink_dropped_frames_total{sink="transcription"}) and the machine load.
 *
 * Usage: npx tsx bench/phrase-latency.bench.ts [--rounds N] [--voices flite-kal,flite-awb]
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createAppGateway } from '../src/gateway/app.js';
import { loadConfig } from '../src/gateway/config.js';
import { createLogger } from '../src/gateway/logger.js';
import { startSim } from '../src/emulator/index.js';
import { newSid } from '../src/twilio/sids.js';
import { MULAW_TO_PCM } from '../src/twilio/mulaw.js';
import { coreShares, readCores } from './lib/host-load.js';
import { CARRIERS, ensurePhraseSet, phraseSet, type PhraseCase } from './lib/phrase-set.js';
import { machineLine, mdTable, percentile } from './lib/stats.js';
import { createServer } from 'node:net';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const voices = arg('--voices')?.split(',');
const CONFERENCES_PER_ROUND = 2;
/** Silence after the speaker's clip: room for the decision before the speaker hangs up. */
const SPEAKER_TAIL_MS = 5000;
/** |sample| above this (≈ -36 dBFS) is speech. */
const SPEECH_LEVEL = 500;

const set = phraseSet();
const heldout = set.phrases.filter((p) => p.half === 'heldout').map((p) => p.phrase);
const endsWithPhrase = new Set(CARRIERS.flatMap((c, i) => (c.endsWith('{p}') ? [i] : [])));
const cases = set.cases.filter((c) => c.half === 'heldout' && endsWithPhrase.has(c.carrier) && (voices === undefined || voices.includes(c.voice)));
const talkers = set.nonMatch.filter((c) => c.half === 'heldout');
const rounds = Math.min(Number(arg('--rounds') ?? Infinity), Math.ceil(cases.length / CONFERENCES_PER_ROUND));
const audioDir = await ensurePhraseSet(set, { only: new Set([...cases, ...talkers].map((c) => c.file)) });

function mulaw(file: string): Uint8Array {
  return readFileSync(join(audioDir, file));
}

/** ms into the clip where its speech ends. */
function speechEndMs(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i >= 0; i--) if (Math.abs(MULAW_TO_PCM[bytes[i]!]!) > SPEECH_LEVEL) return (i + 1) / 8;
  return NaN;
}

/** Bytes padded with mu-law silence to `ms` past their end, in whole 20 ms frames. */
function withTail(bytes: Uint8Array, ms: number): Uint8Array {
  const n = Math.ceil((bytes.length + ms * 8) / 160) * 160;
  const out = new Uint8Array(n).fill(0xff);
  out.set(bytes);
  return out;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const dataDir = mkdtempSync(join(tmpdir(), 'sg-phrase-latency-'));
const rulesFile = join(dataDir, 'rules.yaml');
writeFileSync(rulesFile, `rules:\n${heldout.map((p, i) => `  - name: heldout-${i}\n    when: { phrase: "${p}" }\n    action: end-conference\n`).join('')}`);
const accountSid = newSid('account');
const authToken = newSid('account').slice(2);
const sim = await startSim({ accountSid, authToken, port: 0, speed: 1, timestampOffsetMs: 0 });
const port = await freePort();
const http = `http://127.0.0.1:${port}`;
const lines: Record<string, unknown>[] = [];
const capture = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
    cb();
  },
});
const config = loadConfig({
  PORT: String(port),
  HOST: '127.0.0.1',
  PUBLIC_URL: http,
  TWILIO_ACCOUNT_SID: accountSid,
  TWILIO_AUTH_TOKEN: authToken,
  TWILIO_API_URL: sim.url,
  STREAMGATE_DATA_DIR: dataDir,
  TRANSCRIPTION: 'pocketsphinx',
  RULES_FILE: rulesFile,
  LOG_LEVEL: 'info',
  // The shared machine's other load must not turn the emulator's upgrades away (not measured here).
  MAX_EVENT_LOOP_DELAY_MS: '60000',
});
const gateway = await createAppGateway(config, { log: createLogger('info', capture) });
await gateway.listen();

/** Per stream: (wall ms, media ms) of its media-progress events. */
const progress = new Map<string, { wall: number; media: number }[]>();
const streamOfCall = new Map<string, string>();
const ended = new Set<string>();
gateway.bus.on('stream-start', (info) => streamOfCall.set(info.callSid, info.streamSid));
gateway.bus.on('stream-end', (info) => ended.add(info.streamSid));
gateway.bus.on('media-progress', (info, _track, atMs) => {
  let list = progress.get(info.streamSid);
  if (list === undefined) progress.set(info.streamSid, (list = []));
  list.push({ wall: performance.now(), media: atMs });
});
const phraseEvents: { streamSid: string; phrase: string; endMs: number; wall: number }[] = [];
gateway.bus.on('phrase', (e) => phraseEvents.push({ streamSid: e.streamSid, phrase: e.phrase, endMs: e.endMs, wall: performance.now() }));
/** Per stream: (wall ms, media end ms) of its final transcripts, to tell what a decision waited for. */
const transcripts = new Map<string, { wall: number; endMs: number }[]>();
gateway.bus.on('transcript', (e) => {
  let list = transcripts.get(e.streamSid);
  if (list === undefined) transcripts.set(e.streamSid, (list = []));
  list.push({ wall: performance.now(), endMs: e.endMs });
});
const updates = new Map<string, number>();
sim.on('request', (e) => {
  if (e.operation !== 'UpdateConference') return;
  const sid = /Conferences\/(CF[0-9a-f]+)/.exec(e.path)?.[1];
  if (sid !== undefined && !updates.has(sid)) updates.set(sid, performance.now());
});

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const m = new RegExp(`^streamgate_${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text);
  return m === null ? NaN : Number(m[1]);
}

/** Wall time the gateway had the speaker's audio up to media time `ms`. */
function wallAtMedia(streamSid: string, ms: number): number {
  const list = progress.get(streamSid) ?? [];
  let best: { wall: number; media: number } | null = null;
  for (const p of list) if (p.media <= ms && (best === null || p.media > best.media)) best = p;
  return best === null ? NaN : best.wall + (ms - best.media);
}

interface Result {
  c: PhraseCase;
  latencyMs: number;
  /** Detected phrase end minus true phrase end (media ms). */
  endErrMs: number;
  /** Phrase end → the gateway's phrase event (wall ms): the engine's part of the latency. */
  eventMs: number;
  /** Phrase end → the final transcript of the utterance holding it (wall ms); NaN if none came. */
  transcriptMs: number;
  ended: 'phrase' | 'missed' | 'talker';
}
const results: Result[] = [];
const transcribedSnapshots: boolean[] = [];
const cores0 = readCores();
const load: number[] = [];
const loadTimer = setInterval(() => load.push(loadavg()[0]!), 5000);
const cpu0 = process.cpuUsage();
const started = performance.now();

for (let r = 0; r < rounds; r++) {
  const batch = cases.slice(r * CONFERENCES_PER_ROUND, (r + 1) * CONFERENCES_PER_ROUND);
  const confs = await Promise.all(
    batch.map(async (c, i) => {
      const clip = mulaw(c.file);
      const conf = await sim.createConference({ statusCallback: `${http}/twilio/conference-events`, statusCallbackEvent: 'start end join leave' });
      const talker = talkers[(r * CONFERENCES_PER_ROUND + i) % talkers.length]!;
      const t = await sim.addParticipant(conf.sid, { label: 'talker', audio: { type: 'mulaw', data: withTail(mulaw(talker.file), 0) } });
      const s = await sim.addParticipant(conf.sid, { label: 'speaker', audio: { type: 'mulaw', data: withTail(clip, SPEAKER_TAIL_MS) } });
      return { c, conf: conf.sid, speakerCall: s.callSid, talkerCall: t.callSid, phraseEndMs: speechEndMs(clip) };
    }),
  );
  // Once all four streams are live: each track is fully transcribed (not waiting for a slot).
  const calls = confs.flatMap((x) => [x.speakerCall, x.talkerCall]);
  await sim.waitUntil(() => calls.every((c) => streamOfCall.has(c)), { timeoutMs: 60_000, what: 'all four streams started' });
  const listed = (await (await fetch(`${http}/v1/streams`)).json()) as { streams: { streamSid: string; transcription?: Record<string, string> }[] };
  for (const call of calls) {
    const entry = listed.streams.find((x) => x.streamSid === streamOfCall.get(call));
    transcribedSnapshots.push(entry?.transcription?.inbound === 'transcribed');
  }
  await Promise.all(confs.map((x) => sim.waitForConferenceStatus(x.conf, 'completed', { timeoutMs: 60_000 }).catch(() => sim.endConference(x.conf))));
  for (const x of confs) {
    const speaker = streamOfCall.get(x.speakerCall)!;
    const talker = streamOfCall.get(x.talkerCall)!;
    const update = updates.get(x.conf);
    const firstSpeaker = phraseEvents.find((e) => e.streamSid === speaker && e.phrase === x.c.phrase);
    const firstTalker = phraseEvents.find((e) => e.streamSid === talker);
    if (update === undefined) results.push({ c: x.c, latencyMs: NaN, endErrMs: NaN, eventMs: NaN, transcriptMs: NaN, ended: 'missed' });
    else if (firstSpeaker === undefined || (firstTalker !== undefined && firstTalker.wall < firstSpeaker.wall)) results.push({ c: x.c, latencyMs: NaN, endErrMs: NaN, eventMs: NaN, transcriptMs: NaN, ended: firstSpeaker === undefined && firstTalker === undefined ? 'missed' : 'talker' });
    else {
      const end = wallAtMedia(speaker, x.phraseEndMs);
      // The utterance holding the phrase's last word: the first final ending at most 300 ms before the phrase end.
      const final = (transcripts.get(speaker) ?? []).find((t) => t.endMs >= x.phraseEndMs - 300);
      results.push({ c: x.c, latencyMs: update - end, endErrMs: firstSpeaker.endMs - x.phraseEndMs, eventMs: firstSpeaker.wall - end, transcriptMs: final === undefined ? NaN : final.wall - end, ended: 'phrase' });
    }
  }
  // The next round starts once these streams are closed (their recognisers done, slots free),
  // so each round is 4 calls, not 4 plus the last round's stragglers.
  const deadline = Date.now() + 60_000;
  while (!calls.every((c) => ended.has(streamOfCall.get(c)!)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const last = results.slice(-confs.length).map((x) => `${x.c.voice} "${x.c.phrase}": ${x.ended === 'phrase' ? `${x.latencyMs.toFixed(0)} ms` : x.ended}`);
  console.error(`round ${r + 1}/${rounds}: ${last.join('; ')}`);
  if (args.includes('--verbose')) {
    console.error(JSON.stringify(phraseEvents.slice(-4)), JSON.stringify(lines.filter((l) => /decision|phrase|error|warn/i.test(String(l.msg))).slice(-6)));
  }
}
clearInterval(loadTimer);
const cpu = process.cpuUsage(cpu0);
const wallS = (performance.now() - started) / 1000;
const shares = coreShares(cores0, readCores());
const dropped = await metric('sink_dropped_frames_total', 'sink="transcription"');
await gateway.close();
await sim.close();
rmSync(dataDir, { recursive: true, force: true });

const childCpu = (() => {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
})();
const lat = results.filter((x) => x.ended === 'phrase').map((x) => x.latencyMs);
const byVoice = new Map<string, Result[]>();
for (const x of results) byVoice.set(x.c.voice, [...(byVoice.get(x.c.voice) ?? []), x]);
const rows = [...byVoice].map(([v, xs]) => {
  const l = xs.filter((x) => x.ended === 'phrase').map((x) => x.latencyMs);
  return [v, `${l.length}/${xs.length}`, l.length ? percentile(l, 0.5).toFixed(0) : '–', l.length ? percentile(l, 0.95).toFixed(0) : '–', l.length ? Math.max(...l).toFixed(0) : '–'];
});
rows.push(['**all**', `${lat.length}/${results.length}`, percentile(lat, 0.5).toFixed(0), percentile(lat, 0.95).toFixed(0), Math.max(...lat).toFixed(0)]);
const endErr = results.filter((x) => x.ended === 'phrase').map((x) => x.endErrMs);

console.log(`### Phrase end → UpdateConference (bench/phrase-latency.bench.ts)\n`);
console.log(`${machineLine()}. ${rounds} rounds of ${CONFERENCES_PER_ROUND} conferences = ${CONFERENCES_PER_ROUND * 2} calls at once (speaker: a held-out clip ending with its phrase + ${SPEAKER_TAIL_MS / 1000} s silence; talker: non-matching speech); rules for all ${heldout.length} held-out phrases.\n`);
console.log(mdTable(['speaker voice', 'conference ended by the phrase', 'latency p50 ms', 'p95 ms', 'max ms'], rows, ['l', 'r', 'r', 'r', 'r']) + '\n');
const events = results.filter((x) => x.ended === 'phrase').map((x) => x.eventMs);
console.log(`Ended by a false alarm on the talker's speech: ${results.filter((x) => x.ended === 'talker').length}; missed: ${results.filter((x) => x.ended === 'missed').length}. Detected phrase end − true end: median ${percentile(endErr, 0.5).toFixed(0)} ms. Phrase end → the engine's phrase event: p50 ${percentile(events, 0.5).toFixed(0)} ms, p95 ${percentile(events, 0.95).toFixed(0)} ms (the rest is the rule and the REST call).\n`);
// What the decisions waited for: a phrase event before the phrase's transcript was decided by the
// spotter alone (trusted, or the verifier's wait for the transcript ran out); after it, by the transcript.
const decided = results.filter((x) => x.ended === 'phrase');
const before = decided.filter((x) => !(x.transcriptMs <= x.eventMs));
const after = decided.filter((x) => x.transcriptMs <= x.eventMs);
const ms = (xs: Result[], f: (x: Result) => number) => (xs.length === 0 ? '–' : `p50 ${percentile(xs.map(f), 0.5).toFixed(0)} ms, p95 ${percentile(xs.map(f), 0.95).toFixed(0)} ms`);
const lags = decided.filter((x) => Number.isFinite(x.transcriptMs));
console.log(
  `What the decisions waited for: ${before.length} decided before the phrase's transcript came (the spot: trusted, or its wait for the transcript ran out; latency ${ms(before, (x) => x.latencyMs)}), ` +
    `${after.length} once it came (${ms(after, (x) => x.latencyMs)}). Phrase end → the phrase's final transcript: ${ms(lags, (x) => x.transcriptMs)} (${lags.length} of ${decided.length}).\n`,
);
console.log(
  `Capacity: ${transcribedSnapshots.filter(Boolean).length}/${transcribedSnapshots.length} tracks "transcribed" in /v1/streams with all four live; engine dropped frames (sink_dropped_frames_total{sink="transcription"}): ${dropped}. ` +
    `Load while measured: ${wallS.toFixed(0)} s wall; this process ${((cpu.user + cpu.system) / 1e6).toFixed(0)} s CPU, recognisers ${childCpu.toFixed(0)} s CPU (${((100 * ((cpu.user + cpu.system) / 1e6 + childCpu)) / wallS / cpus().length).toFixed(0)} % of ${cpus().length} cores); ` +
    `machine busy ${shares.map((s) => `${s.busyPct.toFixed(0)} %`).join(' / ')} per core; 1-min load average ${load.length ? `${Math.min(...load).toFixed(1)}-${Math.max(...load).toFixed(1)}` : loadavg()[0]!.toFixed(1)}.`,
);
