/**
 * Binds per-call stream tokens to the streams the gateway asked for, and makes each use count.
 * The token (twilio/stream-token.ts) is an HMAC of the call and conference, so on its own it
 * would admit any number of streams of that call. The stream starter tells the ledger about
 * every CreateStream: first while in flight (call and conference known, the MZ SID not yet),
 * then with the SID Twilio returned. A `start` carrying a valid token is then admitted only as:
 *
 * - a stream the gateway is waiting for on that call and conference: the one with its SID, or
 *   one still in flight (its SID unknown); that expectation is used up;
 * - else, when nothing is expected for that call and conference here (the token was issued by
 *   another gateway process, or before a restart), the first use of the token.
 *
 * A second use of a token is refused (`token_reused`), as is a start for another stream while
 * this call's expected streams have other SIDs (`token_stream_mismatch`).
 * Both tables are bounded by age and count.
 */
export type TokenClaim = null | 'token_reused' | 'token_stream_mismatch';

export interface TokenLedgerOptions {
  /** How long a CreateStream waits for its `start` (default 120 s, as the starter's pending window). */
  pendingTtlMs?: number;
  /** How long a used token stays refused (default 24 h: longer than any call). */
  usedTtlMs?: number;
  /** Expected streams kept at most (default 1000). */
  maxPending?: number;
  /** Used tokens kept at most (default 20 000). */
  maxUsed?: number;
  now?: () => number;
}

/** One CreateStream the gateway made (or is making). */
export interface ExpectedStream {
  readonly callSid: string;
  readonly conferenceSid: string | null;
  /** Null while CreateStream is in flight. */
  streamSid: string | null;
  readonly expiresAt: number;
}

export class TokenLedger {
  readonly #pendingTtlMs: number;
  readonly #usedTtlMs: number;
  readonly #maxPending: number;
  readonly #maxUsed: number;
  readonly #now: () => number;
  /** Insertion order = oldest first. */
  readonly #pending = new Set<ExpectedStream>();
  /** token → expiry (ms); insertion order = oldest first. */
  readonly #used = new Map<string, number>();

  constructor(opts: TokenLedgerOptions = {}) {
    this.#pendingTtlMs = opts.pendingTtlMs ?? 120_000;
    this.#usedTtlMs = opts.usedTtlMs ?? 24 * 3_600_000;
    this.#maxPending = opts.maxPending ?? 1000;
    this.#maxUsed = opts.maxUsed ?? 20_000;
    this.#now = opts.now ?? Date.now;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** A CreateStream is about to be sent; bind its SID with {@link bound} or forget it with {@link drop}. */
  expect(callSid: string, conferenceSid: string | null): ExpectedStream {
    this.#prune();
    const e: ExpectedStream = { callSid, conferenceSid, streamSid: null, expiresAt: this.#now() + this.#pendingTtlMs };
    this.#pending.add(e);
    while (this.#pending.size > this.#maxPending) {
      const oldest = this.#pending.values().next().value;
      if (oldest === undefined) break;
      this.#pending.delete(oldest);
    }
    return e;
  }

  /** Twilio answered CreateStream with this SID. */
  bound(e: ExpectedStream, streamSid: string): void {
    e.streamSid = streamSid;
  }

  /** CreateStream failed: nothing will connect. */
  drop(e: ExpectedStream): void {
    this.#pending.delete(e);
  }

  /** Decides a `start` whose token already verified for this call and conference. */
  claim(token: string, callSid: string, conferenceSid: string | null, streamSid: string): TokenClaim {
    this.#prune();
    let inFlight: ExpectedStream | null = null;
    let exact: ExpectedStream | null = null;
    let expected = false;
    for (const e of this.#pending) {
      if (e.callSid !== callSid || e.conferenceSid !== conferenceSid) continue;
      expected = true;
      if (e.streamSid === streamSid) exact = e;
      else if (e.streamSid === null) inFlight ??= e;
    }
    const match = exact ?? inFlight;
    if (match !== null) {
      this.#pending.delete(match);
      if (match.streamSid === null) match.streamSid = streamSid;
      this.#use(token);
      return null;
    }
    if (expected) return 'token_stream_mismatch';
    if (this.#used.has(token)) return 'token_reused';
    this.#use(token);
    return null;
  }

  #use(token: string): void {
    this.#used.delete(token);
    this.#used.set(token, this.#now() + this.#usedTtlMs);
    while (this.#used.size > this.#maxUsed) {
      const oldest = this.#used.keys().next().value;
      if (oldest === undefined) break;
      this.#used.delete(oldest);
    }
  }

  #prune(): void {
    const now = this.#now();
    for (const e of this.#pending) {
      if (e.expiresAt > now) break;
      this.#pending.delete(e);
    }
    for (const [token, expiresAt] of this.#used) {
      if (expiresAt > now) break;
      this.#used.delete(token);
    }
  }
}
