/**
 * The processes behind one REDIS_URL talking to each other over one pub/sub channel
 * (`sg:peers`): the conditions engines' conference events (conditions/peers.ts) and final
 * transcripts for `GET /v1/transcripts` on every process. Best effort by design: pub/sub keeps
 * nothing, so convergence comes from announcing again, not from replay:
 *
 *   every aliveMs    `alive`                        → a peer unheard for goneAfterMs is gone
 *   link (re)up      `hello` + our streams          → every peer answers with its streams
 *   a stream starts  `streams` fresh                → peers with streams in that conference answer
 *
 * A message over MAX_MESSAGE_BYTES or of an unknown shape is dropped and counted.
 */
import type { Logger } from 'pino';
import type { PeerEvent, ConferencePeers, PeerHandlers } from '../conditions/peers.js';
import type { TranscriptEvent } from '../core/transcript.js';
import type { RedisConnection } from './redis-connection.js';

export const PEER_CHANNEL = 'sg:peers';
const MAX_MESSAGE_BYTES = 8 << 20;

type Envelope =
  | { from: string; t: 'alive' }
  | { from: string; t: 'hello' }
  | { from: string; t: 'peer'; ev: Exclude<PeerEvent, { kind: 'gone' }> }
  | { from: string; t: 'transcript'; ev: TranscriptEvent };

export interface RedisPeerLinkOptions {
  redis: RedisConnection;
  processId: string;
  log: Logger;
  /** Default 2000 ms. */
  aliveMs?: number;
  /** Default 3 × aliveMs. */
  goneAfterMs?: number;
}

export class RedisPeerLink implements ConferencePeers {
  readonly self: string;
  readonly #redis: RedisConnection;
  readonly #log: Logger;
  readonly #aliveMs: number;
  readonly #goneAfterMs: number;
  readonly #handlers: PeerHandlers[] = [];
  readonly #transcriptListeners: ((ev: TranscriptEvent) => void)[] = [];
  /** Peer process → `performance.now()` last heard. */
  readonly #seen = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #offUp: (() => void) | null = null;
  /** Messages dropped as malformed (for tests). */
  dropped = 0;

  constructor(opts: RedisPeerLinkOptions) {
    this.self = opts.processId;
    this.#redis = opts.redis;
    this.#log = opts.log;
    this.#aliveMs = opts.aliveMs ?? 2000;
    this.#goneAfterMs = opts.goneAfterMs ?? 3 * this.#aliveMs;
  }

  /** Subscribes and starts announcing. Call once the connection is up (or connecting). */
  async start(): Promise<void> {
    this.#offUp = this.#redis.onChange((up) => {
      if (!up) return;
      // Peers were unreachable too: give them a fresh grace period, then announce again once
      // the subscriber connection is surely back.
      const now = performance.now();
      for (const p of this.#seen.keys()) this.#seen.set(p, now);
      setTimeout(() => this.#announce(), 500).unref();
    });
    this.#timer = setInterval(() => this.#tick(), this.#aliveMs);
    this.#timer.unref();
    await this.#redis.subscribe(PEER_CHANNEL, (m) => this.#receive(m));
    this.#announce();
  }

  publish(ev: Exclude<PeerEvent, { kind: 'gone' }>): void {
    this.#send({ from: this.self, t: 'peer', ev });
  }

  attach(handlers: PeerHandlers): () => void {
    this.#handlers.push(handlers);
    return () => {
      const i = this.#handlers.indexOf(handlers);
      if (i >= 0) this.#handlers.splice(i, 1);
    };
  }

  /** A final transcript of this process, for SSE clients on the others. */
  publishTranscript(ev: TranscriptEvent): void {
    this.#send({ from: this.self, t: 'transcript', ev });
  }

  /** Other processes' final transcripts. */
  onTranscript(listener: (ev: TranscriptEvent) => void): () => void {
    this.#transcriptListeners.push(listener);
    return () => {
      const i = this.#transcriptListeners.indexOf(listener);
      if (i >= 0) this.#transcriptListeners.splice(i, 1);
    };
  }

  /** Peers heard from within `goneAfterMs`. */
  get peers(): string[] {
    return [...this.#seen.keys()];
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#offUp?.();
  }

  #announce(): void {
    this.#send({ from: this.self, t: 'hello' });
    this.#sendSnapshot();
  }

  #sendSnapshot(): void {
    for (const h of this.#handlers) {
      const streams = h.snapshot(null);
      if (streams.length > 0) this.publish({ kind: 'streams', fresh: false, streams });
    }
  }

  #tick(): void {
    this.#send({ from: this.self, t: 'alive' });
    if (!this.#redis.up) return;
    const now = performance.now();
    for (const [peer, at] of this.#seen) {
      if (now - at < this.#goneAfterMs) continue;
      this.#seen.delete(peer);
      this.#log.warn({ peer }, 'peer process silent; its streams are dropped from shared conferences');
      this.#deliver({ kind: 'gone', owner: peer });
    }
  }

  #send(env: Envelope): void {
    if (!this.#redis.up) return;
    this.#redis.run('peer_publish', ['PUBLISH', PEER_CHANNEL, JSON.stringify(env)]).catch(() => {
      // Counted by the connection; the next announce converges.
    });
  }

  #receive(message: string): void {
    if (message.length > MAX_MESSAGE_BYTES) {
      this.dropped++;
      return;
    }
    let env: Envelope;
    try {
      env = JSON.parse(message) as Envelope;
    } catch {
      this.dropped++;
      return;
    }
    if (typeof env !== 'object' || env === null || typeof env.from !== 'string' || env.from === this.self) return;
    this.#seen.set(env.from, performance.now());
    switch (env.t) {
      case 'alive':
        return;
      case 'hello':
        this.#sendSnapshot();
        return;
      case 'peer':
        if (typeof env.ev === 'object' && env.ev !== null && typeof env.ev.kind === 'string') this.#deliver(env.ev);
        else this.dropped++;
        return;
      case 'transcript':
        for (const l of this.#transcriptListeners) l(env.ev);
        return;
      default:
        this.dropped++;
    }
  }

  #deliver(ev: PeerEvent): void {
    for (const h of this.#handlers) {
      try {
        h.onEvent(ev);
      } catch (err) {
        this.#log.error({ err, kind: ev.kind }, 'peer event handler threw');
      }
    }
  }
}
