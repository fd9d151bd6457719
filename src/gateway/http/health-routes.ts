/** Liveness, readiness and the Prometheus scrape endpoint. */
import type { FastifyInstance } from 'fastify';
import type { GatewayMetrics } from '../metrics.js';
import { workerMetricsScrape } from './cluster-metrics.js';

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
  // A cluster worker answers for every worker (cluster-metrics.ts); a single process for itself.
  const registry = deps.metrics.registry;
  const scrape = workerMetricsScrape(registry) ?? (() => registry.metrics());
  app.get('/metrics', async (req, reply) => {
    let body: string;
    try {
      body = await scrape();
    } catch (err) {
      req.log.warn({ err }, 'metrics scrape failed');
      return reply.code(503).type('text/plain').send(err instanceof Error ? err.message : 'metrics unavailable');
    }
    return reply.type(registry.contentType).send(body);
  });
}
