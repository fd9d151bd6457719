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
import {
  createSpeechEngine,
  createTranscriptionSinkFactory,
  defaultEngineName,
  TranscriptWebhook,
  type TranscriptionSinkFactory,
} from '../sinks/transcription/index.js';
import type { GatewayConfig } from './config.js';
import { EventBus } from '../core/events.js';
import { createLogger } from './logger.js';
import type { GatewayMetrics } from './metrics.js';
import { Gateway } from './server.js';
import { transcriptsSse } from './transcripts-sse.js';
import { twilioParts } from './twilio-wiring.js';

export async function createAppGateway(config: GatewayConfig, log: Logger = createLogger(config.logLevel)): Promise<Gateway> {
  // A bad rules file stops start-up here, one line per mistake, before anything listens.
  const rules = config.rulesFile === undefined ? [] : await loadRules(config.rulesFile);
  // Repair recordings a crash left as .partial before any new stream can open one.
  const recovery = await recoverPartialRecordings(config.dataDir, log);
  if (recovery.recovered.length + recovery.failed.length > 0) {
    log.warn({ recovered: recovery.recovered.length, failed: recovery.failed.length }, 'repaired partial recordings from an earlier crash');
  }
  const bus = new EventBus(log);
  const sinkFactories: SinkFactory[] = [
    createRecordingSinkFactory({ dataDir: config.dataDir, format: config.recordingFormat, bufferMs: config.recordingBufferMs }),
    // Speech/silence and the media clock for the conditions engine.
    createLevelSinkFactory({ bus }),
  ];
  const engineName = config.transcription ?? defaultEngineName();
  let transcription: TranscriptionSinkFactory | null = null;
  if (engineName !== 'none') {
    // The phrases rules name are also keyword-spotted: cheap, and reliable where the full
    // transcript is not.
    const phrases = rules.flatMap((r) => (r.when.kind === 'phrase' ? r.when.phrases : []));
    transcription = createTranscriptionSinkFactory({
      engine: createSpeechEngine(engineName, { log }),
      dataDir: config.dataDir,
      maxStreams: config.transcriptionMaxStreams,
      phrases,
      bus,
    });
    sinkFactories.push(transcription);
  }
  log.info({ transcription: engineName, rules: rules.length }, 'sinks configured');
  // REST client, per-call token guard, /v1 admin API and /twilio webhooks. A conditions engine
  // plugs in through twilio.conferences (endConference, onConferenceEnd).
  const twilio = twilioParts(config, log, { adminExtensions: [transcriptsSse] });
  const gateway = new Gateway({ config, log, bus, sinkFactories, checkStart: twilio.checkStart, routes: twilio.routes });
  countTranscripts(gateway, bus, transcription);
  if (transcription !== null) gateway.metrics.observeTranscription(transcription.stats);
  if (config.transcriptWebhookUrl !== undefined) {
    const webhook = new TranscriptWebhook({ url: config.transcriptWebhookUrl, log });
    webhook.attach(bus);
    gateway.metrics.observeWebhook(webhook.stats);
    gateway.onClose(() => webhook.close());
  }
  // Rules and the admin API share one once-only end per conference (without credentials the
  // admin API keeps its "not configured" answer).
  const conditions = attachConditions(gateway, { rules, twilio: twilio.client });
  if (twilio.client !== null) twilio.conferences.endConference = conditions.endConferenceHook();
  twilio.conferences.onConferenceEnd((event) => {
    conditions.onConferenceEnded(event.conferenceSid);
    bus.emit('conference-end', event);
  });
  return gateway;
}

/** transcripts_total{kind}, and the engine's latency samples moved into their histogram once a second. */
function countTranscripts(gateway: Gateway, bus: EventBus, transcription: TranscriptionSinkFactory | null): void {
  const metrics: GatewayMetrics = gateway.metrics;
  if (transcription !== null) {
    const samples = transcription.stats.resultLatencyMs;
    let seen = 0;
    const timer = setInterval(() => {
      const fresh = Math.min(samples.count - seen, 1024);
      if (fresh <= 0) return;
      const values = samples.values();
      for (let i = values.length - fresh; i < values.length; i++) metrics.transcriptLatency.observe(values[i]! / 1000);
      seen = samples.count;
    }, 1000);
    timer.unref();
    gateway.onClose(() => clearInterval(timer));
  }
  const finals = metrics.transcripts.labels('final');
  const partials = metrics.transcripts.labels('partial');
  bus.on('transcript', (t) => {
    if (!t.isFinal) {
      partials.inc();
      return;
    }
    finals.inc();
  });
}
