import { afterEach, describe, expect, it, vi } from 'vitest';
import { FINALISE_GRACE_MS, installSignalHandlers } from '../../src/gateway/lifecycle.js';
import type { Gateway } from '../../src/gateway/server.js';

afterEach(() => {
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  vi.useRealTimers();
});

/** A gateway whose close never finishes (a wedged disk) and whose streams never drain. */
function wedgedGateway(drainTimeoutSeconds: number) {
  const lines: string[] = [];
  const log = { info: () => undefined, warn: () => undefined, error: (_o: unknown, msg: string) => lines.push(msg) };
  const gateway = {
    config: { drainTimeoutSeconds },
    log,
    draining: false,
    registry: { sessions: new Map(), whenIdle: () => new Promise<void>(() => undefined) },
    close: () => new Promise<void>(() => undefined),
  };
  return { gateway: gateway as unknown as Gateway, lines };
}

describe('installSignalHandlers', () => {
  it('ends the process with 1 when shutdown hangs past the drain deadline plus the grace', () => {
    vi.useFakeTimers();
    const { gateway, lines } = wedgedGateway(5);
    const exit = vi.fn();
    installSignalHandlers(gateway, exit);
    process.emit('SIGTERM', 'SIGTERM');
    expect(gateway.draining).toBe(true);
    vi.advanceTimersByTime(5000 + FINALISE_GRACE_MS - 1);
    expect(exit).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(exit).toHaveBeenCalledWith(1);
    expect(lines).toContain('shutdown did not finish in time; exiting');
  });

  it('exits 0 after a clean drain, before the backstop', async () => {
    vi.useFakeTimers();
    const { gateway } = wedgedGateway(5);
    (gateway as unknown as { registry: { whenIdle: () => Promise<void> } }).registry.whenIdle = () => Promise.resolve();
    (gateway as unknown as { close: () => Promise<void> }).close = () => Promise.resolve();
    const exit = vi.fn();
    installSignalHandlers(gateway, exit);
    process.emit('SIGTERM', 'SIGTERM');
    await vi.advanceTimersByTimeAsync(10);
    expect(exit).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(0);
  });
});
