/**
 * The log of Twilio REST requests a Sim answered, in arrival order, for assertions such as
 * "exactly one UpdateConference".
 */
import type { SimEventBus } from './events.js';
import type { RequestLogEntry, RestOperation } from './types.js';

export interface RequestFilter {
  operation?: RestOperation;
  method?: string;
  status?: number;
  /** Only requests whose path contains this. */
  pathIncludes?: string;
}

export function matchesRequest(e: RequestLogEntry, f: RequestFilter): boolean {
  return (
    (f.operation === undefined || e.operation === f.operation) &&
    (f.method === undefined || e.method === f.method.toUpperCase()) &&
    (f.status === undefined || e.status === f.status) &&
    (f.pathIncludes === undefined || e.path.includes(f.pathIncludes))
  );
}

export class RequestLog {
  readonly #entries: RequestLogEntry[] = [];
  readonly #bus: SimEventBus;
  #seq = 0;

  constructor(bus: SimEventBus) {
    this.#bus = bus;
  }

  record(entry: Omit<RequestLogEntry, 'seq'>): void {
    const full: RequestLogEntry = { seq: ++this.#seq, ...entry };
    this.#entries.push(full);
    this.#bus.emit('request', full);
  }

  list(filter: RequestFilter = {}): RequestLogEntry[] {
    return this.#entries.filter((e) => matchesRequest(e, filter)).map((e) => structuredClone(e));
  }

  clear(): void {
    this.#entries.length = 0;
  }
}
