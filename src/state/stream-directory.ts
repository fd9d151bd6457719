/**
 * One view of the live streams from any process: each process keeps its own streams in Redis,
 * refreshed by a heartbeat, and lists everyone's.
 *
 *   sg:procs                      zset   process id → the time its entry expires (ms since epoch)
 *   sg:proc:{<process>}:streams   hash   streamSid → the stream's record (JSON), PEXPIRE ttlMs
 *
 * A heartbeat (every `heartbeatMs`, and soon after a stream starts or ends) replaces the
 * process's hash with its current streams in one MULTI, so the view converges after any outage;
 * a process killed without a goodbye drops out once `ttlMs` has passed (its hash expires, its
 * zset score is in the past). A clean close removes its entry at once.
 *
 * At the same beat the handover records (stream-records.ts: owner, media position, recording
 * segment, rule-state keys, one key per stream, compare-owner writes) are refreshed, when the
 * process gives them.
 */
import type { Logger } from 'pino';
import type { RedisConnection } from './redis-connection.js';
import type { HandoverRecord, RedisStreamRecords } from './stream-records.js';

export const PROCS_KEY = 'sg:procs';

export interface DirectoryRecord {
  streamSid: string;
}

export interface RedisStreamDirectoryOptions<T extends DirectoryRecord> {
  redis: RedisConnection;
  processId: string;
  log: Logger;
  /** This process's live streams now. */
  local: () => T[];
  /** Default 2000 ms. */
  heartbeatMs?: number;
  /** Default 3 × heartbeatMs. */
  ttlMs?: number;
  /** Handover records refreshed at each beat: where they go and this process's now. */
  handover?: { records: RedisStreamRecords; local: () => HandoverRecord[] };
}

export class RedisStreamDirectory<T extends DirectoryRecord> {
  readonly #redis: RedisConnection;
  readonly #self: string;
  readonly #log: Logger;
  readonly #local: () => T[];
  readonly #heartbeatMs: number;
  readonly #ttlMs: number;
  readonly #handover: RedisStreamDirectoryOptions<T>['handover'];
  #timer: NodeJS.Timeout | null = null;
  #soon: NodeJS.Timeout | null = null;
  #beating: Promise<void> | null = null;

  constructor(opts: RedisStreamDirectoryOptions<T>) {
    this.#redis = opts.redis;
    this.#self = opts.processId;
    this.#log = opts.log;
    this.#local = opts.local;
    this.#heartbeatMs = opts.heartbeatMs ?? 2000;
    this.#ttlMs = opts.ttlMs ?? 3 * this.#heartbeatMs;
    this.#handover = opts.handover;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  start(): void {
    this.#timer = setInterval(() => void this.beat(), this.#heartbeatMs);
    this.#timer.unref();
    void this.beat();
  }

  /** A stream started or ended here: publish the change within ~100 ms rather than at the next beat. */
  touch(): void {
    if (this.#soon !== null) return;
    this.#soon = setTimeout(() => {
      this.#soon = null;
      void this.beat();
    }, 100);
    this.#soon.unref();
  }

  /** Writes this process's entry now (one at a time; never rejects). */
  beat(): Promise<void> {
    this.#beating ??= this.#write().finally(() => (this.#beating = null));
    return this.#beating;
  }

  /** Every process's live streams, with the process that holds each. */
  async list(): Promise<(T & { owner: string })[]> {
    const now = Date.now();
    const procs = await this.#redis.run<string[]>('directory_list', ['ZRANGEBYSCORE', PROCS_KEY, String(now), '+inf']);
    if (procs.length === 0) return [];
    const hashes = (await this.#redis.transaction('directory_list', procs.map((p) => ['HVALS', procKey(p)]))) as string[][];
    const out: (T & { owner: string })[] = [];
    procs.forEach((owner, i) => {
      for (const json of hashes[i] ?? []) {
        try {
          out.push({ ...(JSON.parse(json) as T), owner });
        } catch {
          // A record this version cannot read is skipped, not fatal.
        }
      }
    });
    return out;
  }

  /** Stops the heartbeat and removes this process's entry. */
  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#soon !== null) clearTimeout(this.#soon);
    this.#timer = this.#soon = null;
    await this.#beating;
    if (!this.#redis.up) return;
    await this.#handover?.records.close();
    await this.#redis.transaction('directory_leave', [['DEL', procKey(this.#self)], ['ZREM', PROCS_KEY, this.#self]]).catch(() => undefined);
  }

  async #write(): Promise<void> {
    if (!this.#redis.up) return;
    const key = procKey(this.#self);
    const now = Date.now();
    const records = this.#local();
    const commands: string[][] = [['DEL', key]];
    if (records.length > 0) {
      const hset = ['HSET', key];
      for (const r of records) hset.push(r.streamSid, JSON.stringify(r));
      commands.push(hset, ['PEXPIRE', key, String(this.#ttlMs)]);
    }
    commands.push(['ZADD', PROCS_KEY, String(now + this.#ttlMs), this.#self], ['ZREMRANGEBYSCORE', PROCS_KEY, '-inf', String(now - this.#ttlMs)]);
    try {
      await this.#redis.transaction('directory_heartbeat', commands);
    } catch (err) {
      this.#log.debug({ err }, 'stream directory heartbeat failed');
    }
    if (this.#handover === undefined) return;
    try {
      const movedAway = await this.#handover.records.sync(this.#handover.local());
      if (movedAway.length > 0) this.#log.warn({ streams: movedAway }, 'stream records owned by another process now; not refreshed');
    } catch (err) {
      this.#log.debug({ err }, 'stream records refresh failed');
    }
  }
}

function procKey(processId: string): string {
  return `sg:proc:{${processId}}:streams`;
}
