/**
 * Carrying out a decision, once per scope: claim the end in the store, act at Twilio, record
 * the outcome, then log it (one line), count it and append it to the audit.
 *
 *   decision ─► store.tryClaimEnd ─┬─ won ──► runAction (REST) ─► recordOutcome ─┐
 *                                   └─ lost ─► "suppressed" (the winner's outcome) ─┴─► log, metrics, audit
 *   dry-run decision ──────────────────────────────────────────────────────────────────► log, metrics, audit
 */
import type { Logger } from 'pino';
import { runAction, type ActionOutcome, type ActionTarget, type ConditionsTwilio } from './actions.js';
import type { Scope } from './evaluate.js';
import type { Rule } from './rules.js';
import type { ConferenceStore } from './store.js';
import type { AuditEntry, ConditionsMetrics, EndResult, Evidence, OutcomeRecord, ScopeKind, Trigger } from './types.js';

/** What one decision came to; `ConditionsEngine.endConference` resolves to it. */
export interface EndOutcome extends Pick<ActionOutcome, 'httpStatus' | 'twilioCode' | 'status' | 'error' | 'cause'> {
  scope: string;
  scopeKind: ScopeKind;
  result: EndResult;
  /** For `suppressed`: the outcome of the end that won, when known. */
  previous: OutcomeRecord | null;
  audit: AuditEntry;
}

/** A decision before it is carried out. */
export interface Draft {
  /** The rule; null for the admin API. */
  rule: string | null;
  /** Who decided, as the store records it: the rule name, or `api:<reason>`. */
  by: string;
  trigger: Trigger;
  evidence: Evidence;
  mediaMs: number | null;
  dryRun: boolean;
  /** `performance.now()` when the evidence was available. */
  evidenceAt: number;
}

export interface DeciderOptions {
  store: ConferenceStore;
  twilio: ConditionsTwilio | null;
  log: Logger;
  metrics: Pick<ConditionsMetrics, 'conferencesEnded'>;
}

export class Decider {
  readonly #store: ConferenceStore;
  readonly #twilio: ConditionsTwilio | null;
  readonly #log: Logger;
  readonly #metrics: DeciderOptions['metrics'];

  constructor(opts: DeciderOptions) {
    this.#store = opts.store;
    this.#twilio = opts.twilio;
    this.#log = opts.log;
    this.#metrics = opts.metrics;
  }

  /** A dry-run decision: recorded, nothing sent. */
  dryRun(scope: Scope, draft: Draft): Promise<EndOutcome> {
    return this.#finish(scope, draft, null, 'dry-run', null);
  }

  /**
   * Claims the end, acts once, records the outcome. Never rejects. While the action runs the
   * scope is `ending` (`scope.ending` holds it); afterwards `ended`, or `live` again after a
   * failure (unless Twilio reported the conference over meanwhile).
   */
  async end(scope: Scope, draft: Draft, rule: Rule | null): Promise<EndOutcome>;
  /**
   * With `onStoreError: 'defer'`, a store that cannot be reached (a shared one, REDIS_URL) makes
   * it resolve to null with nothing logged, counted or audited: the caller tries again later.
   */
  async end(scope: Scope, draft: Draft, rule: Rule | null, onStoreError: 'defer'): Promise<EndOutcome | null>;
  async end(scope: Scope, draft: Draft, rule: Rule | null, onStoreError: 'fail' | 'defer' = 'fail'): Promise<EndOutcome | null> {
    let claimed: boolean;
    try {
      claimed = await this.#store.tryClaimEnd(scope.id, scope.kind);
    } catch (err) {
      if (onStoreError === 'defer') return null;
      const failure = failedWithoutRequest(`conference store: ${err instanceof Error ? err.message : String(err)}`, err);
      return this.#finish(scope, draft, failure, 'failed', null);
    }
    if (!claimed) {
      const previous = (await this.#store.get(scope.id).catch(() => undefined))?.outcome ?? null;
      return this.#finish(scope, draft, null, 'suppressed', previous);
    }
    scope.state = 'ending';
    const target: ActionTarget =
      scope.kind === 'conference'
        ? { kind: 'conference', conferenceSid: scope.id, announceUrl: rule?.announceUrl ?? null, announceDelayMs: rule?.announceDelayMs ?? 0 }
        : { kind: 'stream', callSid: scope.callSid!, streamSid: scope.id };
    const acting = runAction(this.#twilio, target, this.#log);
    scope.ending = acting;
    const outcome = await acting;
    scope.ending = null;
    scope.state = outcome.result === 'failed' && !scope.endedByCallback ? 'live' : 'ended';
    if (scope.state === 'ended' && scope.streams.size === 0) scope.idleSinceMs = Date.now();
    try {
      await this.#store.recordOutcome(scope.id, { result: outcome.result, by: draft.by, atMs: Date.now() });
    } catch (err) {
      this.#log.error({ err, scope: scope.id }, 'conference store: recording the outcome failed');
    }
    return this.#finish(scope, draft, outcome, outcome.result, null);
  }

  /** The outcome the store holds for a scope (null when none or unreadable). */
  async outcomeOf(scopeId: string): Promise<OutcomeRecord | null> {
    return (await this.#store.get(scopeId).catch(() => undefined))?.outcome ?? null;
  }

  /** Logs, counts and audits one decision. */
  async #finish(scope: Scope, d: Draft, action: ActionOutcome | null, result: EndResult, previous: OutcomeRecord | null): Promise<EndOutcome> {
    const sent = action !== null && action.restMs > 0;
    const decidedAt = sent ? action.sentAt : performance.now();
    const entry: AuditEntry = {
      atMs: Date.now(),
      scope: scope.id,
      scopeKind: scope.kind,
      rule: d.rule,
      trigger: d.trigger,
      evidence: d.evidence,
      mediaMs: d.mediaMs,
      dryRun: d.dryRun,
      result,
      decisionLatencyMs: round1(Math.max(0, decidedAt - d.evidenceAt)),
      restMs: sent ? round1(action.restMs) : null,
      operation: sent ? action.operation : null,
      httpStatus: action?.httpStatus ?? null,
      twilioCode: action?.twilioCode ?? null,
      error: action?.error ?? null,
    };
    if (scope.kind === 'conference' && result !== 'suppressed') this.#metrics.conferencesEnded.labels(result).inc();
    const fields = {
      [scope.kind === 'conference' ? 'conferenceSid' : 'streamSid']: scope.id,
      ...entry,
      ...(previous === null ? {} : { previous }),
    };
    if (result === 'failed') this.#log.error(fields, 'conditions decision');
    else this.#log.info(fields, 'conditions decision');
    try {
      await this.#store.appendAudit(scope.id, entry);
    } catch (err) {
      this.#log.error({ err, scope: scope.id }, 'conference store: appending to the audit failed');
    }
    return {
      scope: scope.id,
      scopeKind: scope.kind,
      result,
      httpStatus: entry.httpStatus,
      twilioCode: entry.twilioCode,
      status: action?.status ?? null,
      error: entry.error,
      cause: action?.cause ?? null,
      previous,
      audit: entry,
    };
  }
}

function failedWithoutRequest(error: string, cause: unknown): ActionOutcome {
  return { result: 'failed', operation: 'UpdateConference', httpStatus: null, twilioCode: null, status: null, error, cause, sentAt: performance.now(), restMs: 0 };
}

function round1(ms: number): number {
  return Math.round(ms * 10) / 10;
}
