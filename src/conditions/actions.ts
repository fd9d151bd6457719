/**
 * What a decision does at Twilio: end a conference (UpdateConference Status=completed, after an
 * optional announcement), or stop a lone stream (UpdateStream Status=stopped). Retries on 429
 * and 5xx are the REST client's; here the final answer is classified into an {@link EndResult}.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { TwilioApiError, TwilioResponseError, TwilioTransportError } from '../twilio/errors.js';
import type { UpdateConferenceParams } from '../twilio/rest-client.js';
import type { ConferenceResource, StreamResource } from '../twilio/rest-responses.js';
import type { EndResult } from './types.js';

/** The two REST operations the engine needs; {@link TwilioRestClient} provides them. */
export interface ConditionsTwilio {
  updateConference(conferenceSid: string, params: UpdateConferenceParams): Promise<ConferenceResource>;
  updateStream(callSid: string, sidOrName: string, params: { status: 'stopped' }): Promise<StreamResource>;
}

/** Twilio codes meaning "that conference (or call) is already over" (docs/twilio-protocol.md §6.1, §7.2). */
const ALREADY_ENDED_CODES: ReadonlySet<number> = new Set([16022, 21220]);
const NOT_FOUND_CODE = 20404;

export interface ActionOutcome {
  result: Exclude<EndResult, 'dry-run' | 'suppressed'>;
  operation: 'UpdateConference' | 'UpdateStream';
  httpStatus: number | null;
  twilioCode: number | null;
  /** The resource's status after a success (`completed`, `stopped`). */
  status: string | null;
  error: string | null;
  /** What the REST client threw, for callers that re-throw it (the admin API). */
  cause: unknown;
  /** `performance.now()` when the first request was sent. */
  sentAt: number;
  /** REST time, retries and announcement delay included, ms. */
  restMs: number;
}

export type ActionTarget =
  | { kind: 'conference'; conferenceSid: string; announceUrl: string | null; announceDelayMs: number }
  | { kind: 'stream'; callSid: string; streamSid: string };

/** Runs the action once; never rejects (every failure becomes a `failed` outcome). */
export async function runAction(twilio: ConditionsTwilio | null, target: ActionTarget, log: Logger): Promise<ActionOutcome> {
  const operation = target.kind === 'conference' ? 'UpdateConference' : 'UpdateStream';
  const sentAt = performance.now();
  const base = { operation, sentAt, httpStatus: null, twilioCode: null, status: null, error: null, cause: null } as const;
  if (twilio === null) {
    return { ...base, result: 'failed', error: 'Twilio REST credentials are not configured', restMs: 0 };
  }
  try {
    if (target.kind === 'stream') {
      const stream = await twilio.updateStream(target.callSid, target.streamSid, { status: 'stopped' });
      return { ...base, result: 'completed', httpStatus: 200, status: stream.status, restMs: performance.now() - sentAt };
    }
    if (target.announceUrl !== null) {
      try {
        await twilio.updateConference(target.conferenceSid, { announceUrl: target.announceUrl });
      } catch (err) {
        const c = classify(err);
        // A conference that is gone needs no end; any other announcement failure must not keep it alive.
        if (c.result !== 'failed') return { ...base, ...c, cause: err, restMs: performance.now() - sentAt };
        log.warn({ conferenceSid: target.conferenceSid, error: c.error }, 'announcement failed; ending the conference anyway');
      }
      if (target.announceDelayMs > 0) await sleep(target.announceDelayMs);
    }
    const conference = await twilio.updateConference(target.conferenceSid, { status: 'completed' });
    return { ...base, result: 'completed', httpStatus: 200, status: conference.status, restMs: performance.now() - sentAt };
  } catch (err) {
    return { ...base, ...classify(err), cause: err, restMs: performance.now() - sentAt };
  }
}

/** Maps a REST client failure to a result; "already over" and "not found" count as done. */
export function classify(err: unknown): { result: ActionOutcome['result']; httpStatus: number | null; twilioCode: number | null; error: string } {
  if (err instanceof TwilioApiError) {
    const { status, twilioCode } = err;
    const result =
      twilioCode === NOT_FOUND_CODE || (status === 404 && (twilioCode === null || !ALREADY_ENDED_CODES.has(twilioCode)))
        ? 'not-found'
        : status === 400 || (twilioCode !== null && ALREADY_ENDED_CODES.has(twilioCode))
          ? 'already-ended'
          : 'failed';
    return { result, httpStatus: status, twilioCode, error: err.message };
  }
  if (err instanceof TwilioResponseError) return { result: 'failed', httpStatus: err.status, twilioCode: null, error: err.message };
  if (err instanceof TwilioTransportError) return { result: 'failed', httpStatus: null, twilioCode: null, error: err.message };
  return { result: 'failed', httpStatus: null, twilioCode: null, error: err instanceof Error ? err.message : String(err) };
}
