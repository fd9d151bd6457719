/**
 * Who may use the operator surfaces: the admin API and its SSE feed under `/v1`, and any page or
 * document for operators (console, OpenAPI). One fastify `onRequest` hook per gateway
 * ({@link adminAccess}); every such route adds it, so they all share one rule and one
 * failed-auth table.
 *
 * With ADMIN_TOKEN: `Authorization: Bearer <token>`, compared in constant time over SHA-256
 * digests (not even the length leaks), else 401. Wrong tokens drain a per-client bucket
 * (failure-limiter.ts); an empty bucket is answered 429 with Retry-After before the token is
 * even looked at, so guessing runs at the refill rate.
 *
 * Without ADMIN_TOKEN the API is for the operator's own machine, and a browser on that machine
 * must not be turned against it:
 * - the peer is loopback and no proxy header is present (a proxy on the same host connects from
 *   loopback on behalf of anyone);
 * - `Host` names loopback: a DNS-rebinding page reaches 127.0.0.1 under its own host name;
 * - `Origin`, when sent, is loopback: any other page is refused even for simple GETs;
 * - state-changing methods need `Content-Type: application/json`, which a page can only send
 *   cross-origin after a CORS preflight, and no route ever grants CORS.
 *
 * Every refusal counts in `admin_refused_total{reason}`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FailureLimiter } from './failure-limiter.js';
import type { GatewayMetrics } from '../metrics.js';

export type AdminAccessHook = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

export type AdminRefusal = 'remote' | 'proxy' | 'host' | 'origin' | 'content_type' | 'unauthorized' | 'rate_limited';

export interface AdminAccessOptions {
  adminToken: string | undefined;
  metrics: Pick<GatewayMetrics, 'adminRefused'>;
  limiter?: FailureLimiter;
}

/** Headers a forwarding proxy or CDN adds; any of them means the loopback peer speaks for someone else. */
const PROXY_HEADERS = new Set([
  'forwarded',
  'via',
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'cf-connecting-ipv6',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-proxyuser-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-host',
  'x-appengine-user-ip',
  'akamai-client-ip',
]);
const PROXY_PREFIXES = ['x-forwarded-', 'x-original-', 'x-envoy-', 'cf-'];

const SAFE_METHODS = new Set(['GET', 'HEAD']);

const hooks = new WeakMap<object, AdminAccessHook>();

/**
 * The access hook of one gateway (made once per `owner`, so every operator route shares its
 * failed-auth table). `owner` is the gateway.
 */
export function adminAccess(owner: object, opts: AdminAccessOptions): AdminAccessHook {
  let hook = hooks.get(owner);
  if (hook === undefined) {
    hook = createAdminAccess(opts);
    hooks.set(owner, hook);
  }
  return hook;
}

export function createAdminAccess(opts: AdminAccessOptions): AdminAccessHook {
  const refused = opts.metrics.adminRefused;
  const refuse = (reply: FastifyReply, reason: AdminRefusal, status: number, message: string): FastifyReply => {
    refused.labels(reason).inc();
    const error = status === 401 ? 'unauthorized' : status === 429 ? 'rate_limited' : status === 415 ? 'invalid_request' : 'forbidden';
    return reply.code(status).send(status === 415 ? { error, field: 'content-type', message } : { error, message });
  };

  if (opts.adminToken === undefined) {
    return async (req, reply) => {
      const problem = localProblem(req);
      if (problem === null) return;
      const [reason, status, message] = problem;
      await refuse(reply, reason, status, message);
    };
  }

  const expected = digest(opts.adminToken);
  const limiter = opts.limiter ?? new FailureLimiter();
  return async (req, reply) => {
    const key = clientKey(req.socket.remoteAddress);
    const wait = limiter.retryAfterSeconds(key);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      await refuse(reply, 'rate_limited', 429, 'too many failed attempts; retry later');
      return;
    }
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
    if (match !== null && timingSafeEqual(digest(match[1]!), expected)) return;
    // Only presented credentials count as guesses; a request without any is just unauthenticated.
    if (header !== undefined) limiter.fail(key);
    reply.header('www-authenticate', 'Bearer realm="streamgate"');
    await refuse(reply, 'unauthorized', 401, match === null ? 'Authorization: Bearer <ADMIN_TOKEN> required' : 'wrong bearer token');
  };
}

/** Why a request may not use the token-less API, or null when it may. */
function localProblem(req: FastifyRequest): [AdminRefusal, number, string] | null {
  if (!isLoopback(req.socket.remoteAddress)) return ['remote', 403, 'ADMIN_TOKEN is not set: /v1 answers loopback clients only'];
  const h = req.headers;
  if (hasProxyHeader(h)) return ['proxy', 403, 'ADMIN_TOKEN is not set: /v1 does not answer through a proxy'];
  if (!isLoopbackHost(h.host)) return ['host', 403, 'ADMIN_TOKEN is not set: /v1 answers only Host: localhost or a loopback address'];
  const origin = h.origin;
  if (origin !== undefined && !isLoopbackOrigin(origin)) return ['origin', 403, 'ADMIN_TOKEN is not set: /v1 answers no other web origin'];
  if (!SAFE_METHODS.has(req.method) && !isJson(h['content-type'])) {
    return ['content_type', 415, 'ADMIN_TOKEN is not set: requests that change state must send Content-Type: application/json'];
  }
  return null;
}

function hasProxyHeader(headers: FastifyRequest['headers']): boolean {
  for (const name of Object.keys(headers)) {
    if (PROXY_HEADERS.has(name)) return true;
    for (const prefix of PROXY_PREFIXES) if (name.startsWith(prefix)) return true;
  }
  return false;
}

function isJson(type: string | undefined): boolean {
  return type !== undefined && type.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

const LOOPBACK_V4 = /^127\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)$/;

/** 127.0.0.0/8, ::1, and IPv4-mapped loopback. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  if (address === '::1') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return LOOPBACK_V4.test(v4);
}

/** A host name (as URL.hostname gives it) that can only mean this machine. */
function isLoopbackName(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h === '[::1]' || LOOPBACK_V4.test(h);
}

/** `Host: localhost`, `127.0.0.1:8080`, `[::1]:8080`, …; anything else (or none) is not. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const m = /^(\[::1\]|[^:[\]]+)(:\d{1,5})?$/.exec(host);
  return m !== null && isLoopbackName(m[1]!);
}

/** `Origin: http://localhost:3000` and the like (`null` and other schemes are not). */
export function isLoopbackOrigin(origin: string): boolean {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  return (u.protocol === 'http:' || u.protocol === 'https:') && isLoopbackName(u.hostname);
}

/** The rate-limit key of a peer: its IPv4 address, or its IPv6 /64 (one host holds a whole /64). */
export function clientKey(address: string | undefined): string {
  if (address === undefined) return '';
  if (address.startsWith('::ffff:')) return address.slice(7);
  if (!address.includes(':')) return address;
  const [head] = address.split('::');
  const groups = head!.split(':');
  // Groups left of '::' are the leading ones; pad when '::' falls inside the first four.
  while (groups.length < 4) groups.push('0');
  return groups.slice(0, 4).join(':') + '::/64';
}
