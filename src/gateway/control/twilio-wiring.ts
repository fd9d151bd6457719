/**
 * Everything the gateway does with Twilio beyond `/media`, built from parts made before it (see
 * app.ts for the order): the stream starter, the start guard and the admin and webhook routes.
 * app.ts passes `checkStart` and `routes` to the Gateway; tests build the same parts against the
 * emulator.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { EndConference } from '../../core/conference.js';
import type { EventBus } from '../../core/events.js';
import type { StartFields } from '../../twilio/protocol.js';
import { TwilioRestClient, type RequestObserver } from '../../twilio/rest-client.js';
import { STREAM_TOKEN_PARAMETER, deriveStreamTokenSecret, verifyStreamToken } from '../../twilio/stream-token.js';
import { CONFERENCE_PARAMETER } from '../../core/stream.js';
import { ConferenceMembership } from './conference-membership.js';
import { adminRoutes, type AdminExtension, type LevelSource } from './admin-routes.js';
import type { SharedState } from '../shared-state.js';
import { restEndConference } from './conference-end.js';
import type { GatewayConfig } from '../config.js';
import type { Gateway } from '../server.js';
import { createStartGuard } from './start-guard.js';
import { StreamStarter, publicUrlAs } from './stream-starter.js';
import { TokenLedger } from './token-ledger.js';
import { webhookRoutes } from './webhook-routes.js';

export interface TwilioControlOptions {
  config: GatewayConfig;
  log: Logger;
  bus: EventBus;
  /** Null without REST credentials ({@link restClientFromConfig}). */
  client: TwilioRestClient | null;
  /** What `POST /v1/conferences/{sid}/end` calls; default plain REST ({@link restEndConference}). */
  endConference?: EndConference;
  /** More `/v1` routes behind the admin auth (e.g. `GET /v1/transcripts`). */
  adminExtensions?: readonly AdminExtension[];
  /** REDIS_URL: the join claims the starter uses and the stream list the admin API merges (shared-state.ts). */
  shared?: SharedState | null;
  /** Live per-track levels for `GET /v1/streams` (the level sink's meter). */
  levels?: LevelSource;
}

export interface TwilioControl {
  starter: StreamStarter;
  checkStart: (start: StartFields) => string | null;
  /** Null without TWILIO_AUTH_TOKEN (nothing is signed, so nothing can be verified: all trusted). */
  trustConference: ((start: StartFields) => boolean) | null;
  routes: ((app: FastifyInstance, gateway: Gateway) => void)[];
}

export function twilioControl(opts: TwilioControlOptions): TwilioControl {
  const { config, log, client } = opts;
  const tokenSecret = deriveStreamTokenSecret(config.twilioAuthToken);
  const ledger = new TokenLedger();
  const starter = new StreamStarter({ client, publicUrl: config.publicUrl, tokenSecret, log, ledger });
  const shared = opts.shared ?? null;
  if (shared !== null) starter.joinGate = shared.joinGate;
  opts.bus.on('stream-end', (info) => starter.streamEnded(info.streamSid));
  const endConference = opts.endConference ?? restEndConference(client, log);
  const membership = new ConferenceMembership();
  return {
    starter,
    checkStart: createStartGuard({ secret: tokenSecret, required: config.streamTokenRequired, accountSid: config.twilioAccountSid, ledger }),
    trustConference: config.twilioAuthToken === undefined ? null : conferenceTrust(tokenSecret, starter, membership),
    routes: [
      adminRoutes({ starter, endConference, extensions: opts.adminExtensions, peerStreams: shared?.peerStreams, processId: shared?.processId, levels: opts.levels }),
      webhookRoutes({ starter, bus: opts.bus, membership }),
    ],
  };
}

/**
 * A stream may act on the conference its `conferenceSid` parameter names (README "Trust model")
 * when it carries a valid token for its call and that conference, when streamgate created it
 * for that conference, or when the conference's signed callbacks reported its call as a
 * participant. Tokens were already checked by the start guard; checking again keeps this
 * independent of the order the session asks in.
 */
function conferenceTrust(secret: Buffer, starter: StreamStarter, membership: ConferenceMembership): (start: StartFields) => boolean {
  return (start) => {
    const conferenceSid = start.customParameters[CONFERENCE_PARAMETER];
    if (conferenceSid === undefined) return true;
    if (verifyStreamToken(secret, start.customParameters[STREAM_TOKEN_PARAMETER], start.callSid, conferenceSid)) return true;
    if (starter.get(start.streamSid)?.conferenceSid === conferenceSid) return true;
    return membership.has(conferenceSid, start.callSid);
  };
}

/**
 * The REST client for the configured credentials (an API key wins over the auth token), or
 * null when there are none: the admin API then answers 503 and participant-join streams nothing.
 */
export function restClientFromConfig(config: GatewayConfig, log: Logger, observe?: RequestObserver): TwilioRestClient | null {
  const accountSid = config.twilioAccountSid;
  if (accountSid === undefined) return null;
  const apiKey = config.twilioApiKeySid !== undefined && config.twilioApiKeySecret !== undefined;
  if (!apiKey && config.twilioAuthToken === undefined) return null;
  if (/(^|\.)twilio\.com$/i.test(new URL(config.twilioApiUrl).hostname) && !publicUrlAs(config.publicUrl, 'ws').startsWith('wss:')) {
    log.warn({ publicUrl: config.publicUrl }, 'PUBLIC_URL is not https: Twilio only dials wss:// stream URLs');
  }
  return new TwilioRestClient({
    baseUrl: config.twilioApiUrl,
    accountSid,
    username: apiKey ? config.twilioApiKeySid! : accountSid,
    password: apiKey ? config.twilioApiKeySecret! : config.twilioAuthToken!,
    logger: log,
    observe,
  });
}
