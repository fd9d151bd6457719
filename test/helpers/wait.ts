/** Waiting in tests: poll a condition until it holds, never a bare sleep before an assertion. */

/**
 * Polls `fn` every `everyMs` until it returns true; throws after `ms`, naming `what` (a function
 * is called then, so the message can say where things stand).
 */
export async function waitFor(fn: () => boolean | Promise<boolean>, ms = 5000, what: string | (() => string) = 'condition', everyMs = 10): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

/** Pacing only (feeding audio at a rate, spacing events): never the basis of an assertion. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
