/**
 * Status callbacks as Twilio sends them (docs/twilio-protocol.md §5, §6.2, §8): form-encoded POST
 * (or GET with the parameters in the query), signed with X-Twilio-Signature over the URL plus
 * the sorted form parameters (GET: over the full URL alone). Callbacks about one subject (a
 * stream, a conference) are delivered one after another, in the order they were queued, so a
 * receiver sees SequenceNumber increase; different subjects do not wait for each other.
 * There are no retries, as with Twilio's status callbacks.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { computeSignature } from '../twilio/signature.js';
import type { CallbackLogEntry, SimLogger } from './types.js';

/** A callback to send; callbacks with the same subject (stream, conference or call SID) are delivered in order. */
export type CallbackRequest = Pick<CallbackLogEntry, 'kind' | 'subject' | 'event' | 'url' | 'method' | 'params'>;

export interface CallbackSenderOptions {
  authToken: string;
  timeoutMs: number;
  tlsRejectUnauthorized: boolean;
  logger: SimLogger;
  /** Called when an entry is queued and again when its answer (or failure) is known. */
  onChange: (entry: CallbackLogEntry) => void;
}

export class CallbackSender {
  readonly log: CallbackLogEntry[] = [];
  readonly #opts: CallbackSenderOptions;
  readonly #queues = new Map<string, Promise<void>>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #seq = 0;

  constructor(opts: CallbackSenderOptions) {
    this.#opts = opts;
  }

  /** Queues `req` behind earlier callbacks about the same subject. */
  send(req: CallbackRequest): CallbackLogEntry {
    const { url, signature } = this.#sign(req);
    const entry: CallbackLogEntry = {
      seq: ++this.#seq,
      time: new Date().toISOString(),
      kind: req.kind,
      subject: req.subject,
      event: req.event,
      url: req.url,
      method: req.method,
      params: req.params,
      signature,
      status: null,
      error: null,
    };
    this.log.push(entry);
    this.#opts.onChange(entry);
    const previous = this.#queues.get(req.subject) ?? Promise.resolve();
    const next = previous.then(() => this.#deliver(entry, url, req.method === 'POST' ? new URLSearchParams(req.params).toString() : null));
    this.#queues.set(req.subject, next);
    this.#inflight.add(next);
    void next.finally(() => {
      this.#inflight.delete(next);
      if (this.#queues.get(req.subject) === next) this.#queues.delete(req.subject);
    });
    return entry;
  }

  /** Resolves when every queued callback has been answered or failed. */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  /** Aborts callbacks still in flight. */
  close(): void {
    this.#abort.abort();
  }

  #sign(req: CallbackRequest): { url: string; signature: string } {
    if (req.method === 'GET') {
      const query = new URLSearchParams(req.params).toString();
      const url = req.url + (query === '' ? '' : (req.url.includes('?') ? '&' : '?') + query);
      return { url, signature: computeSignature(this.#opts.authToken, url) };
    }
    return { url: req.url, signature: computeSignature(this.#opts.authToken, req.url, req.params) };
  }

  #deliver(entry: CallbackLogEntry, url: string, body: string | null): Promise<void> {
    return new Promise<void>((resolve) => {
      let finished = false;
      const done = (status: number | null, error: string | null): void => {
        if (finished) return;
        finished = true;
        entry.status = status;
        entry.error = error;
        if (error !== null) this.#opts.logger.warn({ url: entry.url, event: entry.event, error }, 'callback failed');
        this.#opts.onChange(entry);
        resolve();
      };
      if (this.#abort.signal.aborted) return done(null, 'sim closed');
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        return done(null, 'malformed callback URL');
      }
      const headers: Record<string, string> = {
        'X-Twilio-Signature': entry.signature,
        'User-Agent': 'TwilioProxy/1.1',
        'I-Twilio-Idempotency-Token': randomUUID(),
        Accept: '*/*',
      };
      if (body !== null) {
        headers['Content-Type'] = 'application/x-www-form-urlencoded';
        headers['Content-Length'] = String(Buffer.byteLength(body));
      }
      const send = target.protocol === 'https:' ? httpsRequest : target.protocol === 'http:' ? httpRequest : null;
      if (send === null) return done(null, `unsupported callback scheme ${target.protocol}`);
      const req = send(target, {
        method: entry.method,
        headers,
        timeout: this.#opts.timeoutMs,
        signal: this.#abort.signal,
        rejectUnauthorized: this.#opts.tlsRejectUnauthorized,
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode ?? null, null));
        res.on('error', (err) => done(res.statusCode ?? null, err.message));
      });
      req.on('timeout', () => req.destroy(new Error(`timed out after ${this.#opts.timeoutMs} ms`)));
      req.on('error', (err) => done(null, err.message));
      req.end(body ?? undefined);
    });
  }
}
