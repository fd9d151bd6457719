/**
 * Composes the production gateway from configuration: sinks, Twilio client, routes and rules.
 * `createGateway` in server.ts stays free of these choices so tests can build lean gateways.
 */
import type { Logger } from 'pino';
import type { SinkFactory } from '../sinks/sink.js';
import type { GatewayConfig } from './config.js';
import { createLogger } from './logger.js';
import { Gateway } from './server.js';
import { twilioParts } from './twilio-wiring.js';

export async function createAppGateway(config: GatewayConfig, log: Logger = createLogger(config.logLevel)): Promise<Gateway> {
  const sinkFactories: SinkFactory[] = [];
  // REST client, per-call token guard, /v1 admin API and /twilio webhooks. A conditions engine
  // plugs in through twilio.conferences (endConference, onConferenceEnd).
  const twilio = twilioParts(config, log);
  return new Gateway({ config, log, sinkFactories, checkStart: twilio.checkStart, routes: twilio.routes });
}
