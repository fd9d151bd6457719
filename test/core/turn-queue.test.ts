import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { TurnQueue } from '../../src/core/turn-queue.js';

describe('TurnQueue', () => {
  it('runs tasks on a later turn, in the order queued, resolving with what each returns', async () => {
    const q = new TurnQueue(3);
    const ran: number[] = [];
    const results = [1, 2, 3].map((n) => q.run(() => (ran.push(n), n * 10)));
    expect(ran).toEqual([]); // not in the caller's turn
    expect(q.length).toBe(3);
    expect(await Promise.all(results)).toEqual([10, 20, 30]);
    expect(ran).toEqual([1, 2, 3]);
    expect(q.length).toBe(0);
  });

  it("rejects a task's error to its caller and goes on with the next task", async () => {
    const q = new TurnQueue(3);
    const bad = q.run(() => {
      throw new Error('boom');
    });
    const good = q.run(() => 'after');
    await expect(bad).rejects.toThrow('boom');
    expect(await good).toBe('after');
  });

  it('yields the loop once a turn has spent its budget: what was scheduled meanwhile runs before the next task', async () => {
    const q = new TurnQueue(3);
    const order: string[] = [];
    const spin = () => {
      const end = performance.now() + 5; // longer than the 3 ms budget by construction
      while (performance.now() < end);
    };
    const first = q.run(() => {
      order.push('task 1');
      setImmediate(() => order.push('other work'));
      spin();
    });
    const second = q.run(() => void order.push('task 2'));
    await Promise.all([first, second]);
    expect(order).toEqual(['task 1', 'other work', 'task 2']);
  });

  it('with maxInFlight, starts no task while that many returned promises are unsettled, and goes on as each settles', async () => {
    const q = new TurnQueue(3, { maxInFlight: 2 });
    const started: number[] = [];
    const release: (() => void)[] = [];
    const results = [1, 2, 3, 4, 5].map((n) =>
      q.run(() => {
        started.push(n);
        return new Promise<number>((resolve) => release.push(() => resolve(n)));
      }),
    );
    // Turns go by: only two start.
    await new Promise<void>((resolve) => {
      let turns = 0;
      const turn = () => (++turns >= 5 ? resolve() : setImmediate(turn));
      setImmediate(turn);
    });
    expect(started).toEqual([1, 2]);
    expect(q.length).toBe(3);
    // One settles: the next one starts (in order), never more than two at once.
    release.shift()!();
    await results[0];
    await new Promise<void>((resolve) => {
      const wait = () => (started.length >= 3 ? resolve() : setImmediate(wait));
      setImmediate(wait);
    });
    expect(started).toEqual([1, 2, 3]);
    while (release.length > 0) {
      release.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    // 4 and 5 started as 2 and 3 settled; release them too.
    while (started.length < 5 || release.length > 0) {
      release.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.all(results)).toEqual([1, 2, 3, 4, 5]);
    expect(started).toEqual([1, 2, 3, 4, 5]);
  });

  it('gives way while yieldWhile() says so, and runs a slice anyway once maxYieldMs has passed', async () => {
    let asked = 0;
    let yielding = true;
    const q = new TurnQueue(3, { yieldTo: { yieldWhile: () => (asked++, yielding), maxYieldMs: 60_000 } });
    const order: string[] = [];
    const task = q.run(() => void order.push('task'));
    // Turns go by without the task while the queue gives way...
    await new Promise<void>((resolve) => {
      const turn = () => (asked >= 5 ? resolve() : setImmediate(turn));
      setImmediate(turn);
    });
    expect(order).toEqual([]);
    expect(q.length).toBe(1);
    // ...and it runs on the first turn that does not.
    yielding = false;
    await task;
    expect(order).toEqual(['task']);

    // Giving way is bounded: past maxYieldMs the task runs though yieldWhile() still says yield.
    const bounded = new TurnQueue(3, { yieldTo: { yieldWhile: () => true, maxYieldMs: 20 } });
    const queuedAt = performance.now();
    await bounded.run(() => undefined);
    expect(performance.now() - queuedAt).toBeGreaterThanOrEqual(19);
  });
});
