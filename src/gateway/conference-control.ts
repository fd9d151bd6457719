/**
 * The two conference hooks other parts plug into, held in one object so they can be supplied
 * after the gateway is built (the conditions engine needs the gateway's event bus first):
 *
 * - `endConference`: what `POST /v1/conferences/{sid}/end` calls. The default asks Twilio
 *   directly (UpdateConference Status=completed); the conditions engine replaces it with its
 *   end-at-most-once implementation so that rules and the admin API share one audit trail.
 * - `onConferenceEnd`: listeners told when Twilio reports `conference-end`, so conference
 *   state can be closed.
 */
import type { Logger } from 'pino';
import type { ConferenceEndEvent, EndConference } from '../core/conference.js';
import type { TwilioRestClient } from '../twilio/rest-client.js';
import { TwilioNotConfiguredError } from '../errors.js';

export type ConferenceEndListener = (event: ConferenceEndEvent) => void;

export class ConferenceControl {
  /** Replaceable; see the module comment. */
  endConference: EndConference;
  readonly #listeners: ConferenceEndListener[] = [];
  readonly #log: Logger;

  constructor(opts: { client: TwilioRestClient | null; log: Logger }) {
    this.#log = opts.log;
    this.endConference = restEndConference(opts.client, opts.log);
  }

  /** Adds a conference-end listener; returns its remover. */
  onConferenceEnd(listener: ConferenceEndListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** Tells every listener; one that throws is logged and does not stop the others. */
  emitConferenceEnd(event: ConferenceEndEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#log.error({ err, conferenceSid: event.conferenceSid }, 'conference-end listener threw');
      }
    }
  }
}

/**
 * The default `endConference`: UpdateConference Status=completed, every time it is called.
 * It keeps no state and counts nothing beyond the REST metrics: "at most once", the
 * `conferences_ended_total` count and the audit record belong to the conditions engine.
 */
export function restEndConference(client: TwilioRestClient | null, log: Logger): EndConference {
  return async (conferenceSid, source) => {
    if (client === null) throw new TwilioNotConfiguredError();
    try {
      const conference = await client.updateConference(conferenceSid, { status: 'completed' });
      log.info({ conferenceSid, source, reason: conference.reason_conference_ended }, 'conference ended');
      return { conferenceSid, result: 'ended', status: conference.status };
    } catch (err) {
      log.warn({ err, conferenceSid, source }, 'conference end failed');
      throw err;
    }
  };
}
