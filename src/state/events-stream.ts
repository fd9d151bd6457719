/**
 * The durable feed for pipelines: final transcripts and stream/conference lifecycle events
 * appended to a Redis Stream (`streamgate:events`), read by consumers with consumer groups
 * (XREADGROUP / XACK: at-least-once). Every entry has these fields:
 *
 *   id        unique per event (`<process>-<n>`): an append retried after a timeout may land
 *             twice, so a consumer that must not double-count dedupes on it
 *   type      stream.started | stream.stopped | transcript.final | conference.ended
 *   at        ISO 8601 time of the event
 *   process   the process that saw it
 *   data      JSON: the event (its SIDs, texts, accounting, outcome; see README)
 *
 * The stream is capped with `XADD … MAXLEN ~ maxLen`. Appends never wait on the caller's path:
 * they queue (at most `maxQueued`, the oldest dropped and counted beyond that) and are written
 * in batches; while Redis is away the queue waits and is written when it is back.
 */
import type { Logger } from 'pino';
import type { RedisConnection } from './redis-connection.js';

export const EVENTS_STREAM_KEY = 'streamgate:events';

export type EventType = 'stream.started' | 'stream.stopped' | 'transcript.final' | 'conference.ended';

export interface RedisEventsStreamOptions {
  redis: RedisConnection;
  processId: string;
  log: Logger;
  key?: string;
  /** Default 100 000 entries (approximate trim). */
  maxLen?: number;
  /** Default 10 000 events waiting for Redis. */
  maxQueued?: number;
}

export class RedisEventsStream {
  readonly key: string;
  readonly #redis: RedisConnection;
  readonly #self: string;
  readonly #log: Logger;
  readonly #maxLen: string;
  readonly #maxQueued: number;
  #queue: string[][] = [];
  #seq = 0;
  #flushing: Promise<void> | null = null;
  #retry: NodeJS.Timeout | null = null;
  readonly #offUp: () => void;
  /** Events dropped because the queue was full (Redis away too long). */
  dropped = 0;

  constructor(opts: RedisEventsStreamOptions) {
    this.key = opts.key ?? EVENTS_STREAM_KEY;
    this.#redis = opts.redis;
    this.#self = opts.processId;
    this.#log = opts.log;
    this.#maxLen = String(opts.maxLen ?? 100_000);
    this.#maxQueued = opts.maxQueued ?? 10_000;
    this.#offUp = this.#redis.onChange((up) => {
      if (up) this.#schedule();
    });
  }

  append(type: EventType, data: object): void {
    const fields = ['id', `${this.#self}-${++this.#seq}`, 'type', type, 'at', new Date().toISOString(), 'process', this.#self, 'data', JSON.stringify(data)];
    this.#queue.push(['XADD', this.key, 'MAXLEN', '~', this.#maxLen, '*', ...fields]);
    if (this.#queue.length > this.#maxQueued) {
      this.#queue.shift();
      if (this.dropped++ === 0) this.#log.warn({ maxQueued: this.#maxQueued }, 'events stream queue full: dropping the oldest events');
    }
    this.#schedule();
  }

  /** Events not yet written. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Writes what is queued (waits up to `timeoutMs` for Redis), then stops. */
  async close(timeoutMs = 2000): Promise<void> {
    this.#offUp();
    if (this.#retry !== null) clearTimeout(this.#retry);
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length > 0 && Date.now() < deadline && this.#redis.up) await this.#flush();
  }

  #schedule(): void {
    if (this.#flushing !== null || this.#queue.length === 0 || !this.#redis.up) return;
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = null;
      // Appended while writing: go on; after a failure, try again shortly.
      if (this.#queue.length > 0 && this.#retry === null) {
        this.#retry = setTimeout(() => {
          this.#retry = null;
          this.#schedule();
        }, 200);
        this.#retry.unref();
      }
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#queue.slice(0, 500);
    if (batch.length === 0) return;
    try {
      await this.#redis.transaction('events_append', batch);
      this.#queue.splice(0, batch.length);
    } catch (err) {
      this.#log.debug({ err, queued: this.#queue.length }, 'events stream append failed; will retry');
    }
  }
}
