/** What the conditions engine decides and records: results, evidence, audit entries; the counters it bumps. */
import type { Counter } from 'prom-client';
import type { Track } from '../core/stream.js';

/** The counters the conditions engine bumps (the gateway's metrics provide them). */
export interface ConditionsMetrics {
  conditionsTriggered: Counter<'rule'>;
  conferencesEnded: Counter<'result'>;
}

/**
 * Outcome of one decision; also the `result` label of `conferences_ended_total` (except
 * `suppressed`, which is not an end action and is only logged and audited).
 *
 * - `completed`: Twilio answered 200 (UpdateConference Status=completed, or UpdateStream stopped).
 * - `already-ended`: Twilio answered 400, or Twilio code 16022 / 21220: the conference (stream)
 *   had already ended. Undocumented (docs/twilio-protocol.md §6.1), so it counts as done, and is logged.
 * - `not-found`: 404 / Twilio 20404: no such conference (stream); also counts as done.
 * - `failed`: anything else after the REST client's own retries (429, 5xx, timeouts); the end
 *   claim is released so a later rule or the admin API can try again.
 * - `dry-run`: the rule has `dryRun: true`; nothing was sent.
 * - `suppressed`: another rule, request or instance already claimed the end; nothing was sent.
 */
export type EndResult = 'completed' | 'already-ended' | 'not-found' | 'failed' | 'dry-run' | 'suppressed';

/** A scope is a conference (streams grouped by `conferenceSid`) or a lone stream without one. */
export type ScopeKind = 'conference' | 'stream';

export type Trigger = 'phrase' | 'regex' | 'silence' | 'max-duration' | 'dtmf' | 'api';

export interface SilentTrack {
  streamSid: string;
  track: Track;
  /** Media-clock span (that stream's clock) of the silence, ms. */
  fromMs: number;
  toMs: number;
}

/** Why a decision was made. Transcript text is cut to 500 characters. */
export type Evidence =
  | { kind: 'transcript'; text: string; matched: string; final: boolean; track: Track; streamSid: string; callSid: string; startMs: number; endMs: number }
  | { kind: 'spotted'; phrase: string; matched: string; track: Track; streamSid: string; callSid: string; startMs: number; endMs: number }
  | { kind: 'silence'; silentMs: number; tracks: SilentTrack[] }
  | { kind: 'duration'; clock: 'media' | 'wall'; ageMs: number }
  | { kind: 'dtmf'; digits: string; streamSid: string; atMs: number }
  | { kind: 'api'; reason: string };

/** The final word on a scope, as the store keeps it. */
export interface OutcomeRecord {
  result: EndResult;
  /** The rule name, `api:<reason>` for the admin API, or `conference-end` for Twilio's callback. */
  by: string;
  /** Wall clock, ms since epoch. */
  atMs: number;
}

/** One decision: what held, on what evidence, what was done and how long it took. */
export interface AuditEntry {
  /** Wall clock of the decision's completion, ms since epoch. */
  atMs: number;
  scope: string;
  scopeKind: ScopeKind;
  /** The rule; null for an admin API request. */
  rule: string | null;
  trigger: Trigger;
  evidence: Evidence;
  /** Media-clock time of the evidence on its stream's clock (end of the transcript, silence threshold crossed, …); null for the API. */
  mediaMs: number | null;
  dryRun: boolean;
  result: EndResult;
  /**
   * Evidence available → the action's first REST request sent, ms (for dry-run and suppressed
   * decisions: → the decision). For silence and duration, the evidence moment is the media-clock
   * crossing mapped to wall time through the frame that revealed it.
   */
  decisionLatencyMs: number;
  /** Time spent in REST calls (announcement, end, retries), ms; null when none was made. */
  restMs: number | null;
  operation: 'UpdateConference' | 'UpdateStream' | null;
  httpStatus: number | null;
  twilioCode: number | null;
  error: string | null;
}
