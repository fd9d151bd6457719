/**
 * WORKERS > 1: one scrape of `/metrics`, whichever worker the kernel hands the connection to,
 * answers for every worker. The worker asks the primary over the cluster IPC channel; the primary
 * (src/cluster.ts, {@link servePrimaryMetrics}) collects each worker's registry with prom-client's
 * AggregatorRegistry and merges by each metric's `aggregator`: counters and histograms (every
 * bucket, `_sum` and `_count`) add up, gauges as declared in metrics.ts (live streams and queue
 * depths add up, `state_store_up` is the lowest: 0 when any worker cannot reach Redis), Node's
 * default metrics as prom-client declares them. Nothing here runs per frame.
 */
import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'streamgate:metrics-request';
const RESPONSE = 'streamgate:metrics-response';
/** prom-client gives each worker 5 s to answer the primary; a little more for the round trip. */
const TIMEOUT_MS = 6000;

interface Request {
  type: typeof REQUEST;
  id: number;
}
interface Response {
  type: typeof RESPONSE;
  id: number;
  text?: string;
  error?: string;
}

/**
 * In a cluster worker: makes `registry` the one the primary collects, and returns the scrape
 * function for `/metrics` (every worker's metrics, merged). Null outside a cluster worker.
 */
export function workerMetricsScrape(registry: Registry): (() => Promise<string>) | null {
  if (!cluster.isWorker) return null;
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one installs prom-client's listener that answers the primary's collection.
  new AggregatorRegistry();
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let next = 0;
  process.on('message', (m: unknown) => {
    const res = m as Partial<Response> | null;
    if (res?.type !== RESPONSE || typeof res.id !== 'number') return;
    const p = pending.get(res.id);
    if (p === undefined) return;
    pending.delete(res.id);
    clearTimeout(p.timer);
    if (typeof res.text === 'string') p.resolve(res.text);
    else p.reject(new Error(`metrics of the other workers unavailable: ${res.error ?? 'no answer'}`));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('metrics of the other workers unavailable: the primary did not answer in time'));
      }, TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      process.send!({ type: REQUEST, id } satisfies Request);
    });
}

/** In the cluster primary: answers workers' scrape requests with every worker's metrics, merged. */
export function servePrimaryMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, m: unknown) => {
    const req = m as Partial<Request> | null;
    if (req?.type !== REQUEST || typeof req.id !== 'number') return;
    const id = req.id;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: RESPONSE, id, text } satisfies Response),
      (err: unknown) => worker.isConnected() && worker.send({ type: RESPONSE, id, error: err instanceof Error ? err.message : String(err) } satisfies Response),
    );
  });
}
