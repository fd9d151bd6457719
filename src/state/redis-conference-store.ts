/**
 * The conference store (src/conditions/store.ts) on Redis, shared by every process behind one
 * REDIS_URL. Keys (the `{…}` hash tag keeps one conference's keys in one cluster slot, so its
 * Lua scripts are legal on Redis Cluster too):
 *
 *   sg:conf:{id}          hash   kind, createdAtMs (first writer wins), outcome (JSON)
 *   sg:conf:{id}:end      string absent = open; `claim:<process>:<n>` = claimed; `ended` = ended
 *   sg:conf:{id}:streams  set    stream SIDs
 *   sg:conf:{id}:audit    list   audit entries (JSON), the newest `maxAuditEntries`
 *
 * The end claim is `SET …:end <token> NX PX claimTtl`: of all callers, on all processes, exactly
 * one gets OK. A claim expires after `claimTtlMs` (a process that died mid-action must not block
 * the conference for ever). `failed` releases it with a Lua compare-and-delete on the caller's
 * own token; any other outcome, and Twilio's conference-end, set `ended` for `retentionMs`.
 * Every write refreshes the keys' expiry to `retentionMs`, so `delete` (called by one process's
 * engine when *it* no longer needs the conference) is left to expiry: another process may
 * still hold streams of it.
 */
import type { ConferenceRecord, ConferenceStore, EndState } from '../conditions/store.js';
import type { AuditEntry, OutcomeRecord, ScopeKind } from '../conditions/types.js';
import { lua, type RedisConnection, type RedisReply } from './redis-connection.js';

export interface RedisConferenceStoreOptions {
  redis: RedisConnection;
  /** This process's id, part of its claim tokens. */
  processId: string;
  maxAuditEntries?: number;
  /** Default 6 h. */
  retentionMs?: number;
  /** Default 120 s: longer than an end action with its retries and announcement. */
  claimTtlMs?: number;
}

/** The value of `sg:conf:{id}:end` once the conference is over. */
export const ENDED = 'ended';

/** Deletes KEYS[1] only while it still holds ARGV[1] (our own claim). */
const RELEASE = lua(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`);

export class RedisConferenceStore implements ConferenceStore {
  readonly #redis: RedisConnection;
  readonly #processId: string;
  readonly #maxAudit: number;
  readonly #retention: string;
  readonly #claimTtl: string;
  /** Claims this process holds: scope id → token. */
  readonly #claims = new Map<string, string>();
  #seq = 0;

  constructor(opts: RedisConferenceStoreOptions) {
    this.#redis = opts.redis;
    this.#processId = opts.processId;
    this.#maxAudit = opts.maxAuditEntries ?? 200;
    this.#retention = String(opts.retentionMs ?? 6 * 3600_000);
    this.#claimTtl = String(opts.claimTtlMs ?? 120_000);
  }

  async getOrCreate(id: string, kind: ScopeKind, createdAtMs: number): Promise<ConferenceRecord> {
    const k = keys(id);
    await this.#redis.transaction('conf_create', [...this.#create(k, kind, createdAtMs), ['PEXPIRE', k.hash, this.#retention]]);
    return (await this.get(id))!;
  }

  async get(id: string): Promise<ConferenceRecord | undefined> {
    const k = keys(id);
    const [fields, end, streams] = (await this.#redis.transaction('conf_get', [
      ['HMGET', k.hash, 'kind', 'createdAtMs', 'outcome'],
      ['GET', k.end],
      ['SMEMBERS', k.streams],
    ])) as [(string | null)[], string | null, string[]];
    const [kind, createdAt, outcome] = fields;
    if (kind === null || kind === undefined) return undefined;
    return {
      id,
      kind: kind === 'stream' ? 'stream' : 'conference',
      createdAtMs: Number(createdAt),
      streams,
      endState: endState(end),
      outcome: outcome === null || outcome === undefined ? null : (JSON.parse(outcome) as OutcomeRecord),
    };
  }

  async addStream(id: string, kind: ScopeKind, streamSid: string): Promise<void> {
    const k = keys(id);
    await this.#redis.transaction('conf_add_stream', [
      ...this.#create(k, kind, Date.now()),
      ['SADD', k.streams, streamSid],
      ['PEXPIRE', k.hash, this.#retention],
      ['PEXPIRE', k.streams, this.#retention],
    ]);
  }

  async removeStream(id: string, streamSid: string): Promise<number> {
    const k = keys(id);
    const replies = await this.#redis.transaction('conf_remove_stream', [
      ['SREM', k.streams, streamSid],
      ['SCARD', k.streams],
    ]);
    return Number(replies[1]);
  }

  async tryClaimEnd(id: string, kind: ScopeKind): Promise<boolean> {
    const k = keys(id);
    const token = `claim:${this.#processId}:${++this.#seq}`;
    const replies = await this.#redis.transaction('end_claim', [
      ...this.#create(k, kind, Date.now()),
      ['PEXPIRE', k.hash, this.#retention],
      ['SET', k.end, token, 'NX', 'PX', this.#claimTtl],
    ]);
    const won = replies[replies.length - 1] === 'OK';
    if (won) this.#claims.set(id, token);
    return won;
  }

  async recordOutcome(id: string, outcome: OutcomeRecord): Promise<void> {
    const k = keys(id);
    const token = this.#claims.get(id);
    this.#claims.delete(id);
    await this.#redis.run('end_outcome', ['HSET', k.hash, 'outcome', JSON.stringify(outcome)]);
    if (token === undefined) return;
    if (outcome.result === 'failed') await this.#redis.script('end_release', RELEASE, [k.end], [token]);
    else await this.#redis.run('end_outcome', ['SET', k.end, ENDED, 'PX', this.#retention]);
  }

  async markEnded(id: string, outcome: OutcomeRecord): Promise<void> {
    const k = keys(id);
    await this.#redis.transaction('conf_mark_ended', [
      ...this.#create(k, 'conference', Date.now()),
      ['HSETNX', k.hash, 'outcome', JSON.stringify(outcome)],
      ['PEXPIRE', k.hash, this.#retention],
      ['SET', k.end, ENDED, 'PX', this.#retention],
    ]);
  }

  async appendAudit(id: string, entry: AuditEntry): Promise<void> {
    const k = keys(id);
    await this.#redis.transaction('audit_append', [
      ['RPUSH', k.audit, JSON.stringify(entry)],
      ['LTRIM', k.audit, String(-this.#maxAudit), '-1'],
      ['PEXPIRE', k.audit, this.#retention],
    ]);
  }

  async audit(id: string): Promise<readonly AuditEntry[]> {
    const items = await this.#redis.run<string[]>('audit_read', ['LRANGE', keys(id).audit, '0', '-1']);
    return items.map((s) => JSON.parse(s) as AuditEntry);
  }

  /** Left to the keys' expiry: see the module comment. */
  async delete(): Promise<void> {}

  #create(k: Keys, kind: ScopeKind, createdAtMs: number): string[][] {
    return [
      ['HSETNX', k.hash, 'kind', kind],
      ['HSETNX', k.hash, 'createdAtMs', String(createdAtMs)],
    ];
  }
}

interface Keys {
  hash: string;
  end: string;
  streams: string;
  audit: string;
}

/** The keys of one conference (also used by the participant-join claims, which read its end state). */
export function keys(id: string): Keys {
  const base = `sg:conf:{${id}}`;
  return { hash: base, end: `${base}:end`, streams: `${base}:streams`, audit: `${base}:audit` };
}

function endState(v: RedisReply): EndState {
  if (v === null || v === undefined) return 'open';
  return v === ENDED ? 'ended' : 'claimed';
}
