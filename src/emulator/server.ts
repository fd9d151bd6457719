/**
 * startSim: builds a Sim and its HTTP server (node:http, no framework: the emulator needs
 * exact control over Twilio's paths, status codes and error bodies) and listens.
 *
 *   /2010-04-01/…   Twilio REST (rest-routes.ts)
 *   /sim/…          control API (control-routes.ts)
 *   /healthz        liveness
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { InvalidInputError } from '../errors.js';
import { Credentials } from './auth.js';
import { CallbackSender } from './callbacks.js';
import { handleControl } from './control-routes.js';
import { SimEngine } from './engine.js';
import { SimEventBus } from './events.js';
import { FaultController } from './faults.js';
import { sendJson } from './http-util.js';
import { RequestLog } from './request-log.js';
import { notFound } from './rest-errors.js';
import { handleRest, type RestContext } from './rest-routes.js';
import { Sim } from './sim.js';
import type { SimLogger, SimOptions } from './types.js';

/** Starts a Twilio emulator. Close it with `sim.close()`. */
export async function startSim(opts: SimOptions): Promise<Sim> {
  const logger: SimLogger = opts.logger ?? pino({ level: 'silent' });
  const speed = normalizeSpeed(opts.speed);
  const credentials = new Credentials(opts.accountSid, opts.authToken, opts.apiKeys);
  const bus = new SimEventBus(logger);
  const faults = new FaultController(opts.faults);
  const callbacks = new CallbackSender({
    authToken: opts.authToken,
    timeoutMs: opts.callbackTimeoutMs ?? 15_000,
    tlsRejectUnauthorized: opts.tlsRejectUnauthorized ?? true,
    logger,
    onChange: (entry) => bus.emit('callback', structuredClone(entry)),
  });
  const engine = new SimEngine(
    {
      accountSid: opts.accountSid,
      authToken: opts.authToken,
      speed,
      requireWss: opts.requireWss ?? false,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      chunkCounting: opts.chunkCounting ?? 'per-track',
      timestampOffsetMs: opts.timestampOffsetMs ?? 99,
      tlsRejectUnauthorized: opts.tlsRejectUnauthorized ?? true,
      callbackTimeoutMs: opts.callbackTimeoutMs ?? 15_000,
      logger,
    },
    bus,
    callbacks,
    faults,
  );
  const requests = new RequestLog(bus);
  const server = createServer();
  const sim = new Sim({ engine, bus, faults, callbacks, credentials, requests, server, speed });
  const rest: RestContext = { engine, credentials, faults, logger, record: (e) => requests.record(e) };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void route(sim, rest, req, res).catch((err: unknown) => {
      logger.error({ err }, 'sim request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  sim.bindUrl(`http://${host.includes(':') ? `[${host}]` : host}:${port}`);
  logger.info({ url: sim.url, speed }, 'twilio emulator listening');
  return sim;
}

async function route(sim: Sim, rest: RestContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sim.invalid');
  const path = url.pathname;
  if (path.startsWith('/2010-04-01/')) return handleRest(rest, req, res, url);
  if (path === '/sim' || path.startsWith('/sim/')) return handleControl(sim, req, res, url);
  if (path === '/healthz') return sendJson(res, 200, { ok: true });
  const e = notFound(path);
  sendJson(res, e.httpStatus, e.body());
}

/** 0, Infinity and absent speeds: 0 means unpaced; absent means real time. */
function normalizeSpeed(speed: number | undefined): number {
  if (speed === undefined) return 1;
  if (speed === 0 || speed === Infinity) return 0;
  if (!Number.isFinite(speed) || speed < 0) throw new InvalidInputError('speed must be a non-negative number or Infinity');
  return speed;
}
