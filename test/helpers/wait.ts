/** Waiting in tests: poll a condition until it holds, never a bare sleep. */

/** Polls until `fn` returns true (or throws after `ms`, naming `what`). */
export async function waitFor(fn: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
