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
 */
import { performance } from 'node:perf_hooks';

export class TurnQueue {
  readonly #budgetMs: number;
  /** Wrapped tasks (they never throw); run ones are cleared so they are not kept alive. */
  #tasks: ((() => void) | undefined)[] = [];
  #head = 0;
  #scheduled = false;

  constructor(budgetMs: number) {
    this.#budgetMs = budgetMs;
  }

  /** Tasks waiting for a turn. */
  get length(): number {
    return this.#tasks.length - this.#head;
  }

  /** Runs `task` on a later turn (after the tasks queued before it) and resolves with what it returns (or resolves to). */
  run<T>(task: () => T | PromiseLike<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#tasks.push(() => {
        try {
          resolve(task());
        } catch (err) {
          reject(err as Error);
        }
      });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#slice);
      }
    });
  }

  readonly #slice = (): void => {
    const end = performance.now() + this.#budgetMs;
    const tasks = this.#tasks;
    do {
      const task = tasks[this.#head]!;
      tasks[this.#head++] = undefined;
      task();
    } while (this.#head < tasks.length && performance.now() < end);
    if (this.#head < tasks.length) {
      setImmediate(this.#slice);
      return;
    }
    this.#tasks = [];
    this.#head = 0;
    this.#scheduled = false;
  };
}
