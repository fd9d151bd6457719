/**
 * Several real `streamgate start` processes behind one real redis-server, with the Twilio
 * emulator in the test process: each gateway on its own free port with its own PUBLIC_URL (so
 * the emulator dials the process the stream was asked of) and data dir.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sim } from '../../src/emulator/index.js';
import { computeSignature } from '../../src/twilio/signature.js';
import { runCli, type CliProcess } from '../helpers/process.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { freePort } from '../helpers/ports.js';
import { startTestSim } from '../helpers/sim.js';
import { waitFor } from '../helpers/wait.js';

export interface GatewayProcess {
  name: string;
  http: string;
  dataDir: string;
  cli: CliProcess;
}

export interface Cluster {
  redis: RedisServer;
  sim: Sim;
  accountSid: string;
  authToken: string;
  dir: string;
  procs: GatewayProcess[];
  start(name: string, env?: Record<string, string>): Promise<GatewayProcess>;
  /** POST /v1/calls/{callSid}/streams on `p` (in a conference, or alone without one); returns the StreamSid. */
  stream(p: GatewayProcess, callSid: string, conferenceSid?: string): Promise<string>;
  /** A signed conference callback to `p`; resolves to the HTTP status. */
  conferenceEvent(p: GatewayProcess, params: Record<string, string>): Promise<number>;
  /** A signed Twilio callback to `path` on `p` (as a balancer may deliver it to any process); resolves to the HTTP status. */
  callback(p: GatewayProcess, path: string, params: Record<string, string>): Promise<number>;
  /** GET /v1/streams on `p`. */
  streams(p: GatewayProcess): Promise<{ streamSid: string; callSid: string; owner?: string; frames: number }[]>;
  metric(p: GatewayProcess, name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export async function startCluster(opts: { rules: string; redisArgs?: string[] }): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-multi-'));
  const rulesFile = join(dir, 'rules.yaml');
  await writeFile(rulesFile, opts.rules);
  const redis = await startRedis({ args: opts.redisArgs });
  const sim = await startTestSim({ speed: 1 });
  const { accountSid, authToken } = sim;
  const procs: GatewayProcess[] = [];
  const cluster: Cluster = {
    redis,
    sim,
    accountSid,
    authToken,
    dir,
    procs,
    async start(name, env = {}) {
      const port = await freePort();
      const http = `http://127.0.0.1:${port}`;
      const dataDir = join(dir, name);
      const cli = runCli(['start'], {
        PORT: String(port),
        PUBLIC_URL: http,
        TWILIO_ACCOUNT_SID: accountSid,
        TWILIO_AUTH_TOKEN: authToken,
        TWILIO_API_URL: sim.url,
        STREAMGATE_DATA_DIR: dataDir,
        TRANSCRIPTION: 'none',
        RULES_FILE: rulesFile,
        REDIS_URL: redis.url,
        LOG_LEVEL: 'debug',
        // A shared, loaded test machine: event-loop stalls must not refuse the streams under test.
        MAX_EVENT_LOOP_DELAY_MS: '10000',
        ...env,
      });
      const p = { name, http, dataDir, cli };
      procs.push(p);
      await cli.waitForLine((l) => l.msg === 'streamgate listening', 60_000);
      return p;
    },
    async stream(p, callSid, conferenceSid) {
      const res = await fetch(`${p.http}/v1/calls/${callSid}/streams`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ track: 'inbound_track', conferenceSid }),
      });
      const body = (await res.json()) as { streamSid?: string };
      if (res.status !== 201 || body.streamSid === undefined) throw new Error(`CreateStream on ${p.name}: ${res.status} ${JSON.stringify(body)}`);
      return body.streamSid;
    },
    conferenceEvent(p, params) {
      return cluster.callback(p, '/twilio/conference-events', params);
    },
    async callback(p, path, params) {
      const url = `${p.http}${path}`;
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': computeSignature(authToken, url, params) },
        body: new URLSearchParams(params).toString(),
      });
      return res.status;
    },
    async streams(p) {
      const res = await fetch(`${p.http}/v1/streams`);
      return ((await res.json()) as { streams: { streamSid: string; callSid: string; owner?: string; frames: number }[] }).streams;
    },
    async metric(p, name, labels = {}) {
      const text = await (await fetch(`${p.http}/metrics`)).text();
      const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
      let sum = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue;
        const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
        if (m === null || m[1] !== name || !want.every((w) => (m[2] ?? '').includes(w))) continue;
        sum += Number(m[3]);
      }
      return sum;
    },
    async close() {
      for (const p of procs) if (p.cli.child.exitCode === null && p.cli.child.signalCode === null) p.cli.child.kill('SIGKILL');
      await Promise.all(procs.map((p) => p.cli.exited));
      await sim.close();
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** waitFor polling every 100 ms: these conditions mostly ask a process over HTTP. */
export function until(pred: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  return waitFor(pred, ms, what, 100);
}
