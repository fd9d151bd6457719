/**
 * The live operator console: `GET /` (a page) and `GET /console.js` (its script). No build step:
 * the page is plain HTML and the script plain browser JavaScript (console-page.ts). All data it
 * shows comes from `/v1` (`GET /v1/streams` polled, `GET /v1/transcripts` streamed), and its
 * buttons call `/v1` too, so the console has exactly the API's access rule:
 *
 * - without ADMIN_TOKEN the page itself is behind the `/v1` access hook (loopback peer and Host,
 *   no foreign Origin, no proxy), and its requests pass it the same way;
 * - with ADMIN_TOKEN a browser cannot put a bearer on a page load, so the page (static, no data,
 *   no secret) is served to anyone, asks for the token once, keeps it in the tab's
 *   sessionStorage and sends it on every `/v1` request.
 *
 * A strict Content-Security-Policy keeps the page to its own script and its own origin.
 */
import type { FastifyInstance } from 'fastify';
import { adminAccess } from './admin-access.js';
import { CONSOLE_HTML, CONSOLE_JS } from './console-page.js';
import type { Gateway } from '../server.js';

const CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** A `GatewayParts.routes` entry. */
export function consoleRoutes(app: FastifyInstance, gateway: Gateway): void {
  app.register(async (scope) => {
    if (gateway.config.adminToken === undefined) {
      scope.addHook('onRequest', adminAccess(gateway, { adminToken: undefined, metrics: gateway.metrics }));
    }
    scope.get('/', async (_req, reply) =>
      reply.header('content-type', 'text/html; charset=utf-8').header('content-security-policy', CSP).header('cache-control', 'no-store').send(CONSOLE_HTML),
    );
    scope.get('/console.js', async (_req, reply) =>
      reply.header('content-type', 'text/javascript; charset=utf-8').header('cache-control', 'no-store').send(CONSOLE_JS),
    );
  });
}
