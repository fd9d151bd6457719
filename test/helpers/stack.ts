/**
 * The production gateway (createAppGateway) and the Twilio emulator side by side on loopback,
 * for the end-to-end suites (faults, capture, transcription): shared credentials, PUBLIC_URL on a
 * free port, TWILIO_API_URL = the emulator, a temp data dir, the gateway's log lines and its
 * stream-end reasons.
 */
import type { SessionSummary } from '../../src/gateway/media/stream-session.js';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAppGateway } from '../../src/gateway/app.js';
import { loadConfig } from '../../src/gateway/config.js';
import { createLogger } from '../../src/gateway/logger.js';
import type { Gateway } from '../../src/gateway/server.js';
import type { CloseReason } from '../../src/core/stream.js';
import type { RecordingManifest } from '../../src/sinks/recording/manifest.js';
import { toneSource } from '../../src/emulator/audio-source.js';
import type { Sim } from '../../src/emulator/index.js';
import { freePort } from './ports.js';
import { startTestSim } from './sim.js';
import { waitFor } from './wait.js';

export interface Stack {
  sim: Sim;
  gateway: Gateway;
  /** http://127.0.0.1:port of the gateway. */
  http: string;
  dataDir: string;
  /** stream-end reasons the gateway's bus reported, by StreamSid. */
  ends: Map<string, CloseReason>;
  started: Set<string>;
  /** The gateway's `stream ended` log lines (the session's own accounting), by StreamSid. */
  summaries: Map<string, SessionSummaryLine>;
  /** Every log line of the gateway (info and up), parsed. */
  lines: Record<string, unknown>[];
  /** Stops both and removes the data dir. */
  close(): Promise<void>;
}

/** The session summary the gateway logs once per stream (stream-session.ts `summary()`). */
export interface SessionSummaryLine extends SessionSummary {
  outcome: string;
}

/**
 * `speed`: the emulator's pacing (default 10× real time); `env`: gateway settings on top of the
 * defaults here (TRANSCRIPTION none, LOG_LEVEL warn).
 */
export async function startStack(opts: { rules?: string; speed?: number; env?: Record<string, string> } = {}): Promise<Stack> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sg-e2e-'));
  let rulesFile: string | undefined;
  if (opts.rules !== undefined) {
    rulesFile = join(dataDir, 'rules.yaml');
    await writeFile(rulesFile, opts.rules);
  }
  const sim = await startTestSim({ speed: opts.speed ?? 10 });
  const port = await freePort();
  const http = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: http,
    TWILIO_ACCOUNT_SID: sim.accountSid,
    TWILIO_AUTH_TOKEN: sim.authToken,
    TWILIO_API_URL: sim.url,
    STREAMGATE_DATA_DIR: dataDir,
    TRANSCRIPTION: 'none',
    LOG_LEVEL: 'warn',
    ...(rulesFile === undefined ? {} : { RULES_FILE: rulesFile }),
    ...opts.env,
  });
  // The test's own logger keeps info lines in memory (the per-stream summary among them) and
  // prints nothing.
  const summaries = new Map<string, SessionSummaryLine>();
  const lines: Record<string, unknown>[] = [];
  const capture = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of String(chunk).split('\n')) {
        if (line === '') continue;
        const o = JSON.parse(line) as Record<string, unknown>;
        lines.push(o);
        if (o.msg === 'stream ended' && typeof o.streamSid === 'string') summaries.set(o.streamSid, o as unknown as SessionSummaryLine);
      }
      cb();
    },
  });
  const gateway = await createAppGateway(config, { log: createLogger('info', capture) });
  const ends = new Map<string, CloseReason>();
  const started = new Set<string>();
  gateway.bus.on('stream-start', (info) => started.add(info.streamSid));
  gateway.bus.on('stream-end', (info, reason) => ends.set(info.streamSid, reason));
  await gateway.listen();
  return {
    sim,
    gateway,
    http,
    dataDir,
    ends,
    started,
    summaries,
    lines,
    async close() {
      await gateway.close();
      await sim.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Asks the gateway's admin API (loopback, no token) to stream a call; returns the StreamSid. */
export async function startStream(stack: Stack, callSid: string, track: 'inbound_track' | 'both_tracks' = 'inbound_track'): Promise<string> {
  const res = await fetch(`${stack.http}/v1/calls/${callSid}/streams`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ track }),
  });
  const body = (await res.json()) as { streamSid?: string };
  if (res.status !== 201 || body.streamSid === undefined) throw new Error(`CreateStream through the admin API: ${res.status} ${JSON.stringify(body)}`);
  return body.streamSid;
}

export async function waitForEnd(stack: Stack, streamSid: string, ms = 10_000): Promise<CloseReason> {
  await waitFor(() => stack.ends.has(streamSid), ms, `stream-end of ${streamSid}`);
  return stack.ends.get(streamSid)!;
}

export function recordingBase(stack: Stack, callSid: string, streamSid: string): string {
  return join(stack.dataDir, 'recordings', stack.sim.accountSid, callSid, streamSid);
}

export async function readManifest(base: string): Promise<RecordingManifest> {
  return JSON.parse(await readFile(base + '.json', 'utf8')) as RecordingManifest;
}

/** A 440 Hz tone as raw 8 kHz mu-law, whole 20 ms frames. */
export function toneMulaw(ms: number, hz = 440): Uint8Array {
  const src = toneSource(hz, ms);
  const out = new Uint8Array(src.frameCount * 160);
  for (let i = 0; i < src.frameCount; i++) out.set(src.bytes(i), i * 160);
  return out;
}
