/**
 * Handover-ready stream records: for each live stream, what another process would need to take
 * it over, and which process owns it now (ARCHITECTURE.md "Where state lives"; nothing uses a
 * takeover yet). One key per stream, so each script below touches one cluster slot:
 *
 *   sg:stream:{<StreamSid>}   hash   owner   the process holding the stream
 *                                    record  JSON {@link HandoverRecord}
 *                             PEXPIRE ttlMs (default 60 s: outlives a killed owner long enough
 *                             for a successor to read it; the directory's 6 s is for listing)
 *
 * Written at the directory heartbeat (every 2 s), never per frame: `mediaMs` is where each track
 * was at the last beat. Every write is compare-owner: a process refreshes a record only while
 * it still owns it (or the record is new), so once {@link RedisStreamRecords.moveStream} has
 * given a stream to another process, the old owner's late heartbeat cannot take it back. A
 * stream that ended is deleted the same way (compare-and-delete), at the next beat.
 */
import { lua, type RedisConnection } from './redis-connection.js';

export interface HandoverRecord {
  streamSid: string;
  callSid: string;
  accountSid: string;
  conferenceSid: string | null;
  tracks: string[];
  /** ISO 8601, when the stream started. */
  startedAt: string;
  /** Per track: media-clock end (ms) of the last frame accepted, as of the last heartbeat; absent before its first frame. */
  mediaMs: Partial<Record<'inbound' | 'outbound', number>>;
  /** The recording segment being written (`….wav.partial`), on the owner's STREAMGATE_DATA_DIR. */
  recording: string | null;
  /** The Redis keys holding this stream's rule state (its conference's end claim, outcome, audit, stream set, join claim). */
  ruleKeys: string[];
}

/** Refresh: KEYS[1] the stream key; ARGV owner, ttl, record. 1 = written, 0 = another process owns it. */
const REFRESH = lua(`
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'record', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`);
/** Compare-and-delete: KEYS[1] the stream key; ARGV[1] the owner. */
const RELEASE = lua(`if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`);
/** Compare-owner move: KEYS[1] the stream key; ARGV from, to, ttl. 1 = moved, 0 = `from` is not the owner (or no record). */
const MOVE = lua(`
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`);

export function streamRecordKey(streamSid: string): string {
  return `sg:stream:{${streamSid}}`;
}

export class RedisStreamRecords {
  readonly #redis: RedisConnection;
  readonly #self: string;
  readonly #ttl: string;
  /** Streams this process wrote at its last sync (to release the ones that ended since). */
  #written = new Set<string>();

  constructor(opts: { redis: RedisConnection; processId: string; ttlMs?: number }) {
    this.#redis = opts.redis;
    this.#self = opts.processId;
    this.#ttl = String(opts.ttlMs ?? 60_000);
  }

  /**
   * Writes this process's records (compare-owner) and deletes the ones of streams that ended
   * here since the last sync. Resolves to the streams another process owns now (moved away).
   * The commands go out together (node-redis pipelines what is sent in one tick).
   */
  async sync(records: readonly HandoverRecord[]): Promise<string[]> {
    const now = new Set(records.map((r) => r.streamSid));
    const gone = [...this.#written].filter((sid) => !now.has(sid));
    const [written] = await Promise.all([
      Promise.all(records.map((r) => this.#redis.script<number>('stream_record', REFRESH, [streamRecordKey(r.streamSid)], [this.#self, this.#ttl, JSON.stringify(r)]))),
      Promise.all(gone.map((sid) => this.#redis.script('stream_record_release', RELEASE, [streamRecordKey(sid)], [this.#self]))),
    ]);
    this.#written = now;
    return records.filter((_, i) => written[i] !== 1).map((r) => r.streamSid);
  }

  /** Atomically gives `streamSid` to `toProc`, only while `fromProc` owns it. True when moved. */
  async moveStream(streamSid: string, fromProc: string, toProc: string): Promise<boolean> {
    return (await this.#redis.script<number>('stream_move', MOVE, [streamRecordKey(streamSid)], [fromProc, toProc, this.#ttl])) === 1;
  }

  /** The record and owner of a stream, or null when there is none (ended, or expired with its owner). */
  async get(streamSid: string): Promise<{ owner: string; record: HandoverRecord } | null> {
    const [owner, record] = (await this.#redis.run<(string | null)[]>('stream_record_get', ['HMGET', streamRecordKey(streamSid), 'owner', 'record'])) ?? [];
    if (typeof owner !== 'string' || typeof record !== 'string') return null;
    return { owner, record: JSON.parse(record) as HandoverRecord };
  }

  /** Clean close: this process's records go (its streams ended). */
  async close(): Promise<void> {
    await this.sync([]).catch(() => undefined);
  }
}
