/** Closing what a test started, whether it passed or not. */
import { afterEach } from 'vitest';

interface Closable {
  close(): Promise<unknown> | unknown;
}

/**
 * Registers an afterEach that closes, newest first, everything the test handed to the returned
 * function (which returns what it was given).
 */
export function closeAfterEach(): <T extends Closable>(started: T) => T {
  const open: Closable[] = [];
  afterEach(async () => {
    for (const c of open.splice(0).reverse()) await c.close();
  });
  return (started) => {
    open.push(started);
    return started;
  };
}
