/**
 * The REST way to end a conference: UpdateConference Status=completed, every time it is called.
 * It keeps no state and counts nothing beyond the REST metrics: "at most once", the
 * `conferences_ended_total` count and the audit record belong to the conditions engine, whose
 * `endConferenceHook()` the app gives the admin API instead when Twilio is configured
 * (ARCHITECTURE.md "Life of one conference").
 */
import type { Logger } from 'pino';
import type { EndConference } from '../../core/conference.js';
import { TwilioNotConfiguredError } from '../../errors.js';
import type { TwilioRestClient } from '../../twilio/rest-client.js';

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
