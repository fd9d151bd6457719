/**
 * `TRANSCRIPT_WEBHOOK_URL`: each final transcript is POSTed there as JSON.
 *
 * The stream never waits for it. `enqueue` puts the event in a bounded queue and returns; one
 * sender loop posts in order, one request at a time, each attempt under AbortSignal.timeout.
 * Network errors, timeouts, 429 and 5xx are retried with doubling backoff up to `maxAttempts`;
 * other statuses are final. When the queue is full the oldest event is dropped and counted, as
 * the transcription sink drops its oldest audio: fresh transcripts matter more than stale ones.
 *
 *   enqueue ─► [ queue (≤ queueSize) ] ─► sender ─► POST ─┬─ 2xx ─► sent
 *                 full: drop oldest                        ├─ 429/5xx/error ─► wait, retry ─► failed
 *                                                          └─ other ─► failed
 */
import type { Logger } from 'pino';
import type { EventBus } from '../../core/events.js';
import type { TranscriptEvent } from '../../core/transcript.js';

export interface TranscriptWebhookOptions {
  url: string;
  log: Logger;
  /** Events waiting at most; default 256. */
  queueSize?: number;
  /** Attempts per event, the first included; default 4. */
  maxAttempts?: number;
  /** Per-attempt timeout; default 5000 ms. */
  timeoutMs?: number;
  /** Wait before the first retry, doubled for each later one; default 500 ms. */
  backoffMs?: number;
  /** Extra request headers (e.g. an authorization the receiver wants). */
  headers?: Record<string, string>;
  /** The counters to bump (the gateway's metrics own them and read them at scrape time); default a fresh set. */
  stats?: TranscriptWebhookStats;
}

export interface TranscriptWebhookStats {
  /** Events the receiver accepted (2xx). */
  sent: number;
  /** Events given up on (attempts exhausted or a final status). */
  failed: number;
  /** Events dropped because the queue was full. */
  dropped: number;
  /** Attempts after the first. */
  retries: number;
}

export class TranscriptWebhook {
  readonly stats: TranscriptWebhookStats;
  readonly #url: string;
  readonly #log: Logger;
  readonly #queueSize: number;
  readonly #maxAttempts: number;
  readonly #timeoutMs: number;
  readonly #backoffMs: number;
  readonly #headers: Record<string, string>;
  readonly #queue: TranscriptEvent[] = [];
  /** The sender loop while it runs; null when idle. */
  #sending: Promise<void> | null = null;
  #closing = false;
  /** Wakes a backoff wait early at close. */
  #wake: (() => void) | null = null;

  constructor(opts: TranscriptWebhookOptions) {
    this.stats = opts.stats ?? { sent: 0, failed: 0, dropped: 0, retries: 0 };
    this.#url = new URL(opts.url).href;
    this.#log = opts.log;
    this.#queueSize = opts.queueSize ?? 256;
    this.#maxAttempts = opts.maxAttempts ?? 4;
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#backoffMs = opts.backoffMs ?? 500;
    this.#headers = { 'content-type': 'application/json', ...opts.headers };
  }

  /** Events waiting to be sent (the one in flight excluded). */
  get queued(): number {
    return this.#queue.length;
  }

  /** Queues a final transcript for posting. Never blocks or throws; non-final results are ignored. */
  enqueue(event: TranscriptEvent): void {
    if (!event.isFinal || this.#closing) return;
    if (this.#queue.length >= this.#queueSize) {
      this.#queue.shift();
      this.stats.dropped++;
    }
    this.#queue.push(event);
    this.#sending ??= this.#run();
  }

  /** Posts every transcript the bus publishes; returns the unsubscribe function. */
  attach(bus: EventBus): () => void {
    return bus.on('transcript', (event) => this.enqueue(event));
  }

  /**
   * Stops taking events and gives the queue up to `graceMs` to drain; what is left is counted
   * as dropped. Retries still waiting are cut short.
   */
  async close(graceMs = 5000): Promise<void> {
    this.#closing = true;
    const sending = this.#sending;
    if (sending === null) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
      timer.unref();
    });
    await Promise.race([sending, deadline]);
    clearTimeout(timer);
    this.stats.dropped += this.#queue.length;
    this.#queue.length = 0;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const event = this.#queue.shift()!;
        await this.#deliver(event);
      }
    } finally {
      this.#sending = null;
    }
  }

  async #deliver(event: TranscriptEvent): Promise<void> {
    const body = JSON.stringify(event);
    for (let attempt = 1; ; attempt++) {
      let outcome: string;
      let retryable: boolean;
      try {
        const res = await fetch(this.#url, {
          method: 'POST',
          headers: this.#headers,
          body,
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
        // The body is not needed; reading it frees the connection for the next request.
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.stats.sent++;
          return;
        }
        outcome = `status ${res.status}`;
        retryable = res.status === 429 || res.status >= 500;
      } catch (err) {
        outcome = (err as Error).name === 'TimeoutError' ? 'timeout' : String((err as Error).message ?? err);
        retryable = true;
      }
      if (!retryable || attempt >= this.#maxAttempts || this.#closing) {
        this.stats.failed++;
        this.#log.warn({ outcome, attempts: attempt, streamSid: event.streamSid }, 'transcript webhook gave up');
        return;
      }
      this.stats.retries++;
      this.#log.debug({ outcome, attempt }, 'transcript webhook retrying');
      await this.#sleep(this.#backoffMs * 2 ** (attempt - 1));
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      timer.unref();
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
    });
  }
}
