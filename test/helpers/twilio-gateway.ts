/**
 * A test gateway wired as production wires Twilio (twilioParts: REST client, start guard,
 * /v1 admin API, /twilio webhooks), with its log captured line by line.
 */
import { Writable } from 'node:stream';
import type { SinkFactory } from '../../src/sinks/sink.js';
import { loadConfig } from '../../src/gateway/config.js';
import { createLogger } from '../../src/gateway/logger.js';
import { twilioParts, type TwilioParts } from '../../src/gateway/twilio-wiring.js';
import { startTestGateway, type TestGateway } from './gateway.js';

export interface TwilioTestGateway extends TestGateway {
  twilio: TwilioParts;
  /** Parsed log lines. */
  lines(): Record<string, unknown>[];
}

export const TEST_ENV = { HOST: '127.0.0.1', PORT: '0', TRANSCRIPTION: 'none', LOG_LEVEL: 'debug' };

export async function startTwilioGateway(env: Record<string, string> = {}, sinkFactories: SinkFactory[] = []): Promise<TwilioTestGateway> {
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
  const twilio = twilioParts(config, log);
  const tg = await startTestGateway(env, { log, sinkFactories, checkStart: twilio.checkStart, routes: twilio.routes });
  return { ...tg, logs, twilio, lines: () => logs.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
