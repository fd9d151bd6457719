/**
 * Response headers every answer carries: the gateway serves JSON and text to programs, never
 * pages, so browsers are told not to sniff, frame or leak referrers; admin answers (`/v1`)
 * hold live call data and must not be cached by anything in between.
 */
import type { FastifyInstance } from 'fastify';

export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    const url = req.url;
    if (url === '/v1' || url.startsWith('/v1/') || url.startsWith('/v1?')) reply.header('cache-control', 'no-store');
    done(null, payload);
  });
}
