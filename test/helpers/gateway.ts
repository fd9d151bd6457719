/** Starts a real gateway on 127.0.0.1 (port 0) for a test, with a captured log. */
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import { loadConfig, type GatewayConfig } from '../../src/gateway/config.js';
import { createLogger } from '../../src/gateway/logger.js';
import { Gateway, type GatewayParts } from '../../src/gateway/server.js';

export interface TestGateway {
  gw: Gateway;
  http: string;
  ws: string;
  logs: string[];
  close(): Promise<void>;
}

export async function startTestGateway(env: Record<string, string> = {}, parts: Omit<GatewayParts, 'config'> = {}): Promise<TestGateway> {
  const config: GatewayConfig = loadConfig({ HOST: '127.0.0.1', PORT: '0', TRANSCRIPTION: 'none', LOG_LEVEL: 'debug', ...env });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const gw = new Gateway({ config, log: createLogger(config.logLevel, sink), defaultMetrics: false, ...parts });
  const http = await gw.listen(0, '127.0.0.1');
  return { gw, http, ws: http.replace(/^http/, 'ws') + '/media', logs, close: () => gw.close() };
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

/** Polls until `fn` returns true (or throws after `ms`). */
export async function waitFor(fn: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
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
