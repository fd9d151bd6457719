/**
 * The one Redis connection a process keeps for shared state (REDIS_URL), plus a second one for
 * pub/sub (a subscribed connection cannot send other commands). Every command goes through
 * `run(op, args)`: timed into `streamgate_state_store_latency_seconds{op}`, failures counted in
 * `streamgate_state_store_errors_total{op}`, and rejected within `commandTimeoutMs` rather than
 * queued while Redis is away (no offline queue), so a caller learns at once that Redis is down
 * and can retry on its own terms. `streamgate_state_store_up` is 1 while the command connection
 * is ready.
 *
 * Client: node-redis's core (`@redis/client`): Redis's own Node client, TypeScript, no
 * dependencies. Commands are sent as plain argument lists, replies read in RESP2 shapes
 * (arrays, strings, integers, null).
 */
import { createHash } from 'node:crypto';
import { createClient, type RedisClientType } from '@redis/client';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type RedisReply = string | number | null | RedisReply[];

export interface RedisConnectionOptions {
  url: string;
  log: Logger;
  /** The gateway's metrics registry for the three state-store metrics (or later, with `bindMetrics`). */
  registry?: Registry;
  /** A command not answered within this is failed (default 1000 ms). */
  commandTimeoutMs?: number;
  /** Client name shown by `CLIENT LIST` (the process id). */
  name?: string;
}

type Listener = (up: boolean) => void;

export class RedisConnection {
  readonly #client: RedisClientType;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #upGauge: Gauge;
  readonly #errors: Counter<'op'>;
  readonly #latency: Histogram<'op'>;
  readonly #listeners: Listener[] = [];
  #subscriber: RedisClientType | null = null;
  #up = false;
  #closed = false;
  /** The first error after being up is logged; repeats while down are not. */
  #loggedDown = false;

  constructor(opts: RedisConnectionOptions) {
    this.#log = opts.log;
    this.#timeoutMs = opts.commandTimeoutMs ?? 1000;
    this.#client = createClient({
      url: opts.url,
      RESP: 2,
      name: opts.name,
      disableOfflineQueue: true,
      pingInterval: 2000,
      socket: { connectTimeout: 2000, reconnectStrategy: (retries) => Math.min(100 * 2 ** Math.min(retries, 4), 1000) },
    }) as unknown as RedisClientType;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.#upGauge = new Gauge({
      name: 'streamgate_state_store_up',
      help: 'Whether this process reaches the shared state store (REDIS_URL): 1 yes, 0 no',
      // WORKERS > 1, one scrape for every worker: 0 when any of them cannot reach Redis.
      aggregator: 'min',
      registers: [],
      collect() {
        this.set(self.#up ? 1 : 0);
      },
    });
    this.#errors = new Counter({ name: 'streamgate_state_store_errors_total', help: 'State-store (Redis) operations that failed, by operation', labelNames: ['op'], registers: [] });
    this.#latency = new Histogram({
      name: 'streamgate_state_store_latency_seconds',
      help: 'State-store (Redis) operation round trip, by operation',
      labelNames: ['op'],
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [],
    });
    if (opts.registry !== undefined) this.bindMetrics(opts.registry);
    this.#client.on('ready', () => this.#setUp(true));
    this.#client.on('end', () => this.#setUp(false));
    this.#client.on('reconnecting', () => this.#setUp(false));
    this.#client.on('error', (err: Error) => {
      this.#setUp(false);
      if (!this.#loggedDown) this.#log.warn({ err: { message: err.message } }, 'state store (Redis) unreachable; retrying');
      this.#loggedDown = true;
    });
  }

  /** Registers the state-store metrics in the gateway's registry (built after this connection). */
  bindMetrics(registry: Registry): void {
    for (const m of [this.#upGauge, this.#errors, this.#latency]) registry.registerMetric(m);
  }

  /** Whether commands can be sent now. */
  get up(): boolean {
    return this.#up;
  }

  /** Starts connecting (and reconnecting, for ever). Resolves once up or after `waitMs`, whichever is first. */
  async connect(waitMs = 5000): Promise<boolean> {
    this.#client.connect().catch((err: unknown) => this.#log.error({ err }, 'state store connect failed'));
    if (this.#up) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        off();
        resolve(this.#up);
      }, waitMs);
      const off = this.onChange((up) => {
        if (!up) return;
        clearTimeout(t);
        off();
        resolve(true);
      });
    });
  }

  /** Told on every up/down change; returns its remover. */
  onChange(listener: Listener): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** One command, timed and counted under `op` (a fixed name from the code, never from the wire). */
  async run<T extends RedisReply = RedisReply>(op: string, args: readonly string[]): Promise<T> {
    const end = this.#latency.startTimer({ op });
    try {
      const reply = await this.#client.sendCommand<T>(args, { timeout: this.#timeoutMs });
      end();
      return reply;
    } catch (err) {
      this.#errors.labels(op).inc();
      throw err;
    }
  }

  /** Several commands in one round trip (MULTI/EXEC), timed and counted as one `op`; resolves to their replies. */
  async transaction(op: string, commands: readonly (readonly string[])[]): Promise<RedisReply[]> {
    const end = this.#latency.startTimer({ op });
    try {
      const multi = this.#client.multi();
      for (const c of commands) multi.addCommand(c as string[]);
      const replies = (await multi.exec()) as unknown as RedisReply[];
      end();
      return replies;
    } catch (err) {
      this.#errors.labels(op).inc();
      throw err;
    }
  }

  /** Runs a Lua script (EVALSHA, falling back to EVAL once when the server has not cached it). */
  async script<T extends RedisReply = RedisReply>(op: string, script: LuaScript, keys: readonly string[], args: readonly string[]): Promise<T> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.run<T>(op, ['EVALSHA', script.sha, ...tail]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.run<T>(op, ['EVAL', script.source, ...tail]);
    }
  }

  /**
   * Subscribes `listener` to `channel` on the pub/sub connection (opened on first use; node-redis
   * subscribes again after a reconnect).
   */
  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    if (this.#subscriber === null) {
      const sub = this.#client.duplicate({ disableOfflineQueue: false }) as unknown as RedisClientType;
      sub.on('error', () => {
        // The command connection reports outages; this one reconnects on its own.
      });
      this.#subscriber = sub;
      await sub.connect();
    }
    await this.#subscriber.subscribe(channel, (message: string) => listener(message));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closeOne = async (c: RedisClientType) => {
      try {
        if (c.isOpen) await c.close();
      } catch {
        c.destroy();
      }
    };
    if (this.#subscriber !== null) await closeOne(this.#subscriber);
    await closeOne(this.#client);
    this.#setUp(false);
  }

  #setUp(up: boolean): void {
    if (up === this.#up) return;
    this.#up = up;
    if (up) {
      if (this.#loggedDown) this.#log.info('state store (Redis) reachable again');
      this.#loggedDown = false;
    }
    for (const l of this.#listeners.slice()) l(up);
  }
}

/** A Lua script with its SHA-1, for EVALSHA. */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

/** Wraps Lua source for {@link RedisConnection.script}. */
export function lua(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}
