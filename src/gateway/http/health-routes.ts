/** Liveness, readiness and the Prometheus scrape endpoint. */
import type { FastifyInstance } from 'fastify';
import type { GatewayMetrics } from '../metrics.js';

/** Says why the process should not get new calls (e.g. the shared state store is unreachable), or null. */
export type ReadinessCheck = () => string | null;

export function registerHealthRoutes(app: FastifyInstance, deps: { metrics: GatewayMetrics; isDraining: () => boolean; checks?: readonly ReadinessCheck[] }): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (deps.isDraining()) return reply.code(503).send({ status: 'draining' });
    for (const check of deps.checks ?? []) {
      const reason = check();
      if (reason !== null) return reply.code(503).send({ status: 'unavailable', reason });
    }
    return { status: 'ready' };
  });
  app.get('/metrics', async (_req, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
}
