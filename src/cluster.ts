/**
 * `WORKERS` > 1: the primary process of `streamgate start`. It forks that many gateway
 * processes, which share the listening port through node:cluster (each accepted connection,
 * WebSocket or HTTP, goes to one worker), and only supervises them:
 *
 * - a worker that dies is replaced (after 1 s, backing off to 10 s while they keep dying fast);
 * - SIGTERM/SIGINT are forwarded to every worker, which drains as a single process would;
 *   a second signal is forwarded too (workers then close their streams at once);
 * - the primary exits when every worker has exited: 0 when all exited 0, else 1.
 *
 * Workers share state through REDIS_URL (config.ts refuses WORKERS > 1 without it). It also
 * answers the workers' `/metrics` scrapes with every worker's metrics merged
 * (gateway/http/cluster-metrics.ts).
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { repairPartialRecordings } from './gateway/app.js';
import type { GatewayConfig } from './gateway/config.js';
import { FINALISE_GRACE_MS } from './gateway/lifecycle.js';
import { servePrimaryMetrics } from './gateway/http/cluster-metrics.js';
import { withGatewayNodeFlags } from './gateway/node-flags.js';

const RESTART_MS = 1000;
const MAX_RESTART_MS = 10_000;
/** A worker that lived less than this counts as crashing at start-up (the restart delay doubles). */
const EARLY_DEATH_MS = 5000;

export async function runPrimary(config: GatewayConfig, log: Logger, exit: (code: number) => void = (c) => process.exit(c)): Promise<void> {
  // Once, before any worker records: workers skip it (a sibling's live recording is .partial too).
  await repairPartialRecordings(config.dataDir, log);
  // A scrape of /metrics reaches one worker, which asks here for every worker's numbers.
  servePrimaryMetrics();
  const born = new Map<Worker, number>();
  let stopping = false;
  let failed = false;
  let restartDelay = RESTART_MS;

  // Workers carry the media: they get the gateway's V8 flags however the primary was started.
  cluster.setupPrimary({ execArgv: withGatewayNodeFlags(process.execArgv) });
  const fork = () => {
    const w = cluster.fork();
    born.set(w, performance.now());
    log.info({ worker: w.id, pid: w.process.pid }, 'worker started');
  };

  cluster.on('exit', (w, code, signal) => {
    const lived = performance.now() - (born.get(w) ?? 0);
    born.delete(w);
    if (stopping) {
      if (code !== 0) failed = true;
      log.info({ worker: w.id, code, signal, left: born.size }, 'worker exited');
      if (born.size === 0) {
        log.info({ code: failed ? 1 : 0 }, 'all workers exited');
        exit(failed ? 1 : 0);
      }
      return;
    }
    restartDelay = lived < EARLY_DEATH_MS ? Math.min(restartDelay * 2, MAX_RESTART_MS) : RESTART_MS;
    log.error({ worker: w.id, code, signal, restartInMs: restartDelay }, 'worker died; starting a new one');
    setTimeout(() => {
      if (!stopping) fork();
    }, restartDelay).unref();
  });

  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) {
      stopping = true;
      log.info({ signal, workers: born.size }, 'stopping: workers drain');
      // Should a worker hang past its own backstop, end the rest.
      setTimeout(() => {
        log.error('workers did not exit in time; killing them');
        for (const w of born.keys()) w.process.kill('SIGKILL');
        exit(1);
      }, config.drainTimeoutSeconds * 1000 + FINALISE_GRACE_MS + 5000).unref();
    }
    for (const w of born.keys()) w.process.kill(signal);
    if (born.size === 0) exit(0);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  log.info({ workers: config.workers, port: config.port }, 'starting workers');
  for (let i = 0; i < config.workers; i++) fork();
}
