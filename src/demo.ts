/**
 * `streamgate demo`: the whole loop on one machine, offline. Two emulated phones run
 * `<Dial><Conference statusCallback=…>` TwiML into a two-party conference and speak; the
 * gateway streams each participant on participant-join, records and transcribes them, and a
 * rule ends the conference when Bob says "end the conference". Prints what happens as it happens, then a summary; exits 0 when the
 * conference was ended by the phrase rule, Twilio's conference-end callback reached the gateway
 * and the recordings were written.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { readClipMulaw, speechClip } from './sinks/transcription/speech-fixtures.js';
import { createAppGateway } from './gateway/app.js';
import { loadConfig } from './gateway/config.js';
import { createLogger } from './gateway/logger.js';
import { newSid } from './twilio/sids.js';
import { startSim } from './emulator/index.js';

const RULES = `rules:
  - name: hang-up-phrase
    when: { phrase: ["end the conference"] }
    action: end-conference
  - name: too-long
    when: { maxDurationSeconds: 60 }
    action: end-conference
`;

export async function runDemo(_argv: readonly string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const t0 = Date.now();
  const say = (line: string) => out.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
  const dataDir = resolve(process.env.STREAMGATE_DATA_DIR ?? './data', 'demo');
  await mkdir(dataDir, { recursive: true });
  const rulesFile = join(dataDir, 'rules.yaml');
  await writeFile(rulesFile, RULES);

  const accountSid = newSid('account');
  const authToken = newSid('account').slice(2); // 32 hex digits, like a real auth token
  const sim = await startSim({ accountSid, authToken, port: 0, speed: 1 });
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: publicUrl,
    TWILIO_ACCOUNT_SID: accountSid,
    TWILIO_AUTH_TOKEN: authToken,
    TWILIO_API_URL: sim.url,
    STREAMGATE_DATA_DIR: dataDir,
    RULES_FILE: rulesFile,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  const gateway = await createAppGateway(config, { log: createLogger(config.logLevel) });
  say(`gateway on ${publicUrl} (media ${publicUrl.replace('http', 'ws')}/media), Twilio emulator on ${sim.url}`);
  say(`live console: ${publicUrl}/ (open it now to watch the conference)`);
  say(`transcription: ${config.transcription ?? 'auto'}; rules: phrase "end the conference", max 60 s; data in ${dataDir}`);

  const transcripts: string[] = [];
  gateway.bus.on('stream-start', (info) => say(`stream ${info.streamSid} started for call ${info.callSid} (conference ${info.conferenceSid})`));
  gateway.bus.on('transcript', (t) => {
    if (!t.isFinal) return;
    transcripts.push(`${t.callSid} ${t.track} [${t.startMs}-${t.endMs} ms]: ${t.text}`);
    say(`transcript (${t.track}, ${t.startMs}-${t.endMs} ms): "${t.text}"`);
  });
  gateway.bus.on('phrase', (p) => say(`phrase spotted: "${p.phrase}" at ${p.startMs}-${p.endMs} ms on ${p.streamSid}`));
  gateway.bus.on('stream-end', (info, reason) => say(`stream ${info.streamSid} ended (${reason})`));
  // Twilio's signed conference-end callback, as the gateway verified and handled it.
  const conferenceEnds: string[] = [];
  gateway.bus.on('conference-end', (e) => {
    conferenceEnds.push(e.conferenceSid);
    say(`gateway received conference-end for ${e.conferenceSid} (${e.reason ?? 'no reason given'})`);
  });
  await gateway.listen();

  const alice = speechClip('demo-alice.ulaw');
  const bob = speechClip('demo-bob.ulaw');
  const aliceAudio = readClipMulaw(alice);
  // Bob waits for Alice to finish, then answers.
  const bobAudio = Buffer.concat([Buffer.alloc(aliceAudio.length + 8 * 700, 0xff), readClipMulaw(bob)]);
  // Each phone runs TwiML, as a real call to your number would: dial into the conference,
  // whose status callbacks go to the gateway (which then streams each participant).
  const dialIn = (label: string): string =>
    `<Response><Dial><Conference participantLabel="${label}" statusCallback="${publicUrl}/twilio/conference-events" ` +
    `statusCallbackEvent="start end join leave">streamgate-demo</Conference></Dial></Response>`;
  await sim.createCall({ twiml: dialIn('alice'), audio: { type: 'mulaw', data: aliceAudio }, hangupOnAudioEnd: false });
  await sim.createCall({ twiml: dialIn('bob'), audio: { type: 'mulaw', data: bobAudio }, hangupOnAudioEnd: false });
  const conference = await sim.waitUntil(() => sim.state().conferences.find((c) => c.friendlyName === 'streamgate-demo'), { timeoutMs: 10_000 });
  say(`Alice ("${alice.text}") and Bob ("${bob.text}") dialled into conference ${conference.sid} (<Dial><Conference>)`);

  let ended = false;
  try {
    await sim.waitForConferenceStatus(conference.sid, 'completed', { timeoutMs: 90_000 });
    ended = true;
  } catch {
    say('the conference did not end within 90 s');
  }
  // The emulator logs a request once it has answered it; wait for that entry.
  await sim.waitForRequests({ operation: 'UpdateConference' }, 1, { timeoutMs: 5000 }).catch(() => undefined);
  const updates = sim.requests({ operation: 'UpdateConference' });
  for (const r of updates) say(`Twilio received UpdateConference ${JSON.stringify(r.params)} -> HTTP ${r.status}`);
  await sim.callbacksIdle().catch(() => undefined);
  // Which rules held, from the gateway's own count (conditions_triggered_total{rule}).
  const fired = (await gateway.metrics.conditionsTriggered.get()).values.filter((v) => v.value > 0).map((v) => String(v.labels.rule));
  await gateway.close();
  await sim.close();

  const recordings = await listFiles(join(dataDir, 'recordings'), '.wav');
  const transcriptFiles = await listFiles(join(dataDir, 'transcripts'), '.jsonl');
  out.write('\nsummary\n');
  out.write(`  conference ${conference.sid}: ${ended ? 'ended' : 'NOT ended'} after ${((Date.now() - t0) / 1000).toFixed(1)} s, UpdateConference requests: ${updates.length}\n`);
  out.write(`  rules fired: ${fired.length === 0 ? 'none' : fired.join(', ')}\n`);
  out.write(`  conference-end callback received by the gateway: ${conferenceEnds.includes(conference.sid) ? 'yes' : 'no'}\n`);
  for (const f of recordings) {
    const manifest = JSON.parse(await readFile(f.replace(/\.wav$/, '.json'), 'utf8')) as { durationMs: number; framesReceived: number; framesLost: number };
    out.write(`  recording ${f} (${(manifest.durationMs / 1000).toFixed(2)} s, ${manifest.framesReceived} frames, ${manifest.framesLost} lost)\n`);
  }
  for (const f of transcriptFiles) out.write(`  transcript ${f}\n`);
  for (const t of transcripts) out.write(`    ${t}\n`);
  // Ended by the phrase rule (and only by it), and Twilio's conference-end reached the gateway.
  const byPhrase = fired.length === 1 && fired[0] === 'hang-up-phrase';
  const ok = ended && updates.length === 1 && recordings.length >= 2 && byPhrase && conferenceEnds.includes(conference.sid);
  out.write(ok ? '  result: OK\n' : '  result: FAILED\n');
  return ok ? 0 : 1;
}

async function listFiles(dir: string, suffix: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true });
    return entries.filter((e) => e.endsWith(suffix)).map((e) => join(dir, e)).sort();
  } catch {
    return [];
  }
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolvePort(p));
    });
  });
}
