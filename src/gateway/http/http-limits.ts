/**
 * How long the HTTP server waits for a request, and how many unfinished requests one client
 * address may hold. Every request the gateway serves (a Twilio upgrade, a webhook, an admin
 * call) is a few hundred bytes sent at once, so Node's defaults (60 s for headers, checked every
 * 30 s) only help a slow-header attacker: 800 sockets that never finish their headers would
 * otherwise be held for a minute and more.
 *
 * - `headersTimeout` 10 s: a request whose headers are not complete by then gets 408 and is closed.
 * - `requestTimeout` 30 s: the same for the whole request (body included). Responses, such as the
 *   SSE feed, are not limited by it.
 * - the expiry check runs every 2 s (`connectionsCheckingInterval`), so a socket lingers at most
 *   about 12 s.
 * - at most {@link PENDING_PER_ADDRESS} connections per client address may be waiting for their
 *   first request's headers; more are closed at once and counted in
 *   `upgrade_rejected_total{reason="too_many_pending"}`. A socket stops counting as pending as
 *   soon as its first request (or upgrade) is parsed.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../metrics.js';

export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const CONNECTIONS_CHECK_MS = 2_000;
/** Unfinished first requests one client address may hold (a TLS proxy in front sends whole requests). */
export const PENDING_PER_ADDRESS = 64;

/** The http.createServer options fastify passes on (its own `requestTimeout` must match). */
export const HTTP_SERVER_OPTIONS = {
  headersTimeout: HEADERS_TIMEOUT_MS,
  requestTimeout: REQUEST_TIMEOUT_MS,
  connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
} as const;

const kPending = Symbol('streamgate.pendingAddress');
type TrackedSocket = Socket & { [kPending]?: string | null };

/** Caps the connections per client address that have not finished their first request's headers. */
export function capPendingConnections(server: Server, opts: { metrics: Pick<GatewayMetrics, 'upgradeRejected'>; log: Logger; perAddress?: number }): void {
  const limit = opts.perAddress ?? PENDING_PER_ADDRESS;
  const pending = new Map<string, number>();
  const refused = opts.metrics.upgradeRejected.labels('too_many_pending');
  let warned = 0;

  const release = (socket: TrackedSocket): void => {
    const address = socket[kPending];
    if (address === undefined || address === null) return;
    socket[kPending] = null;
    const n = (pending.get(address) ?? 1) - 1;
    if (n <= 0) pending.delete(address);
    else pending.set(address, n);
  };

  server.on('connection', (socket: TrackedSocket) => {
    const address = socket.remoteAddress ?? '';
    const n = pending.get(address) ?? 0;
    if (n >= limit) {
      refused.inc();
      // One line per burst is enough; the counter has the rest.
      const now = Date.now();
      if (now - warned > 10_000) {
        warned = now;
        opts.log.warn({ limit }, 'too many unfinished requests from one client address; closing new connections');
      }
      socket.destroy();
      return;
    }
    pending.set(address, n + 1);
    socket[kPending] = address;
    socket.once('close', () => release(socket));
  });
  server.on('request', (req) => release(req.socket));
  // 'upgrade' listeners run in order; this one only bookkeeps, media-socket.ts answers.
  server.on('upgrade', (req) => release(req.socket));
}
