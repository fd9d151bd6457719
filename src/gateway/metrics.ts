/**
 * Every metric the gateway exposes (docs/design.md "Metrics"), declared once per gateway in its own
 * registry. Hot counters are plain numbers on {@link HotCounters}, bumped per frame without any
 * label lookup, and folded into prom-client counters when Prometheus scrapes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RecordingStats } from '../sinks/recording/factory.js';
import type { SinkStats } from '../sinks/sink.js';
import type { RemoteAsrStats } from '../sinks/transcription/engines/remote/stats.js';
import { createTranscriptionStats, type TranscriptionStats } from '../sinks/transcription/stats.js';
import type { TranscriptWebhookStats } from '../sinks/transcription/webhook.js';
import { FastHistogram } from './fast-histogram.js';

const P = 'streamgate_';

/** Per-frame counters; numbers only, so the hot path never touches prom-client. */
export class HotCounters {
  framesInbound = 0;
  framesOutbound = 0;
  mediaBytes = 0;
  framesLost = 0;
  framesDuplicate = 0;
  framesLate = 0;
}

export type StreamOutcome = 'stopped' | 'aborted' | 'protocol-error' | 'rejected' | 'shutdown' | 'stalled';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly hot = new HotCounters();
  readonly #sinkStats = new Map<string, SinkStats>();
  /** The transcription sink kind's counters: the app hands this object to the sink factory; read at scrape time. */
  readonly transcription: TranscriptionStats = createTranscriptionStats();
  /** The transcript webhook's delivery counters: handed to the webhook; read at scrape time. */
  readonly webhook: TranscriptWebhookStats = { sent: 0, failed: 0, dropped: 0, retries: 0 };
  /** Remote speech engines' counters by engine label (one engine per gateway, so one entry). */
  readonly #asr = new Map<string, RemoteAsrStats>();
  /** The recording sink's stopped-early counters: handed to its factory; read at scrape time. */
  readonly recording: RecordingStats = { stopped: { disk_low: 0, size_limit: 0 } };
  /** Live streams; set by the session registry. */
  activeStreams = 0;

  readonly streamsTotal: Counter<'outcome'>;
  readonly protocolErrors: Counter<'reason'>;
  readonly upgradeRejected: Counter<'reason'>;
  readonly ingestLag: FastHistogram;
  readonly transcripts: Counter<'kind'>;
  readonly transcriptLatency: Histogram;
  readonly asrResultLatency: Histogram<'engine'>;
  readonly conditionsTriggered: Counter<'rule'>;
  readonly conferencesEnded: Counter<'result'>;
  readonly twilioRequests: Counter<'operation' | 'status'>;
  readonly twilioDuration: Histogram<'operation'>;
  readonly unknownEvents: Counter;
  readonly streamCallbacks: Counter<'event'>;
  readonly adminRefused: Counter<'reason'>;
  readonly unverifiedStreams: Counter;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: P });
    const hot = this.hot;

    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const metrics = this;
    new Gauge({
      name: `${P}streams_active`,
      // WORKERS > 1: one scrape adds up every worker's (http/cluster-metrics.ts).
      aggregator: 'sum',
      help: 'Media streams currently open',
      registers,
      collect() {
        this.set(metrics.activeStreams);
      },
    });

    this.streamsTotal = new Counter({ name: `${P}streams_total`, help: 'Media streams ended, by outcome', labelNames: ['outcome'], registers });
    foldCounter(`${P}media_frames_total`, 'Media frames received, by track', registers, ['track'], (c) => {
      c.set('inbound', hot.framesInbound);
      c.set('outbound', hot.framesOutbound);
    });
    foldCounter(`${P}media_bytes_total`, 'mu-law audio bytes received', registers, [], (c) => c.set('', hot.mediaBytes));
    foldCounter(`${P}media_frames_lost_total`, 'Media frames missing from the wire (sequence number gaps)', registers, [], (c) => c.set('', hot.framesLost));
    foldCounter(`${P}media_frames_duplicate_total`, 'Media frames whose sequence number was already received (ignored)', registers, [], (c) => c.set('', hot.framesDuplicate));
    foldCounter(`${P}media_frames_late_total`, 'Media frames that arrived after a later one (placed by timestamp)', registers, [], (c) => c.set('', hot.framesLate));
    this.protocolErrors = new Counter({ name: `${P}protocol_errors_total`, help: 'Malformed or out-of-order messages, by reason', labelNames: ['reason'], registers });
    this.upgradeRejected = new Counter({ name: `${P}upgrade_rejected_total`, help: 'WebSocket upgrades refused, by reason', labelNames: ['reason'], registers });
    this.ingestLag = new FastHistogram({
      name: `${P}frame_ingest_lag_seconds`,
      help: 'Time from a media message arriving to its audio being handed to every sink',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    const sinkStats = this.#sinkStats;
    new Gauge({
      name: `${P}sink_queue_depth`,
      // WORKERS > 1: one scrape adds up every worker's (http/cluster-metrics.ts).
      aggregator: 'sum',
      help: 'Frames waiting in sink buffers, by sink',
      labelNames: ['sink'],
      registers,
      collect() {
        for (const [name, s] of sinkStats) this.labels(name).set(s.queued);
      },
    });
    foldCounter(`${P}sink_dropped_frames_total`, 'Frames a sink dropped by its overflow policy', registers, ['sink'], (c) => {
      for (const [name, s] of sinkStats) c.set(name, s.dropped);
    });
    foldCounter(`${P}sink_errors_total`, 'Sink failures (isolated), by sink', registers, ['sink'], (c) => {
      for (const [name, s] of sinkStats) c.set(name, s.errors);
    });
    this.transcripts = new Counter({ name: `${P}transcripts_total`, help: 'Transcription results, by kind', labelNames: ['kind'], registers });
    // The transcription sink and the webhook bump plain counters in objects this class owns
    // (this.transcription, this.webhook), handed to them when the app builds them.
    foldCounter(`${P}transcription_capped_total`, 'Tracks that started while all TRANSCRIPTION_MAX_STREAMS slots were busy (they wait; phrases still spotted)', registers, [], (c) =>
      c.set('', this.transcription.capped),
    );
    new Gauge({
      name: `${P}transcription_waiting_tracks`,
      // WORKERS > 1: one scrape adds up every worker's (http/cluster-metrics.ts).
      aggregator: 'sum',
      help: 'Live tracks waiting for a transcription slot (not transcribed yet; phrases still spotted)',
      registers,
      collect() {
        this.set(metrics.transcription.waiting);
      },
    });
    foldCounter(`${P}transcription_engine_restarts_total`, 'Speech recogniser processes restarted after an unexpected exit', registers, [], (c) =>
      c.set('', this.transcription.restarts),
    );
    foldCounter(`${P}transcript_webhook_sent_total`, 'Final transcripts the TRANSCRIPT_WEBHOOK_URL receiver accepted (2xx)', registers, [], (c) =>
      c.set('', this.webhook.sent),
    );
    foldCounter(`${P}transcript_webhook_failed_total`, 'Final transcripts given up on after the webhook retries (or a final status)', registers, [], (c) =>
      c.set('', this.webhook.failed),
    );
    foldCounter(`${P}transcript_webhook_dropped_total`, 'Final transcripts dropped because the webhook queue was full (or left at shutdown)', registers, [], (c) =>
      c.set('', this.webhook.dropped),
    );
    foldCounter(`${P}recording_stopped_total`, 'Recordings stopped before their stream ended (or refused at open), by reason: disk_low, size_limit', registers, ['reason'], (c) => {
      c.set('disk_low', this.recording.stopped.disk_low);
      c.set('size_limit', this.recording.stopped.size_limit);
    });
    this.transcriptLatency = new Histogram({
      name: `${P}transcript_latency_seconds`,
      help: 'Time from the end of speech (media clock) to its final transcript',
      buckets: [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
      registers,
    });
    // Remote speech engines (deepgram, vosk): label `engine`, one value per configured engine.
    const asr = this.#asr;
    const asrCounter = (name: string, help: string, read: (s: RemoteAsrStats) => number) =>
      foldCounter(`${P}asr_${name}`, help, registers, ['engine'], (c) => {
        for (const [engine, s] of asr) c.set(engine, read(s));
      });
    asrCounter('connections_total', 'WebSocket connections opened to the speech service (first ones and reconnections)', (s) => s.connections);
    asrCounter('reconnects_total', 'Connections to the speech service opened again after one dropped, failed or stalled mid-call', (s) => s.reconnects);
    asrCounter('replayed_seconds_total', 'Audio sent to the speech service again after a reconnection (not yet covered by a final)', (s) => s.replayedSamples / 8000);
    asrCounter('dropped_seconds_total', 'Audio never recognised: dropped by backpressure, or older than ASR_REPLAY_SECONDS when the service came back (holes in the transcript)', (s) => s.droppedSamples / 8000);
    asrCounter('auth_failures_total', 'Streams whose speech service handshake was refused with 401/403 (not retried; recorded, not transcribed)', (s) => s.authFailures);
    asrCounter('config_failures_total', 'Streams whose speech service handshake was refused for bad configuration (other 4xx; not retried)', (s) => s.configFailures);
    asrCounter('protocol_errors_total', 'Messages from the speech service that were malformed or out of bounds (ignored)', (s) => s.protocolErrors);
    asrCounter('stalls_total', 'Connections dropped because the speech service answered nothing while audio flowed (ASR_STALL_SECONDS)', (s) => s.stalls);
    this.asrResultLatency = new Histogram({
      name: `${P}asr_result_latency_seconds`,
      help: 'Time from the audio ending a final result being written to the speech engine to the result arriving, by engine',
      labelNames: ['engine'],
      buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
      registers,
    });
    this.conditionsTriggered = new Counter({ name: `${P}conditions_triggered_total`, help: 'Rule conditions that held, by rule', labelNames: ['rule'], registers });
    this.conferencesEnded = new Counter({ name: `${P}conferences_ended_total`, help: 'Conference end actions, by result', labelNames: ['result'], registers });
    this.twilioRequests = new Counter({ name: `${P}twilio_requests_total`, help: 'Twilio REST requests, by operation and HTTP status', labelNames: ['operation', 'status'], registers });
    this.twilioDuration = new Histogram({
      name: `${P}twilio_request_duration_seconds`,
      help: 'Twilio REST request duration, by operation',
      labelNames: ['operation'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.unknownEvents = new Counter({ name: `${P}unknown_events_total`, help: 'Media Streams messages with an event name we do not know (ignored)', registers });
    this.streamCallbacks = new Counter({ name: `${P}stream_callbacks_total`, help: 'Stream status callbacks from Twilio, by event', labelNames: ['event'], registers });
    this.unverifiedStreams = new Counter({
      name: `${P}unverified_streams_total`,
      help: 'Streams naming a conference they are not a verified member of (recorded, kept out of its rules)',
      registers,
    });
    this.adminRefused = new Counter({ name: `${P}admin_refused_total`, help: 'Requests to /v1 (and other operator routes) refused, by reason', labelNames: ['reason'], registers });
  }

  /** The shared stats object of one sink kind (created on first use). */
  sinkStats(name: string): SinkStats {
    let s = this.#sinkStats.get(name);
    if (s === undefined) {
      s = { dropped: 0, errors: 0, queued: 0 };
      this.#sinkStats.set(name, s);
    }
    return s;
  }

  /** Exports a remote speech engine's counters under `engine`. */
  observeAsr(engine: string, stats: RemoteAsrStats): void {
    this.#asr.set(engine, stats);
  }

  /** Observer for the REST client: one call per attempt. */
  observeTwilio = (operation: string, status: string, seconds: number): void => {
    this.twilioRequests.labels(operation, status).inc();
    this.twilioDuration.labels(operation).observe(seconds);
  };
}

/**
 * A counter whose value lives in plain numbers elsewhere: at scrape time `read` reports the
 * totals and we add the difference since the last scrape (counters only go up).
 */
function foldCounter(
  name: string,
  help: string,
  registers: Registry[],
  labelNames: string[],
  read: (c: { set(label: string, total: number): void }) => void,
): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers,
    collect() {
      read({
        set: (label, total) => {
          const prev = last.get(label) ?? 0;
          if (total > prev) {
            if (labelNames.length === 0) this.inc(total - prev);
            else this.labels(label).inc(total - prev);
            last.set(label, total);
          } else if (!last.has(label)) {
            if (labelNames.length > 0) this.labels(label).inc(0);
            last.set(label, total);
          }
        },
      });
    },
  });
}
