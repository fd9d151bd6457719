/**
 * Graceful shutdown. First SIGTERM/SIGINT: drain — /readyz answers 503, new upgrades get 503,
 * live streams go on until they stop or DRAIN_TIMEOUT passes; then the remaining streams are
 * closed (1001) after their sinks finalise, and the process exits 0. A second signal skips
 * the wait but still closes every stream's sinks, so recordings get valid headers. Should the
 * close itself hang (a wedged disk, a stuck log destination), a backstop ends the process
 * FINALISE_GRACE_MS after the drain deadline; start-up repairs whatever was left partial.
 */
import type { Gateway } from './server.js';

/** How long closing may take after the drain deadline before the process is ended anyway. */
export const FINALISE_GRACE_MS = 60_000;

export function installSignalHandlers(gateway: Gateway, exit: (code: number) => void = (c) => process.exit(c)): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      const drainMs = gateway.config.drainTimeoutSeconds * 1000;
      const backstop = setTimeout(() => {
        gateway.log.error({ signal }, 'shutdown did not finish in time; exiting');
        exit(1);
      }, drainMs + FINALISE_GRACE_MS);
      backstop.unref();
      void drainAndClose(gateway, drainMs, signal).then(
        () => exit(0),
        (err) => {
          gateway.log.error({ err }, 'shutdown failed');
          exit(1);
        },
      );
    } else {
      gateway.log.warn({ signal }, 'second signal: closing streams now');
      void gateway.close().finally(() => exit(0));
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

export async function drainAndClose(gateway: Gateway, timeoutMs: number, signal = 'SIGTERM'): Promise<void> {
  gateway.draining = true;
  const live = gateway.registry.sessions.size;
  gateway.log.info({ signal, live, timeoutMs }, 'draining');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
  });
  const drained = await Promise.race([gateway.registry.whenIdle().then(() => false), timedOut]);
  clearTimeout(timer);
  if (drained) gateway.log.warn({ live: gateway.registry.sessions.size }, 'drain timeout: closing remaining streams');
  await gateway.close();
  gateway.log.info('shut down');
}
