/** Loopback ports for tests. */
import { createServer } from 'node:net';

/**
 * A port free a moment ago on 127.0.0.1 (bound, then released), for a test that must put the
 * real address in PUBLIC_URL before its gateway listens. Everything else listens on port 0.
 */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolvePort(p));
    });
  });
}
