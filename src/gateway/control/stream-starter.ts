/**
 * Starts and stops Media Streams through Twilio's REST API, and remembers the streams it asked
 * for. Every CreateStream carries the per-call token (`sgToken`, twilio/stream-token.ts) and,
 * when the call is in a conference, its `conferenceSid`, as custom parameters: Twilio echoes
 * both in the stream's `start` message, where the start guard checks the one and the session
 * files the stream under the other.
 *
 *   CreateStream 2xx ──► requested ──stream-started──► started ──stream-stopped──► stopped
 *                            └──────────────stream-error─────────────┴──────────► error
 *
 * The table is bounded: finished entries go first, then the oldest.
 */
import type { Logger } from 'pino';
import { InvalidInputError, TwilioNotConfiguredError } from '../../errors.js';
import type { StreamTrack, TwilioRestClient } from '../../twilio/rest-client.js';
import type { StreamResource } from '../../twilio/rest-responses.js';
import { isSid } from '../../twilio/sids.js';
import { STREAM_TOKEN_PARAMETER, createStreamToken } from '../../twilio/stream-token.js';
import { MEDIA_PATH, STREAM_STATUS_PATH } from '../../core/routes.js';
import { CONFERENCE_PARAMETER } from '../../core/stream.js';
import type { JoinClaim, JoinGate } from '../../state/join-claims.js';
import type { TokenLedger } from './token-ledger.js';

/** Parameter names the gateway sets itself; a caller may not supply them. */
export const RESERVED_PARAMETERS: readonly string[] = [STREAM_TOKEN_PARAMETER, CONFERENCE_PARAMETER];

export type TrackedStatus = 'requested' | 'started' | 'stopped' | 'error';
/** Who asked for the stream: the admin API, a conference participant-join, or unknown (a callback for a stream we did not create). */
export type StreamOrigin = 'admin' | 'participant-join' | 'callback';

export interface TrackedStream {
  readonly streamSid: string;
  readonly callSid: string;
  name: string | null;
  conferenceSid: string | null;
  /** Null when we only know the stream from a callback. */
  track: StreamTrack | null;
  origin: StreamOrigin;
  status: TrackedStatus;
  /** The last StreamEvent Twilio reported, if any. */
  lastCallback: string | null;
  /** StreamError of a `stream-error` callback. */
  error: string | null;
  /** ms since epoch. */
  requestedAt: number;
  updatedAt: number;
}

export interface StartStreamRequest {
  track?: StreamTrack;
  name?: string;
  conferenceSid?: string;
  parameters?: Readonly<Record<string, string>>;
}

/** The fields of a stream status callback (docs/twilio-protocol.md §5) we use. */
export interface StreamCallback {
  streamSid: string;
  callSid: string;
  event: string;
  name: string | null;
  error: string | null;
}

export interface StreamStarterOptions {
  /** Null when no credentials are configured: every Twilio call fails with TwilioNotConfiguredError. */
  client: TwilioRestClient | null;
  /** PUBLIC_URL (no trailing slash). */
  publicUrl: string;
  /** Key for per-call tokens: deriveStreamTokenSecret(TWILIO_AUTH_TOKEN). */
  tokenSecret: Buffer;
  log: Logger;
  /** Told of every CreateStream, so the start guard can bind tokens to these streams (token-ledger.ts). */
  ledger?: TokenLedger;
  /** Entries kept at most (default 1000). */
  maxTracked?: number;
  /** A `requested` stream not heard of for this long is no longer listed as pending (default 120 000). */
  pendingTtlMs?: number;
}

export class StreamStarter {
  /** Where Twilio dials: the ws(s):// form of PUBLIC_URL plus `/media`. */
  readonly mediaUrl: string;
  /** CreateStream's StatusCallback: PUBLIC_URL plus `/twilio/stream-status`. */
  readonly statusCallbackUrl: string;
  readonly #client: TwilioRestClient | null;
  readonly #secret: Buffer;
  readonly #ledger: TokenLedger | undefined;
  readonly #log: Logger;
  readonly #max: number;
  readonly #pendingTtlMs: number;
  readonly #streams = new Map<string, TrackedStream>();
  /** Calls with an automatic CreateStream in flight (participant-join callbacks can repeat). */
  readonly #autoInFlight = new Set<string>();
  /** Conferences Twilio reported ended, so a late participant-join does not start a stream (bounded). */
  readonly #endedConferences = new Set<string>();
  /**
   * With REDIS_URL, participant-join callbacks reach any process, repeatedly: the claim that
   * lets exactly one of them stream the call (state/join-claims.ts). Null: this process alone decides.
   */
  joinGate: JoinGate | null = null;

  constructor(opts: StreamStarterOptions) {
    this.#client = opts.client;
    this.#secret = opts.tokenSecret;
    this.#ledger = opts.ledger;
    this.#log = opts.log;
    this.#max = opts.maxTracked ?? 1000;
    this.#pendingTtlMs = opts.pendingTtlMs ?? 120_000;
    this.mediaUrl = publicUrlAs(opts.publicUrl, 'ws') + MEDIA_PATH;
    this.statusCallbackUrl = publicUrlAs(opts.publicUrl, 'http') + STREAM_STATUS_PATH;
  }

  /** True when REST credentials are configured. */
  get configured(): boolean {
    return this.#client !== null;
  }

  /** The account the REST client addresses, or null without credentials. */
  get accountSid(): string | null {
    return this.#client?.accountSid ?? null;
  }

  /**
   * CreateStream for `callSid` with the per-call token and the conference parameter. Throws
   * TwilioNotConfiguredError, InvalidInputError (a reserved parameter name) or the REST
   * client's Twilio errors.
   */
  async start(callSid: string, req: StartStreamRequest, origin: StreamOrigin = 'admin'): Promise<TrackedStream> {
    const client = this.#client;
    if (client === null) throw new TwilioNotConfiguredError();
    const conferenceSid = req.conferenceSid;
    if (conferenceSid !== undefined && !isSid('conference', conferenceSid)) {
      throw new InvalidInputError('conferenceSid must match ^CF[0-9a-fA-F]{32}$');
    }
    const parameters: Record<string, string> = { [STREAM_TOKEN_PARAMETER]: createStreamToken(this.#secret, callSid, conferenceSid) };
    if (conferenceSid !== undefined) parameters[CONFERENCE_PARAMETER] = conferenceSid;
    for (const [key, value] of Object.entries(req.parameters ?? {})) {
      if (RESERVED_PARAMETERS.includes(key)) throw new InvalidInputError(`parameters.${key} is reserved: the gateway sets it`);
      parameters[key] = value;
    }
    // Expected from now on: Twilio may connect before its REST answer reaches us.
    const expected = this.#ledger?.expect(callSid, conferenceSid ?? null);
    let resource: StreamResource;
    try {
      resource = await client.createStream(callSid, {
        url: this.mediaUrl,
        name: req.name,
        track: req.track,
        statusCallback: this.statusCallbackUrl,
        statusCallbackMethod: 'POST',
        parameters,
      });
    } catch (err) {
      if (expected !== undefined) this.#ledger!.drop(expected);
      throw err;
    }
    if (expected !== undefined) this.#ledger!.bound(expected, resource.sid);
    const now = Date.now();
    // A stream-started callback can beat the REST answer: keep what it recorded.
    const known = this.#streams.get(resource.sid);
    const entry: TrackedStream = {
      streamSid: resource.sid,
      callSid,
      name: resource.name ?? req.name ?? null,
      conferenceSid: conferenceSid ?? null,
      track: req.track ?? 'inbound_track',
      origin,
      status: known?.status ?? 'requested',
      lastCallback: known?.lastCallback ?? null,
      error: known?.error ?? null,
      requestedAt: now,
      updatedAt: now,
    };
    this.#put(entry);
    this.#log.info({ streamSid: entry.streamSid, callSid, conferenceSid: entry.conferenceSid, track: entry.track, origin }, 'stream requested');
    return entry;
  }

  /**
   * Streams a call that joined a conference, unless the gateway already streams it (or is
   * asking Twilio to) or the conference has ended. Resolves to null when it skipped.
   */
  async autoStart(callSid: string, conferenceSid: string, track: StreamTrack): Promise<TrackedStream | null> {
    if (this.#endedConferences.has(conferenceSid)) return null;
    if (this.#autoInFlight.has(callSid) || this.hasActiveStream(callSid)) return null;
    this.#autoInFlight.add(callSid);
    try {
      const gate = this.joinGate;
      if (gate === null) return await this.start(callSid, { track, conferenceSid }, 'participant-join');
      let claim: JoinClaim | 'unreachable';
      try {
        claim = await gate.claim(conferenceSid, callSid);
      } catch (err) {
        // Better a participant streamed twice than not at all: go on with this process's own check.
        this.#log.warn({ err, conferenceSid, callSid }, 'participant-join claim unavailable (state store); streaming on the local check only');
        claim = 'unreachable';
      }
      if (claim === 'ended') this.conferenceEnded(conferenceSid);
      if (claim === 'ended' || claim === 'taken') return null;
      try {
        return await this.start(callSid, { track, conferenceSid }, 'participant-join');
      } catch (err) {
        // A retried callback (here or on another process) may try again.
        if (claim === 'claimed') await gate.release(conferenceSid, callSid).catch(() => undefined);
        throw err;
      }
    } finally {
      this.#autoInFlight.delete(callSid);
    }
  }

  /** UpdateStream Status=stopped, by MZ… SID or by name. */
  async stop(callSid: string, nameOrSid: string): Promise<StreamResource> {
    const client = this.#client;
    if (client === null) throw new TwilioNotConfiguredError();
    const resource = await client.updateStream(callSid, nameOrSid, { status: 'stopped' });
    const entry = this.#streams.get(resource.sid);
    if (entry !== undefined && entry.status !== 'error') {
      entry.status = 'stopped';
      entry.updatedAt = Date.now();
    }
    this.#log.info({ streamSid: resource.sid, callSid }, 'stream stop requested');
    return resource;
  }

  /**
   * A stream's socket on this process closed: whatever callback is still to come (Twilio may
   * post `stream-stopped` to another process behind the balancer, or not at all), it is no
   * longer live here, so it is not listed as pending or counted as active.
   */
  streamEnded(streamSid: string): void {
    const entry = this.#streams.get(streamSid);
    if (entry === undefined || entry.status === 'stopped' || entry.status === 'error') return;
    entry.status = 'stopped';
    entry.updatedAt = Date.now();
  }

  /** Files a stream status callback; creates an entry for a stream we did not start. */
  recordCallback(cb: StreamCallback): TrackedStream {
    let entry = this.#streams.get(cb.streamSid);
    const now = Date.now();
    if (entry === undefined) {
      entry = {
        streamSid: cb.streamSid,
        callSid: cb.callSid,
        // Twilio sends the StreamSid as StreamName when no name was given (§5).
        name: cb.name !== null && cb.name !== cb.streamSid ? cb.name : null,
        conferenceSid: null,
        track: null,
        origin: 'callback',
        status: 'requested',
        lastCallback: null,
        error: null,
        requestedAt: now,
        updatedAt: now,
      };
      this.#put(entry);
    }
    entry.lastCallback = cb.event;
    entry.updatedAt = now;
    if (cb.event === 'stream-started' && entry.status === 'requested') entry.status = 'started';
    else if (cb.event === 'stream-stopped' && entry.status !== 'error') entry.status = 'stopped';
    else if (cb.event === 'stream-error') {
      entry.status = 'error';
      entry.error = cb.error;
    }
    return entry;
  }

  /** Twilio reported the conference over: no automatic streams for it any more. */
  conferenceEnded(conferenceSid: string): void {
    this.#endedConferences.add(conferenceSid);
    if (this.#endedConferences.size > this.#max) {
      const oldest = this.#endedConferences.values().next().value;
      if (oldest !== undefined) this.#endedConferences.delete(oldest);
    }
  }

  get(streamSid: string): TrackedStream | undefined {
    return this.#streams.get(streamSid);
  }

  /** True while a stream the gateway asked for on this call is requested or running. */
  hasActiveStream(callSid: string): boolean {
    const now = Date.now();
    for (const e of this.#streams.values()) {
      if (e.callSid === callSid && this.#isActive(e, now)) return true;
    }
    return false;
  }

  /** Entries still requested or started (a stale `requested` one excluded), oldest first. */
  active(): TrackedStream[] {
    const now = Date.now();
    const out: TrackedStream[] = [];
    for (const e of this.#streams.values()) if (this.#isActive(e, now)) out.push(e);
    return out;
  }

  #isActive(e: TrackedStream, now: number): boolean {
    if (e.status === 'started') return true;
    return e.status === 'requested' && now - e.updatedAt < this.#pendingTtlMs;
  }

  #put(entry: TrackedStream): void {
    this.#streams.delete(entry.streamSid);
    this.#streams.set(entry.streamSid, entry);
    if (this.#streams.size <= this.#max) return;
    for (const [sid, e] of this.#streams) {
      if (e.status === 'stopped' || e.status === 'error') {
        this.#streams.delete(sid);
        if (this.#streams.size <= this.#max) return;
      }
    }
    for (const sid of this.#streams.keys()) {
      this.#streams.delete(sid);
      if (this.#streams.size <= this.#max) return;
    }
  }
}

/**
 * PUBLIC_URL in the scheme family asked for, without trailing slash: `ws` gives the WebSocket
 * form (https/wss → wss, http/ws → ws), `http` the webhook form (wss/https → https, ws/http → http).
 * Twilio only dials `wss://`, so a real deployment's PUBLIC_URL is https.
 */
export function publicUrlAs(publicUrl: string, family: 'ws' | 'http'): string {
  const u = new URL(publicUrl);
  const secure = u.protocol === 'https:' || u.protocol === 'wss:';
  const scheme = family === 'ws' ? (secure ? 'wss:' : 'ws:') : secure ? 'https:' : 'http:';
  return `${scheme}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

