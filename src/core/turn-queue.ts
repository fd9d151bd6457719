/**
 * Spreads per-stream setup and teardown over turns of the event loop. A burst of 500 streams
 * starting (or stopping) at once hands the loop 500 opens (or finishes) in one poll phase; run
 * there, they stall every live stream's frames and every HTTP probe behind them. Queued here,
 * they run in FIFO order from setImmediate, at most about `budgetMs` of them per turn, so timers,
 * sockets and media get the loop between slices:
 *
 *   poll: 500 starts arrive ─► queue [o1 … o500]
 *   check: o1 … o120 (budget) │ timers, I/O │ check: o121 … o250 │ timers, I/O │ …
 *
 * A task's own synchronous work is what the budget covers (build a request, post it); what it
 * awaits runs later, outside the queue. Nothing is dropped or reordered: a task only waits.
 *
 * With `maxInFlight`, a task that returns a promise counts until it settles, and no further task
 * starts while that many count: work a task hands to another thread on the same core (the
 * recording opens) is then let through a few per loop turn instead of all the budget allows.
 *
 * A queue may also give way to cheaper work that must not wait behind it: while `yieldWhile()`
 * says so, a turn runs none of its tasks, for at most `maxYieldMs` since the queue last ran (or
 * began waiting), after which a slice runs regardless. The media handshakes give way to accepts
 * this way (media-socket.ts).
 */
import { performance } from 'node:perf_hooks';

export interface TurnQueueYield {
  /** Asked once per turn while tasks wait: true lets this turn go by without running any. */
  yieldWhile: () => boolean;
  /** Longest the queue gives way for, since its last slice ran (or since it began waiting). */
  maxYieldMs: number;
}

export class TurnQueue {
  readonly #budgetMs: number;
  readonly #maxInFlight: number;
  /** Wrapped tasks (they never throw); run ones are cleared so they are not kept alive. */
  #tasks: ((() => void) | undefined)[] = [];
  #head = 0;
  /** A slice is waiting in setImmediate. */
  #scheduled = false;
  /** Tasks started whose promise has not settled (counted only with maxInFlight). */
  #inFlight = 0;
  readonly #yield: TurnQueueYield | null;
  /** performance.now() when the last slice ended, or when tasks began waiting in an empty queue. */
  #ranAt = 0;

  constructor(budgetMs: number, opts: { maxInFlight?: number; yieldTo?: TurnQueueYield } = {}) {
    this.#budgetMs = budgetMs;
    this.#maxInFlight = opts.maxInFlight ?? Number.POSITIVE_INFINITY;
    this.#yield = opts.yieldTo ?? null;
  }

  /** Tasks waiting for a turn. */
  get length(): number {
    return this.#tasks.length - this.#head;
  }

  /** Runs `task` on a later turn (after the tasks queued before it) and resolves with what it returns (or resolves to). */
  run<T>(task: () => T | PromiseLike<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#head >= this.#tasks.length) this.#ranAt = performance.now();
      this.#tasks.push(() => {
        try {
          const result = task();
          if (this.#maxInFlight !== Number.POSITIVE_INFINITY && isThenable(result)) {
            this.#inFlight++;
            Promise.resolve(result).then(this.#settled, this.#settled);
          }
          resolve(result);
        } catch (err) {
          reject(err as Error);
        }
      });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#scheduled || this.#head >= this.#tasks.length || this.#inFlight >= this.#maxInFlight) return;
    this.#scheduled = true;
    setImmediate(this.#slice);
  }

  readonly #settled = (): void => {
    this.#inFlight--;
    this.#kick();
  };

  readonly #slice = (): void => {
    this.#scheduled = false;
    const now = performance.now();
    const y = this.#yield;
    if (y !== null && now - this.#ranAt < y.maxYieldMs && y.yieldWhile()) {
      this.#kick();
      return;
    }
    const end = now + this.#budgetMs;
    const tasks = this.#tasks;
    while (this.#head < tasks.length && this.#inFlight < this.#maxInFlight) {
      const task = tasks[this.#head]!;
      tasks[this.#head++] = undefined;
      task();
      if (performance.now() >= end) break;
    }
    if (this.#head >= tasks.length) {
      this.#tasks = [];
      this.#head = 0;
      return;
    }
    // More wait: the next turn (or, at the in-flight limit, the first task to settle) goes on.
    this.#ranAt = performance.now();
    this.#kick();
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
