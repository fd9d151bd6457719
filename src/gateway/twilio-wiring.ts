/**
 * Everything the gateway does with Twilio beyond `/media`, composed from configuration in one
 * call: the REST client, the stream starter, the conference hooks, the start guard and the
 * admin and webhook routes. app.ts passes `checkStart` and `routes` to the Gateway; tests build
 * the same parts against a local Twilio stand-in.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { StartFields } from '../twilio/protocol.js';
import { TwilioRestClient, type RequestObserver } from '../twilio/rest-client.js';
import { deriveStreamTokenSecret } from '../twilio/stream-token.js';
import { adminRoutes, type AdminExtension } from './admin-routes.js';
import { ConferenceControl } from './conference-control.js';
import type { GatewayConfig } from './config.js';
import type { GatewayMetrics } from './metrics.js';
import type { Gateway } from './server.js';
import { createStartGuard } from './start-guard.js';
import { StreamStarter, publicUrlAs } from './stream-starter.js';
import { webhookRoutes } from './webhook-routes.js';

export interface TwilioParts {
  /** Null without REST credentials. */
  client: TwilioRestClient | null;
  starter: StreamStarter;
  /** Replace `endConference` / add `onConferenceEnd` listeners here (conditions engine). */
  conferences: ConferenceControl;
  checkStart: (start: StartFields) => string | null;
  routes: ((app: FastifyInstance, gateway: Gateway) => void)[];
}

export interface TwilioPartsOptions {
  /** More `/v1` routes behind the admin auth (e.g. `GET /v1/transcripts`). */
  adminExtensions?: readonly AdminExtension[];
}

export function twilioParts(config: GatewayConfig, log: Logger, opts: TwilioPartsOptions = {}): TwilioParts {
  // The REST client exists before the gateway (and its metrics); the first route hook binds them.
  let metrics: GatewayMetrics | null = null;
  const client = restClientFromConfig(config, log, (op, status, s) => metrics?.observeTwilio(op, status, s));
  const tokenSecret = deriveStreamTokenSecret(config.twilioAuthToken);
  const starter = new StreamStarter({ client, publicUrl: config.publicUrl, tokenSecret, log });
  const conferences = new ConferenceControl({ client, log });
  return {
    client,
    starter,
    conferences,
    checkStart: createStartGuard({ secret: tokenSecret, required: config.streamTokenRequired }),
    routes: [
      (_app, gateway) => {
        metrics = gateway.metrics;
      },
      adminRoutes({ starter, conferences, extensions: opts.adminExtensions }),
      webhookRoutes({ starter, conferences }),
    ],
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
