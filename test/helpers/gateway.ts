/**
 * Real gateways for tests, on 127.0.0.1 with a captured log:
 * - {@link startTestGateway}: the media path only (sessions, the sinks a test gives it);
 * - {@link startTwilioGateway}: plus the control plane as the app builds it (REST client, start
 *   guard, /v1 admin API, /twilio webhooks);
 * - {@link startTwilioStack}: that gateway with the Twilio emulator (src/emulator) as its Twilio;
 * the whole app with the emulator is test/helpers/stack.ts.
 */
import WebSocket from 'ws';
import type { Sim, SimOptions } from '../../src/emulator/index.js';
import type { EndConference } from '../../src/core/conference.js';
import { EventBus } from '../../src/core/events.js';
import type { AdminExtension } from '../../src/gateway/control/admin-routes.js';
import { loadConfig, type GatewayConfig } from '../../src/gateway/config.js';
import { restEndConference } from '../../src/gateway/control/conference-end.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { Gateway, type GatewayParts } from '../../src/gateway/server.js';
import { restClientFromConfig, twilioControl, type TwilioControl } from '../../src/gateway/control/twilio-wiring.js';
import type { SinkFactory } from '../../src/sinks/sink.js';
import { captureLog, type CapturedLog } from './log.js';
import { freePort } from './ports.js';
import { startTestSim } from './sim.js';

export { waitFor } from './wait.js';

export const TEST_ENV = { HOST: '127.0.0.1', PORT: '0', TRANSCRIPTION: 'none', LOG_LEVEL: 'debug' };

export interface TestGateway {
  gw: Gateway;
  http: string;
  ws: string;
  logs: string[];
  /** Parsed log lines. */
  lines(): Record<string, unknown>[];
  close(): Promise<void>;
}

/** What a test may hand the gateway; the rest (log, metrics, bus) is made here unless given. */
export type TestGatewayParts = Partial<Omit<GatewayParts, 'config' | 'log'>>;

/**
 * Starts a gateway on 127.0.0.1 at `PORT` from `env` (0 unless given, so a test that must put
 * the real address in PUBLIC_URL can reserve one first with freePort).
 */
export async function startTestGateway(env: Record<string, string> = {}, parts: TestGatewayParts = {}, captured: CapturedLog = captureLog()): Promise<TestGateway> {
  const config: GatewayConfig = loadConfig({ ...TEST_ENV, ...env });
  const log = captured.log;
  const gw = new Gateway({
    config,
    log,
    metrics: parts.metrics ?? new GatewayMetrics({ defaultMetrics: false }),
    bus: parts.bus ?? new EventBus(log),
    sinkFactories: parts.sinkFactories,
    checkStart: parts.checkStart,
    trustConference: parts.trustConference,
    routes: parts.routes,
  });
  const http = await gw.listen(config.port, '127.0.0.1');
  return { gw, http, ws: http.replace(/^http/, 'ws') + '/media', logs: captured.logs, lines: captured.lines, close: () => gw.close() };
}

export interface TwilioTestGateway extends TestGateway {
  twilio: TwilioControl;
}

export interface TwilioTestOptions {
  /** Given the plain REST end, returns what `POST /v1/conferences/{sid}/end` calls (the app gives it the conditions engine's). */
  endConference?: (rest: EndConference) => EndConference;
  adminExtensions?: readonly AdminExtension[];
  bus?: EventBus;
}

/** A gateway with the control plane built as app.ts builds it (no conditions engine, the sinks given). */
export async function startTwilioGateway(env: Record<string, string> = {}, sinkFactories: SinkFactory[] = [], opts: TwilioTestOptions = {}): Promise<TwilioTestGateway> {
  const captured = captureLog();
  const log = captured.log;
  const config = loadConfig({ ...TEST_ENV, ...env });
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const bus = opts.bus ?? new EventBus(log);
  const client = restClientFromConfig(config, log, metrics.observeTwilio);
  const rest = restEndConference(client, log);
  const endConference = opts.endConference?.(rest) ?? rest;
  const twilio = twilioControl({ config, log, bus, client, endConference, adminExtensions: opts.adminExtensions });
  const tg = await startTestGateway(env, { metrics, bus, sinkFactories, checkStart: twilio.checkStart, trustConference: twilio.trustConference, routes: twilio.routes }, captured);
  return { ...tg, twilio };
}

export interface TwilioStack extends TwilioTestGateway {
  /** The emulator: TWILIO_API_URL, with the gateway's credentials. */
  sim: Sim;
  /** PUBLIC_URL: the gateway's own loopback address, so the streams it asks for dial it back. */
  publicUrl: string;
  /** Stops the emulator (its streams get `stop`), then the gateway. */
  close(): Promise<void>;
}

/**
 * {@link startTwilioGateway} with the Twilio emulator as its Twilio: shared credentials (a random
 * auth token unless `sim.authToken`), PUBLIC_URL on a port reserved first. `sim.speed` defaults to
 * real time, so a call's endless silence costs little.
 */
export async function startTwilioStack(
  env: Record<string, string> = {},
  sinkFactories: SinkFactory[] = [],
  opts: TwilioTestOptions & { sim?: Partial<SimOptions> } = {},
): Promise<TwilioStack> {
  const sim = await startTestSim({ speed: 1, ...opts.sim });
  try {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const gw = await startTwilioGateway(
      { PORT: String(port), PUBLIC_URL: publicUrl, TWILIO_ACCOUNT_SID: sim.accountSid, TWILIO_AUTH_TOKEN: sim.authToken, TWILIO_API_URL: sim.url, ...env },
      sinkFactories,
      opts,
    );
    return {
      ...gw,
      sim,
      publicUrl,
      async close() {
        await sim.close();
        await gw.close();
      },
    };
  } catch (err) {
    await sim.close();
    throw err;
  }
}

export interface ReplayResult {
  closeCode: number;
  closeReason: string;
}

/** Opens a WebSocket, sends each message as its own text frame, waits until the server closes or `linger` ms pass. */
export function replay(url: string, messages: (string | Buffer)[], opts: { headers?: Record<string, string>; lingerMs?: number; closeAfter?: boolean } = {}): Promise<ReplayResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: opts.headers, perMessageDeflate: false });
    let timer: NodeJS.Timeout | undefined;
    ws.on('open', () => {
      for (const m of messages) ws.send(m, { binary: Buffer.isBuffer(m) });
      if (opts.closeAfter) ws.close(1000);
      timer = setTimeout(() => ws.close(1000), opts.lingerMs ?? 2000);
    });
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ closeCode: code, closeReason: reason.toString() });
    });
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', (err) => {
      if (!('status' in err)) reject(err);
    });
  });
}

/** Reads one metric sample from the Prometheus text (0 when absent). */
export async function metricValue(http: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(http + '/metrics')).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(\{([^}]*)\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[3] ? m[3].split(',') : [];
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[4]);
  }
  return 0;
}
