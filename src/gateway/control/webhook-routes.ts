/**
 * Twilio's status callbacks (docs/design.md "Routes"), one encapsulated plugin with its own
 * form-body parser:
 *
 * - `POST /twilio/stream-status`: CreateStream's StatusCallback (docs/twilio-protocol.md §5).
 * - `POST /twilio/conference-events`: conference status callbacks (§6.2). `participant-join`
 *   streams the participant's call (AUTO_STREAM_TRACK; `off` disables); `conference-end` is
 *   published on the event bus (the conditions engine and live subscribers hear it).
 *
 * With TWILIO_AUTH_TOKEN set, X-Twilio-Signature is checked (§8) over PUBLIC_URL + the
 * request path and query + the form parameters, before anything in the body is acted on;
 * a missing or wrong signature is answered 403 and counted under
 * `protocol_errors_total{reason="webhook_signature_missing"|"webhook_signature_invalid"}`.
 * Answers are 204 and immediate: Twilio gives a callback 15 s, and CreateStream for a joining
 * participant runs in the background.
 *
 * A signature does not expire, so a delivery already acted on (same subject, event and
 * SequenceNumber/Timestamp, within 15 min: webhook-replay.ts) is answered 204 again, so Twilio
 * never retries it, but does nothing, and counts in
 * `protocol_errors_total{reason="webhook_replay"}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isSid, SID_PATTERNS } from '../../twilio/sids.js';
import { parseForm, type FormBody } from '../../twilio/form.js';
import { validateSignature } from '../../twilio/signature.js';
import { FieldError, sendRouteError } from './route-errors.js';
import type { EventBus } from '../../core/events.js';
import type { Gateway } from '../server.js';
import { STATE } from '../media/stream-state.js';
import type { ConferenceMembership } from './conference-membership.js';
import { ReplayWindow } from './webhook-replay.js';
import { publicUrlAs, type StreamStarter } from './stream-starter.js';
import { CONFERENCE_EVENTS_PATH, STREAM_STATUS_PATH } from '../../core/routes.js';

const FORM_TYPE = 'application/x-www-form-urlencoded';
/** Twilio's callbacks are a few hundred bytes. */
const FORM_BODY_LIMIT = 64 * 1024;
const STREAM_EVENTS = new Set(['stream-started', 'stream-stopped', 'stream-error']);

export interface WebhookRoutesOptions {
  starter: StreamStarter;
  /** Participants as the (signed) conference callbacks report them; read by the stream trust check. */
  membership?: ConferenceMembership;
  /** Where a verified `conference-end` is published (the conditions engine and live subscribers listen). */
  bus: EventBus;
}

const streamStatusSchema = {
  body: {
    type: 'object',
    required: ['StreamSid', 'CallSid', 'StreamEvent'],
    properties: {
      AccountSid: { type: 'string', pattern: SID_PATTERNS.account.source },
      CallSid: { type: 'string', pattern: SID_PATTERNS.call.source },
      StreamSid: { type: 'string', pattern: SID_PATTERNS.stream.source },
      StreamName: { type: 'string', maxLength: 1024 },
      StreamEvent: { type: 'string', minLength: 1, maxLength: 64 },
      StreamError: { type: 'string', maxLength: 4096 },
      Timestamp: { type: 'string', maxLength: 64 },
    },
  },
} as const;

const conferenceEventsSchema = {
  body: {
    type: 'object',
    required: ['ConferenceSid', 'StatusCallbackEvent'],
    properties: {
      AccountSid: { type: 'string', pattern: SID_PATTERNS.account.source },
      ConferenceSid: { type: 'string', pattern: SID_PATTERNS.conference.source },
      CallSid: { type: 'string', pattern: SID_PATTERNS.call.source },
      StatusCallbackEvent: { type: 'string', minLength: 1, maxLength: 64 },
      FriendlyName: { type: 'string', maxLength: 1024 },
      ReasonConferenceEnded: { type: 'string', maxLength: 256 },
      CallSidEndingConference: { type: 'string', maxLength: 64 },
      Timestamp: { type: 'string', maxLength: 64 },
      SequenceNumber: { type: 'string', maxLength: 32 },
    },
  },
} as const;

interface StreamStatusBody {
  AccountSid?: string;
  CallSid: string;
  StreamSid: string;
  StreamName?: string;
  StreamEvent: string;
  StreamError?: string;
  Timestamp?: string;
}

interface ConferenceEventBody {
  AccountSid?: string;
  ConferenceSid: string;
  CallSid?: string;
  StatusCallbackEvent: string;
  FriendlyName?: string;
  ReasonConferenceEnded?: string;
  CallSidEndingConference?: string;
  Timestamp?: string;
  SequenceNumber?: string;
}

/** A `GatewayParts.routes` entry that registers both webhooks. */
export function webhookRoutes(opts: WebhookRoutesOptions): (app: FastifyInstance, gateway: Gateway) => void {
  return (app, gateway) => {
    app.register(async (scope) => {
      scope.addContentTypeParser(FORM_TYPE, { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_req, body, done) => {
        done(null, parseForm(body as string));
      });
      scope.addHook('preValidation', signatureCheck(gateway));
      scope.setErrorHandler(sendRouteError);
      registerRoutes(scope, gateway, opts);
    });
  };
}

function registerRoutes(scope: FastifyInstance, gateway: Gateway, opts: WebhookRoutesOptions): void {
  const { starter, bus } = opts;
  const { metrics, config } = gateway;
  let warnedNoClient = false;
  const deliveries = new ReplayWindow();
  /** True (and counted) when this delivery was already acted on. */
  const replayed = (req: FastifyRequest, ...key: (string | undefined)[]): boolean => {
    if (!deliveries.replayed(...key)) return false;
    metrics.protocolErrors.labels('webhook_replay').inc();
    req.log.warn({ path: req.routeOptions.url, event: key[1] }, 'webhook delivery replayed; ignored');
    return true;
  };

  scope.post<{ Body: StreamStatusBody }>(STREAM_STATUS_PATH, { schema: streamStatusSchema }, async (req, reply) => {
    const b = req.body;
    const event = b.StreamEvent;
    if (replayed(req, b.StreamSid, event, b.Timestamp)) return reply.code(204).send();
    // Label values stay a closed set whatever Twilio (or anyone) sends.
    metrics.streamCallbacks.labels(STREAM_EVENTS.has(event) ? event : 'other').inc();
    const entry = starter.recordCallback({
      streamSid: b.StreamSid,
      callSid: b.CallSid,
      event,
      name: b.StreamName ?? null,
      error: b.StreamError ?? null,
    });
    const fields = { streamSid: b.StreamSid, callSid: b.CallSid, event, name: entry.name, timestamp: b.Timestamp };
    if (event === 'stream-error') req.log.warn({ ...fields, streamError: b.StreamError }, 'stream error reported by twilio');
    else req.log.info(fields, 'stream status callback');
    return reply.code(204).send();
  });

  scope.post<{ Body: ConferenceEventBody }>(CONFERENCE_EVENTS_PATH, { schema: conferenceEventsSchema }, async (req, reply) => {
    const b = req.body;
    const conferenceSid = b.ConferenceSid;
    if (replayed(req, conferenceSid, b.StatusCallbackEvent, b.CallSid, b.SequenceNumber ?? b.Timestamp)) return reply.code(204).send();
    switch (b.StatusCallbackEvent) {
      case 'participant-join': {
        const callSid = b.CallSid;
        if (callSid === undefined) throw new FieldError('CallSid', 'participant-join needs CallSid');
        req.log.info({ conferenceSid, callSid, sequence: b.SequenceNumber }, 'conference participant joined');
        opts.membership?.join(conferenceSid, callSid);
        const track = config.autoStreamTrack;
        if (track === 'off') break;
        if (!starter.configured) {
          if (!warnedNoClient) req.log.warn('participant joined but no Twilio REST credentials are set: not streaming it');
          warnedNoClient = true;
          break;
        }
        if (streamingHere(gateway, callSid)) break;
        const log = req.log;
        // Not awaited: Twilio waits for this answer, CreateStream can take a while.
        starter.autoStart(callSid, conferenceSid, track).then(
          (entry) => {
            if (entry === null) log.debug({ conferenceSid, callSid }, 'participant already streamed; no new stream');
          },
          (err: unknown) => log.error({ err, conferenceSid, callSid }, 'could not start the stream of a joining participant'),
        );
        break;
      }
      case 'conference-end': {
        const ending = b.CallSidEndingConference;
        const event = {
          conferenceSid,
          accountSid: b.AccountSid ?? null,
          friendlyName: b.FriendlyName ?? null,
          reason: b.ReasonConferenceEnded ?? null,
          callSidEndingConference: isSid('call', ending) ? ending : null,
          timestamp: b.Timestamp ?? null,
        };
        req.log.info({ conferenceSid, reason: event.reason, callSidEndingConference: event.callSidEndingConference }, 'conference ended (twilio)');
        starter.conferenceEnded(conferenceSid);
        opts.membership?.end(conferenceSid);
        bus.emit('conference-end', event);
        break;
      }
      case 'participant-leave':
        if (b.CallSid !== undefined) opts.membership?.leave(conferenceSid, b.CallSid);
        req.log.debug({ conferenceSid, callSid: b.CallSid }, 'conference participant left');
        break;
      default:
        req.log.debug({ conferenceSid, event: b.StatusCallbackEvent, callSid: b.CallSid }, 'conference callback');
    }
    return reply.code(204).send();
  });
}

/** A stream of this call is already open on this gateway (e.g. started by the caller's TwiML). */
function streamingHere(gateway: Gateway, callSid: string): boolean {
  for (const s of gateway.registry.sessions) {
    if (s.state === STATE.STARTED && s.info?.callSid === callSid) return true;
  }
  return false;
}

/** The preValidation hook: only form bodies, and with a token, only signed ones. */
function signatureCheck(gateway: Gateway): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const { config, metrics } = gateway;
  const token = config.twilioAuthToken;
  const origin = publicUrlAs(config.publicUrl, 'http');
  return async (req, reply) => {
    const type = req.headers['content-type'];
    if (typeof type !== 'string' || type.split(';')[0]!.trim().toLowerCase() !== FORM_TYPE) {
      await reply.code(415).send({ error: 'invalid_request', field: 'body', message: `Twilio callbacks are ${FORM_TYPE}` });
      return;
    }
    if (token === undefined) return;
    const header = req.headers['x-twilio-signature'];
    const signature = Array.isArray(header) ? header[0] : header;
    let reason: string | null = null;
    if (signature === undefined || signature === '') reason = 'webhook_signature_missing';
    // The URL Twilio called is the public one; req.url keeps the query string as sent.
    else if (!validateSignature(token, signature, origin + req.url, (req.body ?? {}) as FormBody)) reason = 'webhook_signature_invalid';
    if (reason === null) return;
    metrics.protocolErrors.labels(reason).inc();
    req.log.warn({ path: req.routeOptions.url, reason }, 'webhook refused');
    await reply.code(403).send({ error: 'forbidden', message: reason === 'webhook_signature_missing' ? 'X-Twilio-Signature required' : 'X-Twilio-Signature does not match' });
  };
}
