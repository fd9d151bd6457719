/**
 * The Sim's typed events and the waiting helpers built on them. `emit` is safe: a listener
 * that throws is logged and never reaches the code that changed the state. Every state change
 * also emits `change`, which is what `waitUntil` re-checks its condition on, so a test never
 * misses a change that happened before it started waiting.
 */
import { SimTimeoutError } from './errors.js';
import type { CallbackLogEntry, CallSnapshot, ConferenceSnapshot, RequestLogEntry, SimLogger, StreamSnapshot } from './types.js';

export interface SimEvents {
  /** A Twilio REST request was answered. */
  request: [entry: RequestLogEntry];
  /** A callback was queued, or its answer arrived. */
  callback: [entry: CallbackLogEntry];
  /** A stream was created, started, stopped or failed. */
  stream: [stream: StreamSnapshot];
  call: [call: CallSnapshot];
  conference: [conference: ConferenceSnapshot];
  /** Any of the above. */
  change: [];
}

type Listener<A extends unknown[]> = (...args: A) => void;

export class SimEventBus {
  #listeners: { [K in keyof SimEvents]?: Listener<SimEvents[K]>[] } = {};
  readonly #log: SimLogger;

  constructor(log: SimLogger) {
    this.#log = log;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof SimEvents>(event: K, listener: Listener<SimEvents[K]>): () => void {
    const list = (this.#listeners[event] ??= []) as Listener<SimEvents[K]>[];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof SimEvents>(event: K, ...args: SimEvents[K]): void {
    this.#call(event, args);
    if (event !== 'change') this.#call('change', []);
  }

  /**
   * Resolves with the first truthy value of `check`, evaluated now and after every change;
   * rejects with SimTimeoutError after `timeoutMs`.
   */
  waitUntil<T>(check: () => T | undefined | null | false, what: string, timeoutMs: number): Promise<T> {
    const first = check();
    if (first) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new SimTimeoutError(what, timeoutMs));
      }, timeoutMs);
      const off = this.on('change', () => {
        let value: T | undefined | null | false;
        try {
          value = check();
        } catch (err) {
          clearTimeout(timer);
          off();
          reject(err as Error);
          return;
        }
        if (!value) return;
        clearTimeout(timer);
        off();
        resolve(value);
      });
    });
  }

  #call<K extends keyof SimEvents>(event: K, args: SimEvents[K]): void {
    const list = this.#listeners[event] as Listener<SimEvents[K]>[] | undefined;
    if (list === undefined) return;
    // Copy: a listener may remove itself (waitUntil does).
    for (const listener of [...list]) {
      try {
        listener(...args);
      } catch (err) {
        this.#log.error({ err, event }, 'sim event listener threw');
      }
    }
  }
}
