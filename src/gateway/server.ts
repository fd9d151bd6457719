/**
 * The gateway: one fastify app serving HTTP routes and, on the same port, the `/media`
 * WebSocket endpoint. It receives every part built before it (app.ts builds them in dependency
 * order) and makes only its own: the session registry, the media endpoint, the HTTP app. It
 * does not listen (tests and the CLI do).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { SinkFactory } from '../sinks/sink.js';
import type { StartFields } from '../twilio/protocol.js';
import type { GatewayConfig } from './config.js';
import type { EventBus } from '../core/events.js';
import { registerHealthRoutes, type ReadinessCheck } from './http/health-routes.js';
import { HTTP_SERVER_OPTIONS, capPendingConnections } from './http/http-limits.js';
import { MediaEndpoint } from './media/media-socket.js';
import type { GatewayMetrics } from './metrics.js';
import { registerSecurityHeaders } from './http/security-headers.js';
import { SessionRegistry } from './media/session-registry.js';

export interface GatewayParts {
  config: GatewayConfig;
  log: Logger;
  metrics: GatewayMetrics;
  /** The event bus sessions publish on (sinks built before the gateway publish on it too). */
  bus: EventBus;
  /** The sinks every stream gets, in fan-out order. */
  sinkFactories?: SinkFactory[];
  /** Vets a stream's `start` (per-call token); null accepts all. */
  checkStart?: ((start: StartFields) => string | null) | null;
  /** Decides whether a started stream may act on the conference it names; null trusts every stream. */
  trustConference?: ((start: StartFields) => boolean) | null;
  /** Registers further routes (admin API, webhooks) on the app. */
  routes?: ((app: FastifyInstance, gateway: Gateway) => void)[];
}

export class Gateway {
  readonly config: GatewayConfig;
  readonly log: Logger;
  readonly app: FastifyInstance;
  readonly metrics: GatewayMetrics;
  readonly bus: EventBus;
  readonly registry: SessionRegistry;
  readonly media: MediaEndpoint;
  readonly sinkFactories: SinkFactory[];
  draining = false;
  /** `/readyz` answers 503 with the first reason one of these gives (added by parts such as the shared state). */
  readonly readinessChecks: ReadinessCheck[] = [];
  /** The close under way, shared by every caller (a second signal must wait for the first). */
  #closing: Promise<void> | null = null;
  /** Run on close, after every stream ended (sinks' shutdown, engines, timers). */
  readonly #cleanups: (() => Promise<void> | void)[] = [];

  constructor(parts: GatewayParts) {
    const config = parts.config;
    this.config = config;
    this.log = parts.log;
    this.metrics = parts.metrics;
    this.bus = parts.bus;
    this.sinkFactories = parts.sinkFactories ?? [];
    this.registry = new SessionRegistry({
      handshakeTimeoutMs: config.handshakeTimeoutSeconds * 1000,
      stallTimeoutMs: config.stallTimeoutSeconds * 1000,
      metrics: this.metrics,
    });
    this.app = Fastify({
      loggerInstance: this.log as FastifyBaseLogger,
      // Scrapes and health probes arrive every few seconds; per-request lines would drown the stream logs.
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 1024 * 1024,
      // Short header/request timeouts and a per-address cap on unfinished requests (http-limits.ts).
      requestTimeout: HTTP_SERVER_OPTIONS.requestTimeout,
      http: HTTP_SERVER_OPTIONS,
    });
    capPendingConnections(this.app.server, { metrics: this.metrics, log: this.log });
    this.media = new MediaEndpoint({
      log: this.log,
      metrics: this.metrics,
      bus: this.bus,
      registry: this.registry,
      sinkFactories: this.sinkFactories,
      publicUrl: config.publicUrl,
      authToken: config.twilioAuthToken,
      maxMessageBytes: config.maxMessageBytes,
      maxStreams: config.maxStreams,
      maxGapMs: config.maxGapMs,
      maxEventLoopDelayMs: config.maxEventLoopDelayMs,
      checkStart: parts.checkStart ?? null,
      trustConference: parts.trustConference ?? null,
      isDraining: () => this.draining,
    });
    this.media.attach(this.app.server);
    registerSecurityHeaders(this.app);
    registerHealthRoutes(this.app, { metrics: this.metrics, isDraining: () => this.draining, checks: this.readinessChecks });
    for (const register of parts.routes ?? []) register(this.app, this);
    if (config.twilioAuthToken === undefined) {
      this.log.warn('TWILIO_AUTH_TOKEN is not set: /media upgrades and webhooks are accepted unsigned, and every stream is trusted as a member of the conference it names (local development only)');
    }
  }

  onClose(cleanup: () => Promise<void> | void): void {
    this.#cleanups.push(cleanup);
  }

  /** Starts listening; resolves to the http://host:port address. */
  async listen(port = this.config.port, host = this.config.host): Promise<string> {
    return this.app.listen({ port, host });
  }

  /** The port actually bound (after listen with port 0). */
  get port(): number {
    const addr = this.app.server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.config.port;
  }

  /**
   * Stops accepting, closes every live stream (code 1001) after its sinks finalised, runs
   * cleanups and closes the HTTP server. Idempotent: a later call resolves when the first one
   * has finished, so nobody exits while recordings are still being finalised.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.draining = true;
    await this.media.closeAll();
    for (const cleanup of this.#cleanups) {
      try {
        await cleanup();
      } catch (err) {
        this.log.error({ err }, 'cleanup failed');
      }
    }
    for (const f of this.sinkFactories) {
      try {
        await f.shutdown?.();
      } catch (err) {
        this.log.error({ err, sink: f.name }, 'sink shutdown failed');
      }
    }
    this.registry.close();
    await this.app.close();
  }
}
