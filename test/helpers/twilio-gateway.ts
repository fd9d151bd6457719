/**
 * A test gateway wired as production wires Twilio (twilioParts: REST client, start guard,
 * /v1 admin API, /twilio webhooks), with its log captured line by line. It listens on
 * 127.0.0.1 at `PORT` (0 unless given, so a test that must put the real address in
 * PUBLIC_URL can reserve a port first with {@link freePort}).
 */
import { createServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { SinkFactory } from '../../src/sinks/sink.js';
import { loadConfig } from '../../src/gateway/config.js';
import { createLogger } from '../../src/gateway/logger.js';
import { Gateway } from '../../src/gateway/server.js';
import { twilioParts, type TwilioParts, type TwilioPartsOptions } from '../../src/gateway/twilio-wiring.js';
import type { TestGateway } from './gateway.js';

export interface TwilioTestGateway extends TestGateway {
  twilio: TwilioParts;
  /** Parsed log lines. */
  lines(): Record<string, unknown>[];
}

export const TEST_ENV = { HOST: '127.0.0.1', PORT: '0', TRANSCRIPTION: 'none', LOG_LEVEL: 'debug' };

export async function startTwilioGateway(env: Record<string, string> = {}, sinkFactories: SinkFactory[] = [], opts: TwilioPartsOptions = {}): Promise<TwilioTestGateway> {
  const logs: string[] = [];
  const log = createLogger(
    'debug',
    new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk));
        cb();
      },
    }),
  );
  const config = loadConfig({ ...TEST_ENV, ...env });
  const twilio = twilioParts(config, log, opts);
  const gw = new Gateway({ config, log, defaultMetrics: false, sinkFactories, checkStart: twilio.checkStart, routes: twilio.routes });
  const http = await gw.listen(config.port, '127.0.0.1');
  return {
    gw,
    http,
    ws: http.replace(/^http/, 'ws') + '/media',
    logs,
    close: () => gw.close(),
    twilio,
    lines: () => logs.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A port free a moment ago on 127.0.0.1 (bound, then released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
