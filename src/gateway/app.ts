/**
 * The one place the production gateway is put together, in dependency order: each part is built
 * once, from parts built before it, and receives them in its constructor (ARCHITECTURE.md
 * "Assembly"):
 *
 *   config → logger → metrics → bus → conference store → Twilio client → sinks → conditions
 *          → control plane (starter, start guard, routes) → gateway (sessions, media endpoint, HTTP)
 *
 * Nothing is patched afterwards. `Gateway` in server.ts stays free of these choices so tests can
 * build lean gateways from the same parts.
 */
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { ConditionsEngine, InMemoryConferenceStore, loadRules, type ConferenceStore, type Rule } from '../conditions/index.js';
import { EventBus } from '../core/events.js';
import { createLevelSinkFactory, type LevelSinkFactory } from '../sinks/level/level-sink.js';
import { createRecordingSinkFactory, GATEWAY_SPARE_STREAMS, recoverPartialRecordings } from '../sinks/recording/index.js';
import type { SinkFactory } from '../sinks/sink.js';
import {
  createPocketsphinxEngine,
  createSpeechEngine,
  createTranscriptionSinkFactory,
  defaultEngineName,
  isPocketsphinxInstalled,
  TranscriptWebhook,
  withLocalSpotting,
  type RemoteSpeechEngine,
} from '../sinks/transcription/index.js';
import type { GatewayConfig } from './config.js';
import { restEndConference } from './control/conference-end.js';
import { createLogger } from './logger.js';
import { GatewayMetrics } from './metrics.js';
import { Gateway } from './server.js';
import { SharedState } from './shared-state.js';
import { consoleRoutes } from './control/console.js';
import { transcriptsSse } from './control/transcripts-sse.js';
import { restClientFromConfig, twilioControl } from './control/twilio-wiring.js';

export interface AppOptions {
  log?: Logger;
  /** Node's default process metrics on /metrics (default true). */
  defaultMetrics?: boolean;
  /** Where conference end claims and audits live; default in memory (one process). */
  store?: ConferenceStore;
  /** Stream starts the recording keeps made ahead (default GATEWAY_SPARE_STREAMS; the warm-up's gateway needs few). */
  spareStreams?: number;
}

export async function createAppGateway(config: GatewayConfig, opts: AppOptions = {}): Promise<Gateway> {
  const log = opts.log ?? createLogger(config.logLevel);
  // A bad rules file stops start-up here, one line per mistake, before anything listens.
  const rules = config.rulesFile === undefined ? [] : await loadRules(config.rulesFile);
  // Repair recordings a crash left as .partial before any new stream can open one.
  // A cluster worker skips it: its siblings' live recordings are .partial too (the primary repaired before forking).
  if (!cluster.isWorker) await repairPartialRecordings(config.dataDir, log);

  const metrics = new GatewayMetrics({ defaultMetrics: opts.defaultMetrics });
  const bus = new EventBus(log);
  // REDIS_URL: conference state, the stream list, transcripts and the events stream shared with other processes.
  const shared = config.redisUrl === undefined ? null : new SharedState({ url: config.redisUrl, log, metrics });
  const store = opts.store ?? shared?.store ?? new InMemoryConferenceStore();
  const client = restClientFromConfig(config, log, metrics.observeTwilio);
  const sinks = createSinks(config, rules, { log, bus, metrics, spareStreams: opts.spareStreams ?? GATEWAY_SPARE_STREAMS });
  const conditions = new ConditionsEngine({ rules, bus, log: log.child({ component: 'conditions' }), metrics, twilio: client, store, peers: shared?.peers });
  const control = twilioControl({
    config,
    log,
    bus,
    client,
    // Rules and the admin API share one once-only end per conference; without credentials the
    // admin API keeps its "not configured" answer.
    endConference: client === null ? restEndConference(null, log) : conditions.endConferenceHook(),
    adminExtensions: [transcriptsSse],
    shared,
    levels: (streamSid) => sinks.level.levels(streamSid),
  });
  const gateway = new Gateway({ config, log, metrics, bus, sinkFactories: sinks.factories, checkStart: control.checkStart, trustConference: control.trustConference, routes: [...control.routes, consoleRoutes] });

  // Closed after every stream ended, so final transcripts and in-flight rule actions finish first.
  for (const close of sinks.closers) gateway.onClose(close);
  gateway.onClose(() => conditions.close());
  if (shared !== null) await shared.attach(gateway);
  // The recording's spare inodes are made before the first stream can start (factory.ts spareStreams).
  await sinks.ready;
  return gateway;
}

/** Repairs recordings a crash left as .partial (start-up, before any stream can open one). */
export async function repairPartialRecordings(dataDir: string, log: Logger): Promise<void> {
  const recovery = await recoverPartialRecordings(dataDir, log);
  if (recovery.recovered.length + recovery.failed.length > 0) {
    log.warn({ recovered: recovery.recovered.length, failed: recovery.failed.length }, 'repaired partial recordings from an earlier crash');
  }
}

interface Sinks {
  /** Every stream gets these, in this order. */
  factories: SinkFactory[];
  /** The level meter among them (its live levels feed GET /v1/streams and the console). */
  level: LevelSinkFactory;
  /** Run when the gateway closes, after the streams. */
  closers: (() => Promise<void> | void)[];
  /** Resolves when the sinks are ready for a burst of streams (the recording's spare inodes). */
  ready: Promise<void>;
}

/** The configured sinks: recording, the level meter, transcription (and its webhook) unless TRANSCRIPTION=none. */
function createSinks(config: GatewayConfig, rules: readonly Rule[], deps: { log: Logger; bus: EventBus; metrics: GatewayMetrics; spareStreams: number }): Sinks {
  const { log, bus, metrics, spareStreams } = deps;
  // Speech/silence and the media clock for the conditions engine; live levels for the console.
  const level = createLevelSinkFactory({ bus });
  const recording = createRecordingSinkFactory({
    dataDir: config.dataDir,
    format: config.recordingFormat,
    bufferMs: config.recordingBufferMs,
    maxGapMs: config.maxGapMs,
    maxBytes: config.recordingMaxMb * 2 ** 20,
    minFreeBytes: config.dataDirMinFreeMb * 2 ** 20,
    log,
    stats: metrics.recording,
    spareStreams,
    // The spare rings' shape: what the streams the gateway asks for itself record.
    spareChannels: config.autoStreamTrack === 'both_tracks' ? 2 : 1,
  });
  const factories: SinkFactory[] = [recording, level];
  const closers: (() => Promise<void> | void)[] = [];
  const engineName = config.transcription ?? defaultEngineName();
  let remoteEngine: string | null = null;
  if (engineName !== 'none') {
    // The phrases rules name are also keyword-spotted: cheap, and reliable where the full
    // transcript is not.
    const phrases = rules.flatMap((r) => (r.when.kind === 'phrase' ? r.when.phrases : []));
    const phraseThresholds = new Map<string, number>();
    for (const r of rules) {
      if (r.when.kind !== 'phrase' || r.when.threshold === null) continue;
      for (const p of r.when.phrases) phraseThresholds.set(p, Math.min(r.when.threshold, phraseThresholds.get(p) ?? Infinity));
    }
    let engine = createSpeechEngine(engineName, {
      log,
      deepgram: config.deepgramApiKey === undefined ? undefined : { apiKey: config.deepgramApiKey, url: config.deepgramUrl, params: config.deepgramParams },
      vosk: { url: config.voskUrl },
      remote: { replaySeconds: config.asrReplaySeconds, stallMs: config.asrStallSeconds * 1000 },
      pocketsphinx: { phrases, phraseThresholds },
    });
    if ('asrStats' in engine) {
      // deepgram, vosk: their counters under streamgate_asr_*{engine}.
      remoteEngine = engineName;
      metrics.observeAsr(engineName, (engine as RemoteSpeechEngine).asrStats);
      // Rules with `spot: true` keep pocketsphinx's keyword spotting beside the remote service.
      const spotted = rules.flatMap((r) => (r.when.kind === 'phrase' && r.when.spot ? r.when.phrases : []));
      if (spotted.length > 0 && isPocketsphinxInstalled()) {
        engine = withLocalSpotting(engine, createPocketsphinxEngine({ log, phrases: spotted, phraseThresholds }), spotted);
      } else if (spotted.length > 0) {
        log.warn({ phrases: spotted }, 'rules ask for local spotting (spot: true) but pocketsphinx is not installed; those phrases are matched in transcripts only');
      }
    }
    factories.push(
      createTranscriptionSinkFactory({
        engine,
        dataDir: config.dataDir,
        maxStreams: config.transcriptionMaxStreams,
        phrases,
        bus,
        stats: metrics.transcription,
      }),
    );
  }
  if (config.transcriptWebhookUrl !== undefined) {
    const webhook = new TranscriptWebhook({ url: config.transcriptWebhookUrl, log, stats: metrics.webhook });
    webhook.attach(bus);
    closers.push(() => webhook.close());
  }
  log.info({ transcription: engineName, rules: rules.length }, 'sinks configured');
  closers.push(countTranscripts(bus, metrics, remoteEngine));
  return { factories, level, closers, ready: recording.ready };
}

/**
 * transcripts_total{kind} from the bus, and the transcription sink's latency samples moved into
 * their histogram once a second (also into asr_result_latency_seconds{engine} for a remote
 * engine). Returns its stopper.
 */
function countTranscripts(bus: EventBus, metrics: GatewayMetrics, remoteEngine: string | null): () => void {
  const samples = metrics.transcription.resultLatencyMs;
  let seen = 0;
  const timer = setInterval(() => {
    const fresh = Math.min(samples.count - seen, 1024);
    if (fresh <= 0) return;
    const values = samples.values();
    const asr = remoteEngine === null ? null : metrics.asrResultLatency.labels(remoteEngine);
    for (let i = values.length - fresh; i < values.length; i++) {
      metrics.transcriptLatency.observe(values[i]! / 1000);
      asr?.observe(values[i]! / 1000);
    }
    seen = samples.count;
  }, 1000);
  timer.unref();
  const finals = metrics.transcripts.labels('final');
  const partials = metrics.transcripts.labels('partial');
  const off = bus.on('transcript', (t) => {
    if (!t.isFinal) {
      partials.inc();
      return;
    }
    finals.inc();
  });
  return () => {
    clearInterval(timer);
    off();
  };
}
