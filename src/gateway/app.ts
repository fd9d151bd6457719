/**
 * Composes the production gateway from configuration: sinks, Twilio client, routes and rules.
 * `createGateway` in server.ts stays free of these choices so tests can build lean gateways.
 */
import type { Logger } from 'pino';
import { attachConditions } from '../conditions/index.js';
import { loadRules } from '../conditions/rules.js';
import { createLevelSinkFactory } from '../sinks/level/level-sink.js';
import { createRecordingSinkFactory, recoverPartialRecordings } from '../sinks/recording/index.js';
import type { SinkFactory } from '../sinks/sink.js';
import type { GatewayConfig } from './config.js';
import { createLogger } from './logger.js';
import { Gateway } from './server.js';
import { twilioParts } from './twilio-wiring.js';

export async function createAppGateway(config: GatewayConfig, log: Logger = createLogger(config.logLevel)): Promise<Gateway> {
  // A bad rules file stops start-up here, one line per mistake, before anything listens.
  const rules = config.rulesFile === undefined ? [] : await loadRules(config.rulesFile);
  // Repair recordings a crash left as .partial before any new stream can open one.
  const recovery = await recoverPartialRecordings(config.dataDir, log);
  if (recovery.recovered.length + recovery.failed.length > 0) {
    log.warn({ recovered: recovery.recovered.length, failed: recovery.failed.length }, 'repaired partial recordings from an earlier crash');
  }
  const sinkFactories: SinkFactory[] = [
    createRecordingSinkFactory({ dataDir: config.dataDir, format: config.recordingFormat, bufferMs: config.recordingBufferMs }),
    // Speech/silence and the media clock for the conditions engine; the bus exists once the gateway does.
    createLevelSinkFactory({ bus: () => gateway.bus }),
  ];
  // REST client, per-call token guard, /v1 admin API and /twilio webhooks. A conditions engine
  // plugs in through twilio.conferences (endConference, onConferenceEnd).
  const twilio = twilioParts(config, log);
  const gateway = new Gateway({ config, log, sinkFactories, checkStart: twilio.checkStart, routes: twilio.routes });
  // Rules and the admin API share one once-only end per conference (without credentials the
  // admin API keeps its "not configured" answer).
  const conditions = attachConditions(gateway, { rules, twilio: twilio.client });
  if (twilio.client !== null) twilio.conferences.endConference = conditions.endConferenceHook();
  twilio.conferences.onConferenceEnd((event) => conditions.onConferenceEnded(event.conferenceSid));
  return gateway;
}
