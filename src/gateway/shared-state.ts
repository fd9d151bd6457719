/**
 * REDIS_URL: what this process shares with the others behind the same Redis (README "Running
 * several instances"). Built before the gateway (the stream starter and the admin routes take
 * parts of it), attached once the gateway exists:
 *
 *   conditions engine ── store: end claim, outcome, audit ─────────────┐
 *                     └─ peers: membership, speaking/silent transitions ┤
 *   participant-join ─── join claims (one stream per call) ─────────────┤
 *   GET /v1/streams ──── directory: every process's streams (heartbeat) ├──► Redis
 *   GET /v1/transcripts ◄ peers: other processes' final transcripts ────┤
 *   bus ──────────────── events stream: lifecycle + final transcripts ──┘
 *
 * Nothing here runs per frame: the media path never waits on Redis. While Redis is unreachable
 * `/readyz` answers 503 (so a balancer sends new calls elsewhere) and live streams go on.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { RedisEventsStream } from '../state/events-stream.js';
import { RedisJoinGate } from '../state/join-claims.js';
import { RedisPeerLink } from '../state/peer-link.js';
import { RedisConferenceStore } from '../state/redis-conference-store.js';
import { RedisConnection } from '../state/redis-connection.js';
import { RedisStreamDirectory } from '../state/stream-directory.js';
import { RedisStreamRecords, type HandoverRecord } from '../state/stream-records.js';
import { keys as conferenceKeys } from '../state/redis-conference-store.js';
import { joinKey } from '../state/join-claims.js';
import { recordingPaths } from '../sinks/recording/paths.js';
import { listStreams, type LiveStream } from './control/admin-routes.js';
import type { ConferenceEndEvent } from '../core/conference.js';
import type { StreamInfo } from '../core/stream.js';
import { STATE } from './media/stream-state.js';
import type { Gateway } from './server.js';

export interface SharedStateOptions {
  url: string;
  log: Logger;
  /** Default `<hostname>-<pid>`. */
  processId?: string;
  /** The gateway's metrics: the state-store metrics are registered there. */
  metrics: { registry: Registry };
  /** Directory heartbeat; a killed process's streams leave `/v1/streams` within 3 × this. Default 2000 ms. */
  heartbeatMs?: number;
}

export class SharedState {
  readonly processId: string;
  readonly redis: RedisConnection;
  readonly store: RedisConferenceStore;
  readonly peers: RedisPeerLink;
  readonly joinGate: RedisJoinGate;
  readonly events: RedisEventsStream;
  /** Handover-ready records of this process's streams (refreshed at the directory heartbeat). */
  readonly records: RedisStreamRecords;
  readonly #log: Logger;
  readonly #heartbeatMs: number;
  #directory: RedisStreamDirectory<LiveStream> | null = null;

  constructor(opts: SharedStateOptions) {
    this.processId = opts.processId ?? `${hostname()}-${process.pid}`;
    this.#log = opts.log.child({ component: 'shared-state' });
    this.#heartbeatMs = opts.heartbeatMs ?? 2000;
    const processId = this.processId;
    this.redis = new RedisConnection({ url: opts.url, log: this.#log, registry: opts.metrics.registry, name: processId.replace(/[^\w.-]/g, '_') });
    this.store = new RedisConferenceStore({ redis: this.redis, processId });
    this.peers = new RedisPeerLink({ redis: this.redis, processId, log: this.#log, aliveMs: this.#heartbeatMs });
    this.joinGate = new RedisJoinGate({ redis: this.redis, processId });
    this.events = new RedisEventsStream({ redis: this.redis, processId, log: this.#log });
    this.records = new RedisStreamRecords({ redis: this.redis, processId });
  }

  /** Other processes' live streams, for `GET /v1/streams` (empty, and logged, while Redis is unreachable). */
  readonly peerStreams = async (): Promise<(LiveStream & { owner: string })[]> => {
    if (this.#directory === null) return [];
    try {
      return (await this.#directory.list()).filter((s) => s.owner !== this.processId);
    } catch (err) {
      this.#log.warn({ err }, 'stream directory unreachable: listing this process only');
      return [];
    }
  };

  /**
   * Connects (waiting up to `waitMs`; an unreachable Redis does not stop start-up, it keeps
   * `/readyz` at 503 until it answers) and wires the gateway's bus, metrics, readiness and close.
   */
  async attach(gateway: Gateway, waitMs = 3000): Promise<void> {
    const { bus, registry } = gateway;
    gateway.readinessChecks.push(() => (this.redis.up ? null : 'state store (REDIS_URL) unreachable'));
    const handover = { records: this.records, local: () => handoverRecords(gateway) };
    const directory = new RedisStreamDirectory<LiveStream>({ redis: this.redis, processId: this.processId, log: this.#log, local: () => listStreams(registry, null), heartbeatMs: this.#heartbeatMs, handover });
    this.#directory = directory;
    const offs = [
      bus.on('stream-start', (info) => {
        directory.touch();
        this.events.append('stream.started', { ...streamFields(info), tracks: info.tracks, startedAt: new Date(info.startedAtMs).toISOString() });
      }),
      bus.on('stream-end', (info, reason) => {
        directory.touch();
        // The session is still registered while its end is announced: its accounting is final.
        let accounting: object | null = null;
        for (const s of registry.sessions) if (s.info?.streamSid === info.streamSid) accounting = s.summary();
        this.events.append('stream.stopped', { ...streamFields(info), reason, ...accounting, stoppedAt: new Date().toISOString() });
      }),
      bus.on('conference-end', (event) => {
        this.conferenceEnded(event).catch((err: unknown) => this.#log.warn({ err, conferenceSid: event.conferenceSid }, 'conference.ended event not recorded'));
      }),
      bus.on('transcript', (t) => {
        if (!t.isFinal) return;
        this.peers.publishTranscript(t);
        const { words: _words, ...rest } = t;
        this.events.append('transcript.final', rest);
      }),
    ];
    this.peers.onTranscript((t) => bus.emit('peer-transcript', t));
    const up = await this.redis.connect(waitMs);
    this.#log.info({ processId: this.processId, up }, up ? 'state store (Redis) connected' : 'state store (Redis) not reachable yet; /readyz says 503 until it is');
    this.peers.start().catch((err: unknown) => this.#log.error({ err }, 'peer link failed to start'));
    directory.start();
    gateway.onClose(async () => {
      for (const off of offs) off();
      this.peers.close();
      await directory.close();
      await this.events.close();
      await this.redis.close();
    });
  }

  /**
   * Twilio's `conference-end` reached this process (Twilio may send it to several, and retry):
   * one `conference.ended` event per conference, with the outcome of the end if a rule or the
   * admin API made it.
   */
  async conferenceEnded(event: ConferenceEndEvent): Promise<void> {
    const key = `sg:conf:{${event.conferenceSid}}:ended-event`;
    const first = await this.redis.run('conf_end_event', ['SET', key, this.processId, 'NX', 'PX', String(6 * 3600_000)]);
    if (first !== 'OK') return;
    const outcome = (await this.store.get(event.conferenceSid))?.outcome ?? null;
    this.events.append('conference.ended', { ...event, outcome });
  }
}

function streamFields(info: { streamSid: string; callSid: string; accountSid: string; conferenceSid: string | null }) {
  return { streamSid: info.streamSid, callSid: info.callSid, accountSid: info.accountSid, conferenceSid: info.conferenceSid };
}

/**
 * What another process would need to take over each live stream here (state/stream-records.ts):
 * read at the directory heartbeat, never per frame.
 */
function handoverRecords(gateway: Gateway): HandoverRecord[] {
  const out: HandoverRecord[] = [];
  for (const s of gateway.registry.sessions) {
    const info = s.info;
    if (s.state !== STATE.STARTED || info === null) continue;
    out.push({
      ...streamFields(info),
      tracks: [...info.tracks],
      startedAt: new Date(info.startedAtMs).toISOString(),
      mediaMs: s.mediaPosition(),
      recording: recordingOf(gateway.config.dataDir, info),
      ruleKeys: ruleKeys(info),
    });
  }
  return out;
}

function recordingOf(dataDir: string, info: StreamInfo): string | null {
  try {
    return recordingPaths(dataDir, info.accountSid, info.callSid, info.streamSid).partial;
  } catch {
    return null;
  }
}

/** The conditions engine's scope is the conference, or the stream itself when it has none. */
function ruleKeys(info: StreamInfo): string[] {
  const k = conferenceKeys(info.conferenceSid ?? info.streamSid);
  const out = [k.hash, k.end, k.streams, k.audit];
  if (info.conferenceSid !== null) out.push(joinKey(info.conferenceSid, info.callSid));
  return out;
}
