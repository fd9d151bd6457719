/**
 * `participant-join` callbacks reach any process, and Twilio retries them: the call is streamed
 * once. Each join claims `sg:conf:{CF…}:join:<CallSid>` with SET NX (in a Lua script that first
 * reads the conference's end state, so a join after the end starts nothing); a CreateStream
 * that fails releases the claim (compare-and-delete on the token) so a retried callback can
 * try again. A successful claim lasts `ttlMs` (10 min): a re-join of the same call within it is
 * taken to be the same participant.
 */
import { ENDED, keys } from './redis-conference-store.js';
import { lua, type RedisConnection } from './redis-connection.js';

export type JoinClaim = 'claimed' | 'taken' | 'ended';

/** What the stream starter asks before streaming a joining participant (src/gateway/control/stream-starter.ts). */
export interface JoinGate {
  claim(conferenceSid: string, callSid: string): Promise<JoinClaim>;
  /** Gives the claim back (CreateStream failed). */
  release(conferenceSid: string, callSid: string): Promise<void>;
}

const CLAIM = lua(`
if redis.call('GET', KEYS[1]) == ARGV[3] then return 'ended' end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'claimed' end
return 'taken'`);
const RELEASE = lua(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`);

export class RedisJoinGate implements JoinGate {
  readonly #redis: RedisConnection;
  readonly #token: string;
  readonly #ttl: string;

  constructor(opts: { redis: RedisConnection; processId: string; ttlMs?: number }) {
    this.#redis = opts.redis;
    this.#token = opts.processId;
    this.#ttl = String(opts.ttlMs ?? 600_000);
  }

  async claim(conferenceSid: string, callSid: string): Promise<JoinClaim> {
    const k = keys(conferenceSid);
    return this.#redis.script<JoinClaim>('join_claim', CLAIM, [k.end, joinKey(conferenceSid, callSid)], [this.#token, this.#ttl, ENDED]);
  }

  async release(conferenceSid: string, callSid: string): Promise<void> {
    await this.#redis.script('join_release', RELEASE, [joinKey(conferenceSid, callSid)], [this.#token]);
  }
}

export function joinKey(conferenceSid: string, callSid: string): string {
  return `${keys(conferenceSid).hash}:join:${callSid}`;
}
