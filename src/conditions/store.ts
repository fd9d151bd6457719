/**
 * Conference state that must survive an instance and be shared between instances: which streams
 * a conference has, whether its end is claimed or done, the outcome, and the audit trail.
 *
 * The fast-changing evaluation state (each track's speaking flag and media clock, DTMF digits)
 * stays in the engine of the instance that holds the streams; the store sees a write only when a
 * stream joins or leaves and when a decision is made, so a networked store is never on the
 * media path.
 *
 * ## The end claim
 *
 *   open ──tryClaimEnd (first caller wins)──► claimed ──recordOutcome(completed | already-ended
 *    ▲                                           │                    | not-found)──► ended
 *    └────────recordOutcome(failed)──────────────┘
 *   any state ──markEnded (Twilio's conference-end callback)──► ended
 *
 * ## Shared implementations (not built yet)
 *
 * - **NATS JetStream KV** (bucket `streamgate-conferences`, `history: 1`, `max_age` = retention):
 *   `tryClaimEnd` is `kv.create("<sid>.end", "<instance>:claimed")`, which succeeds only when
 *   the key is absent (it fails with "wrong last sequence" otherwise), so exactly one instance
 *   wins. `recordOutcome(failed)` releases with `kv.delete("<sid>.end", { previousSeq })` (a
 *   compare-and-delete on the revision `create` returned); a final outcome is
 *   `kv.update("<sid>.end", json, revision)`. `markEnded` is a plain `put`. Streams are keys
 *   `<sid>.streams.<MZ…>` (put / delete, listed with `kv.keys("<sid>.streams.*")`); the audit is
 *   a JetStream stream on subject `audit.<sid>` (publish; read back with an ordered consumer).
 * - **Redis**: `tryClaimEnd` is `SET conf:<sid>:end <token> NX PX <retention>` (OK → true, nil →
 *   false). Releasing after `failed` is a Lua compare-and-delete on `<token>`; a final outcome
 *   is `SET conf:<sid>:end <json> XX KEEPTTL`. Streams: `SADD`/`SREM conf:<sid>:streams`; audit:
 *   `RPUSH conf:<sid>:audit <json>` + `LTRIM` (bounded) + `PEXPIRE`.
 *
 * Both give the one property the engine relies on: of all concurrent `tryClaimEnd` calls for a
 * conference, across instances, exactly one resolves true until an outcome of `failed`
 * releases it.
 */
import type { AuditEntry, OutcomeRecord, ScopeKind } from './types.js';

export type EndState = 'open' | 'claimed' | 'ended';

export interface ConferenceRecord {
  /** A conference SID (`CF…`), or a stream SID (`MZ…`) for a stream without a conference. */
  readonly id: string;
  readonly kind: ScopeKind;
  /** Wall clock, ms since epoch. */
  readonly createdAtMs: number;
  /** Stream SIDs currently in the conference. */
  readonly streams: readonly string[];
  readonly endState: EndState;
  /** The last outcome recorded (also after a `failed` one released the claim). */
  readonly outcome: OutcomeRecord | null;
}

/** See the module comment. Every method may be called concurrently and must not throw for a missing id. */
export interface ConferenceStore {
  /** The record, created (open, no streams) when absent. */
  getOrCreate(id: string, kind: ScopeKind, createdAtMs: number): Promise<ConferenceRecord>;
  get(id: string): Promise<ConferenceRecord | undefined>;
  addStream(id: string, kind: ScopeKind, streamSid: string): Promise<void>;
  /** Resolves to the number of streams left. */
  removeStream(id: string, streamSid: string): Promise<number>;
  /** Compare-and-set open → claimed; true for exactly one caller. Creates the record when absent. */
  tryClaimEnd(id: string, kind: ScopeKind): Promise<boolean>;
  /** Stores the outcome of a claimed end: `failed` reopens the claim, anything else ends it. */
  recordOutcome(id: string, outcome: OutcomeRecord): Promise<void>;
  /** The conference ended by other means (Twilio's `conference-end`): no claim succeeds any more. */
  markEnded(id: string, outcome: OutcomeRecord): Promise<void>;
  appendAudit(id: string, entry: AuditEntry): Promise<void>;
  /** The conference's decisions, oldest first (empty for an unknown id). */
  audit(id: string): Promise<readonly AuditEntry[]>;
  /** Forgets the conference (after its retention). */
  delete(id: string): Promise<void>;
}

interface MutableRecord {
  id: string;
  kind: ScopeKind;
  createdAtMs: number;
  streams: Set<string>;
  endState: EndState;
  outcome: OutcomeRecord | null;
  audit: AuditEntry[];
}

/** One instance's store: a Map. Audit trails are bounded (oldest entries dropped). */
export class InMemoryConferenceStore implements ConferenceStore {
  readonly #records = new Map<string, MutableRecord>();
  readonly #maxAudit: number;

  constructor(opts: { maxAuditEntries?: number } = {}) {
    this.#maxAudit = opts.maxAuditEntries ?? 200;
  }

  /** Records held (for tests and leak checks). */
  get size(): number {
    return this.#records.size;
  }

  async getOrCreate(id: string, kind: ScopeKind, createdAtMs: number): Promise<ConferenceRecord> {
    return snapshot(this.#record(id, kind, createdAtMs));
  }

  async get(id: string): Promise<ConferenceRecord | undefined> {
    const r = this.#records.get(id);
    return r === undefined ? undefined : snapshot(r);
  }

  async addStream(id: string, kind: ScopeKind, streamSid: string): Promise<void> {
    this.#record(id, kind, Date.now()).streams.add(streamSid);
  }

  async removeStream(id: string, streamSid: string): Promise<number> {
    const r = this.#records.get(id);
    if (r === undefined) return 0;
    r.streams.delete(streamSid);
    return r.streams.size;
  }

  async tryClaimEnd(id: string, kind: ScopeKind): Promise<boolean> {
    // Check and set in one synchronous step: no await between them, so no interleaving.
    const r = this.#record(id, kind, Date.now());
    if (r.endState !== 'open') return false;
    r.endState = 'claimed';
    return true;
  }

  async recordOutcome(id: string, outcome: OutcomeRecord): Promise<void> {
    const r = this.#records.get(id);
    if (r === undefined) return;
    r.outcome = outcome;
    if (r.endState === 'claimed') r.endState = outcome.result === 'failed' ? 'open' : 'ended';
  }

  async markEnded(id: string, outcome: OutcomeRecord): Promise<void> {
    const r = this.#record(id, 'conference', Date.now());
    r.endState = 'ended';
    r.outcome ??= outcome;
  }

  async appendAudit(id: string, entry: AuditEntry): Promise<void> {
    const r = this.#record(id, entry.scopeKind, Date.now());
    r.audit.push(entry);
    if (r.audit.length > this.#maxAudit) r.audit.splice(0, r.audit.length - this.#maxAudit);
  }

  async audit(id: string): Promise<readonly AuditEntry[]> {
    return this.#records.get(id)?.audit.slice() ?? [];
  }

  async delete(id: string): Promise<void> {
    this.#records.delete(id);
  }

  #record(id: string, kind: ScopeKind, createdAtMs: number): MutableRecord {
    let r = this.#records.get(id);
    if (r === undefined) {
      r = { id, kind, createdAtMs, streams: new Set(), endState: 'open', outcome: null, audit: [] };
      this.#records.set(id, r);
    }
    return r;
  }
}

function snapshot(r: MutableRecord): ConferenceRecord {
  return { id: r.id, kind: r.kind, createdAtMs: r.createdAtMs, streams: [...r.streams], endState: r.endState, outcome: r.outcome };
}
