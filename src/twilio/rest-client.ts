/**
 * The three Twilio REST calls streamgate makes (docs/twilio-protocol.md §4, §6.1, §7): CreateStream,
 * UpdateStream (stop), UpdateConference (end), plus FetchConference. One request function over
 * global fetch with `AbortSignal.timeout` per attempt, one method per operation, and retries only
 * where they are safe:
 *
 * | operation                          | retried on                                        |
 * |------------------------------------|---------------------------------------------------|
 * | CreateStream                       | 429, ECONNREFUSED (Twilio cannot have acted)      |
 * | UpdateStream, UpdateConference,    | 429, 5xx, timeouts, every transport failure       |
 * | FetchConference                    | (repeating them yields the same end state)        |
 *
 * A CreateStream repeated after a 5xx or a timeout could start a second fork of the call (and
 * use up its 4-track limit, §4.3), so those failures surface to the caller instead.
 *
 * What Twilio answers is checked in src/twilio/rest-responses.ts before it reaches the caller.
 *
 * Secrets: the password and the Authorization header live in private fields, and request
 * bodies (whose parameters carry the per-call stream token) are never logged.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ConfigError, InvalidInputError } from '../errors.js';
import { TwilioApiError, TwilioResponseError, TwilioTransportError, type TransportFailure, type TwilioOperation } from './errors.js';
import { ShapeError, parseConference, parseErrorBody, parseStream, type ConferenceResource, type StreamResource } from './rest-responses.js';
import { assertSid, isSid } from './sids.js';

/** CreateStream's `Track` values (docs/twilio-protocol.md §4.1). */
export const STREAM_TRACKS = ['inbound_track', 'outbound_track', 'both_tracks'] as const;
export type StreamTrack = (typeof STREAM_TRACKS)[number];
export type HttpMethod = 'GET' | 'POST';

/** CreateStream allows `Parameter1` … `Parameter99` (docs/twilio-protocol.md §4.1). */
export const MAX_STREAM_PARAMETERS = 99;

export interface TwilioRestClientOptions {
  /** Default `https://api.twilio.com`; a regional host or the emulator (`http://127.0.0.1:3100`). */
  baseUrl?: string;
  /** The account whose resources are addressed; always in the path, even with an API key. */
  accountSid: string;
  /** Basic-auth user: the account SID (`AC…`) or an API key SID (`SK…`). */
  username: string;
  /** The auth token, or the API key secret. */
  password: string;
  /** Per attempt, headers and body included. Default 10 000. */
  timeoutMs?: number;
  /** Retries after the first attempt. Default 3. */
  maxRetries?: number;
  /** Backoff before retry n is `random() × min(retryMaxMs, retryBaseMs × 2^n)`. Default 100. */
  retryBaseMs?: number;
  /** Default 3000 (twilio-node's `maxRetryDelay`). */
  retryMaxMs?: number;
  logger?: Logger;
  /**
   * Called once per HTTP attempt with the operation, the HTTP status as a string (or `'timeout'`
   * / `'error'` when there was none) and the attempt's duration in seconds. Feeds
   * `twilio_requests_total` and `twilio_request_duration_seconds`.
   */
  observe?: RequestObserver;
}

/** See {@link TwilioRestClientOptions.observe}. */
export type RequestObserver = (operation: TwilioOperation, status: string, seconds: number) => void;

export interface CreateStreamParams {
  /** The `wss://` URL Twilio dials (Twilio rejects other schemes with 31922, asynchronously). */
  url: string;
  /** Unique per call; lets {@link TwilioRestClient.updateStream} address the stream by name. */
  name?: string;
  /** Default (Twilio's) `inbound_track`. */
  track?: StreamTrack;
  statusCallback?: string;
  statusCallbackMethod?: HttpMethod;
  /** Custom parameters, sent as `ParameterN.Name`/`ParameterN.Value` in insertion order (≤ 99). */
  parameters?: Readonly<Record<string, string>>;
}

export interface UpdateConferenceParams {
  /** `completed` ends the conference and drops every participant. */
  status?: 'completed';
  announceUrl?: string;
  announceMethod?: HttpMethod;
}

const METHODS: readonly HttpMethod[] = ['GET', 'POST'];
const USER_AGENT = `streamgate/${packageVersion()} node/${process.version}`;

/** Client for the Twilio REST API 2010-04-01 resources streamgate uses. */
export class TwilioRestClient {
  readonly accountSid: string;
  readonly #base: string;
  readonly #postHeaders: Readonly<Record<string, string>>;
  readonly #getHeaders: Readonly<Record<string, string>>;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #log: Logger | null;
  readonly #observe: RequestObserver | null;

  constructor(options: TwilioRestClientOptions) {
    this.accountSid = assertSid('account', options.accountSid, 'accountSid');
    if (!isSid('account', options.username) && !isSid('apiKey', options.username)) {
      throw new ConfigError('Twilio username must be an account SID (AC…) or an API key SID (SK…)');
    }
    if (typeof options.password !== 'string' || options.password === '') {
      throw new ConfigError('Twilio password (auth token or API key secret) must not be empty');
    }
    this.#base = checkBaseUrl(options.baseUrl ?? 'https://api.twilio.com');
    this.#timeoutMs = positive('timeoutMs', options.timeoutMs ?? 10_000);
    this.#maxRetries = nonNegativeInt('maxRetries', options.maxRetries ?? 3);
    this.#retryBaseMs = nonNegative('retryBaseMs', options.retryBaseMs ?? 100);
    this.#retryMaxMs = nonNegative('retryMaxMs', options.retryMaxMs ?? 3000);
    this.#log = options.logger?.child({ component: 'twilio-rest' }) ?? null;
    this.#observe = options.observe ?? null;
    // Built once: every request reuses the same header objects (fetch copies them).
    const auth = 'Basic ' + Buffer.from(`${options.username}:${options.password}`, 'utf8').toString('base64');
    this.#getHeaders = { Authorization: auth, Accept: 'application/json', 'Accept-Charset': 'utf-8', 'User-Agent': USER_AGENT };
    this.#postHeaders = { ...this.#getHeaders, 'Content-Type': 'application/x-www-form-urlencoded' };
  }

  /** CreateStream: starts a unidirectional stream of a live call (§4.1). */
  async createStream(callSid: string, params: CreateStreamParams): Promise<StreamResource> {
    assertSid('call', callSid, 'callSid');
    if (typeof params.url !== 'string' || params.url === '') throw new InvalidInputError('CreateStream url must not be empty');
    const form = new URLSearchParams({ Url: params.url });
    if (params.name !== undefined) form.append('Name', params.name);
    if (params.track !== undefined) form.append('Track', oneOf('track', params.track, STREAM_TRACKS));
    if (params.statusCallback !== undefined) form.append('StatusCallback', params.statusCallback);
    if (params.statusCallbackMethod !== undefined) {
      form.append('StatusCallbackMethod', oneOf('statusCallbackMethod', params.statusCallbackMethod, METHODS));
    }
    if (params.parameters !== undefined) appendStreamParameters(form, params.parameters);
    const path = `${this.#accountPath()}/Calls/${callSid}/Streams.json`;
    return this.#request('CreateStream', 'POST', path, form, (body) => parseStream(body, callSid));
  }

  /** UpdateStream: stops a unidirectional stream addressed by its `MZ…` SID or its name (§4.2). */
  async updateStream(callSid: string, sidOrName: string, params: { status: 'stopped' }): Promise<StreamResource> {
    assertSid('call', callSid, 'callSid');
    if (typeof sidOrName !== 'string' || sidOrName === '') throw new InvalidInputError('stream SID or name must not be empty');
    const form = new URLSearchParams({ Status: oneOf('status', params.status, ['stopped'] as const) });
    // A name is free text: encoded, "/" and "?" cannot escape the path segment.
    const path = `${this.#accountPath()}/Calls/${callSid}/Streams/${encodeURIComponent(sidOrName)}.json`;
    return this.#request('UpdateStream', 'POST', path, form, (body) => parseStream(body, callSid));
  }

  /** UpdateConference: ends a conference (`status: 'completed'`) and/or plays an announcement (§6.1). */
  async updateConference(conferenceSid: string, params: UpdateConferenceParams): Promise<ConferenceResource> {
    assertSid('conference', conferenceSid, 'conferenceSid');
    const form = new URLSearchParams();
    if (params.status !== undefined) form.append('Status', oneOf('status', params.status, ['completed'] as const));
    if (params.announceUrl !== undefined) form.append('AnnounceUrl', params.announceUrl);
    if (params.announceMethod !== undefined) form.append('AnnounceMethod', oneOf('announceMethod', params.announceMethod, METHODS));
    if (params.status === undefined && params.announceUrl === undefined) {
      throw new InvalidInputError('UpdateConference needs status or announceUrl');
    }
    const path = `${this.#accountPath()}/Conferences/${conferenceSid}.json`;
    return this.#request('UpdateConference', 'POST', path, form, (body) => parseConference(body, conferenceSid));
  }

  /** FetchConference: the conference's current state. */
  async fetchConference(conferenceSid: string): Promise<ConferenceResource> {
    assertSid('conference', conferenceSid, 'conferenceSid');
    const path = `${this.#accountPath()}/Conferences/${conferenceSid}.json`;
    return this.#request('FetchConference', 'GET', path, null, (body) => parseConference(body, conferenceSid));
  }

  #accountPath(): string {
    return `/2010-04-01/Accounts/${this.accountSid}`;
  }

  async #request<T>(
    operation: TwilioOperation,
    method: HttpMethod,
    path: string,
    form: URLSearchParams | null,
    parse: (body: unknown) => T,
  ): Promise<T> {
    const url = this.#base + path;
    const init: RequestInit = {
      method,
      headers: method === 'POST' ? this.#postHeaders : this.#getHeaders,
      body: form === null ? undefined : form.toString(),
      // Twilio does not redirect these resources; a 3xx is reported, never followed with our credentials.
      redirect: 'manual',
    };
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      let status: number;
      let text: string;
      let contentType: string | null;
      try {
        init.signal = AbortSignal.timeout(this.#timeoutMs);
        const res = await fetch(url, init);
        status = res.status;
        contentType = res.headers.get('content-type');
        text = await res.text();
      } catch (err) {
        const { failure, code } = classifyTransport(err);
        this.#report(operation, failure === 'timeout' ? 'timeout' : 'error', started);
        const retryable = transportRetryable(operation, failure);
        if (retryable && attempt <= this.#maxRetries) {
          await this.#backoff(operation, failure === 'timeout' ? 'timeout' : 'error', attempt, code);
          continue;
        }
        throw new TwilioTransportError(operation, failure, code, retryable, attempt, { cause: err });
      }
      this.#report(operation, String(status), started);
      if (status >= 200 && status < 300) {
        let body: unknown;
        try {
          body = JSON.parse(text);
          return parse(body);
        } catch (err) {
          const problem = err instanceof ShapeError ? err.message : 'body is not JSON';
          throw new TwilioResponseError(operation, status, problem, attempt);
        }
      }
      if (statusRetryable(operation, status) && attempt <= this.#maxRetries) {
        await this.#backoff(operation, String(status), attempt, null);
        continue;
      }
      throw new TwilioApiError(operation, status, parseErrorBody(status, text, contentType), attempt);
    }
  }

  #report(operation: TwilioOperation, status: string, started: number): void {
    if (this.#observe === null) return;
    try {
      this.#observe(operation, status, (performance.now() - started) / 1000);
    } catch (err) {
      // A broken metrics hook must not turn a successful Twilio call into a failure.
      this.#log?.debug({ err, operation }, 'twilio observe hook threw');
    }
  }

  async #backoff(operation: TwilioOperation, status: string, attempt: number, code: string | null): Promise<void> {
    // Full jitter (twilio-node's formula, 1-based n): spreads retries of many gateways apart.
    const delayMs = Math.floor(Math.random() * Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** attempt));
    // Operation, status and counters only: URLs, bodies and headers stay out of the log.
    this.#log?.warn({ operation, status, attempt, delayMs, ...(code === null ? {} : { systemCode: code }) }, 'twilio request retry');
    if (delayMs > 0) await sleep(delayMs);
  }
}

/** 429 means Twilio did not process the request (§7.2), so it is safe for every operation. */
function statusRetryable(operation: TwilioOperation, status: number): boolean {
  return status === 429 || (operation !== 'CreateStream' && status >= 500 && status <= 599);
}

function transportRetryable(operation: TwilioOperation, failure: TransportFailure): boolean {
  return operation !== 'CreateStream' || failure === 'refused';
}

const FAILURE_BY_CODE: Readonly<Record<string, TransportFailure>> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  ETIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
};

/** Maps what fetch threw (TimeoutError, or TypeError "fetch failed" with a coded cause) to a failure kind. */
function classifyTransport(err: unknown): { failure: TransportFailure; code: string | null } {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null || seen.has(e)) continue;
    seen.add(e);
    const { name, code, cause, errors } = e as { name?: unknown; code?: unknown; cause?: unknown; errors?: unknown };
    if (name === 'TimeoutError') return { failure: 'timeout', code: null };
    if (typeof code === 'string' && code in FAILURE_BY_CODE) return { failure: FAILURE_BY_CODE[code]!, code };
    queue.push(cause);
    // Happy-eyeballs connects report an AggregateError with one error per address tried.
    if (Array.isArray(errors)) queue.push(...errors);
  }
  const code = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  return { failure: 'network', code: typeof code === 'string' ? code : null };
}

function appendStreamParameters(form: URLSearchParams, parameters: Readonly<Record<string, string>>): void {
  const entries = Object.entries(parameters);
  if (entries.length > MAX_STREAM_PARAMETERS) {
    throw new InvalidInputError(`CreateStream takes at most ${MAX_STREAM_PARAMETERS} parameters, got ${entries.length}`);
  }
  for (let i = 0; i < entries.length; i++) {
    const [name, value] = entries[i]!;
    if (typeof value !== 'string') throw new InvalidInputError(`stream parameter ${JSON.stringify(name)} must be a string`);
    form.append(`Parameter${i + 1}.Name`, name);
    form.append(`Parameter${i + 1}.Value`, value);
  }
}

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidInputError(`${field} must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

function checkBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`Twilio baseUrl is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError('Twilio baseUrl must be http(s)');
  if (url.username !== '' || url.password !== '') throw new ConfigError('Twilio baseUrl must not carry credentials');
  if (url.search !== '' || url.hash !== '') throw new ConfigError('Twilio baseUrl must not have a query or fragment');
  return url.origin + url.pathname.replace(/\/+$/, '');
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`Twilio ${name} must be a positive number`);
  return v;
}

function nonNegative(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) throw new ConfigError(`Twilio ${name} must be ≥ 0`);
  return v;
}

function nonNegativeInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) throw new ConfigError(`Twilio ${name} must be an integer ≥ 0`);
  return v;
}

/** streamgate's version from its package.json (found upward from this file in src/ and dist/ alike). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'streamgate' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No package.json at this level: keep climbing.
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return '0.0.0';
}
