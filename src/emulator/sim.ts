/**
 * The Sim: one running Twilio emulator and everything a test, the demo or a load run does
 * with it. Methods return JSON snapshots; waiting helpers re-check their condition on every
 * state change, so they never miss one that happened before the wait began.
 */
import type { Server } from 'node:http';
import { InvalidInputError } from '../errors.js';
import type { Credentials } from './auth.js';
import type { CallbackSender } from './callbacks.js';
import type { SimEngine } from './engine.js';
import { SimNotFoundError } from './errors.js';
import type { SimEventBus, SimEvents } from './events.js';
import type { FaultController } from './faults.js';
import { callSnapshot, conferenceSnapshot, participantSnapshot, streamSnapshot, type CallRecord } from './records.js';
import type { RequestFilter, RequestLog } from './request-log.js';
import type {
  CallbackLogEntry,
  CallSnapshot,
  ConferenceSnapshot,
  CreateCallOptions,
  CreateConferenceOptions,
  FaultConfig,
  ParticipantOptions,
  ParticipantSnapshot,
  RequestLogEntry,
  RestFault,
  SimStateSnapshot,
  StreamFaultRule,
  StreamSnapshot,
} from './types.js';

export type { RequestFilter } from './request-log.js';

export interface CallbackFilter {
  kind?: 'stream' | 'conference' | 'call';
  /** Stream, conference or call SID. */
  subject?: string;
  event?: string;
  /** Only callbacks whose answer (or failure) is known. */
  settled?: boolean;
}

export interface StreamFilter {
  callSid?: string;
  name?: string;
  status?: 'in-progress' | 'stopped';
  /** Only streams whose WebSocket opened. */
  connected?: boolean;
}

export interface WaitOptions {
  /** Default 5000 ms. */
  timeoutMs?: number;
}

/** The parts a Sim is built from (see server.ts startSim). */
export interface SimParts {
  engine: SimEngine;
  bus: SimEventBus;
  faults: FaultController;
  callbacks: CallbackSender;
  credentials: Credentials;
  requests: RequestLog;
  server: Server;
  speed: number;
}

/** Fault configuration of a running Sim. */
export interface SimFaults {
  /** Adds rules and REST faults (validated; bad input throws InvalidInputError). */
  configure(config: FaultConfig): void;
  addStreamRule(rule: StreamFaultRule): void;
  addRestFault(fault: RestFault): void;
  clear(): void;
  list(): FaultConfig;
}

const DEFAULT_WAIT_MS = 5000;

export class Sim {
  readonly accountSid: string;
  readonly authToken: string;
  /** 0 when unpaced. */
  readonly speed: number;
  readonly faults: SimFaults;
  readonly #p: SimParts;
  #url = '';
  #closing: Promise<void> | null = null;

  constructor(parts: SimParts) {
    this.#p = parts;
    this.accountSid = parts.credentials.accountSid;
    this.authToken = parts.credentials.authToken;
    this.speed = parts.speed;
    const f = parts.faults;
    this.faults = {
      configure: (c) => f.configure(c),
      addStreamRule: (r) => f.addStreamRule(r),
      addRestFault: (r) => f.addRestFault(r),
      clear: () => f.clear(),
      list: () => f.list(),
    };
  }

  /** HTTP base URL (use as TWILIO_API_URL); the control API is under `${url}/sim/`. */
  get url(): string {
    return this.#url;
  }

  /** The port the Sim listens on. */
  get port(): number {
    return Number(new URL(this.#url).port);
  }

  /** @internal Set once by startSim after listen. */
  bindUrl(url: string): void {
    this.#url = url;
  }

  /** Adds a listener for a Sim event; returns the function that removes it. */
  on<K extends keyof SimEvents>(event: K, listener: (...args: SimEvents[K]) => void): () => void {
    return this.#p.bus.on(event, listener);
  }

  async createCall(opts: CreateCallOptions = {}): Promise<CallSnapshot> {
    return callSnapshot(await this.#p.engine.createCall(opts));
  }

  /** Moves a queued or ringing call to in-progress. */
  answer(callSid: string): CallSnapshot {
    const call = this.#call(callSid);
    this.#p.engine.answer(call);
    return callSnapshot(call);
  }

  /**
   * Presses keys on a call: each digit (0-9, A-D, *, #) reaches the server of the call's
   * two-way stream as a `dtmf` event, in order. Twilio sends dtmf only on `<Connect><Stream>`,
   * so a call without a live two-way stream refuses (InvalidInputError).
   */
  pressDigits(callSid: string, digits: string): StreamSnapshot {
    const call = this.#call(callSid);
    if (!/^[0-9A-D*#]{1,32}$/.test(digits)) throw new InvalidInputError('digits must be 1 to 32 of 0-9, A-D, * and #');
    const stream = this.#p.engine.liveStreams(call).find((s) => s.bidirectional && s.streamer.stats.connected);
    if (stream === undefined) throw new InvalidInputError(`call ${callSid} has no live two-way stream (Twilio sends dtmf only on <Connect><Stream>)`);
    for (const d of digits) {
      if (!stream.streamer.sendDtmf(d)) throw new InvalidInputError(`stream ${stream.sid} has not started yet`);
    }
    this.#p.engine.opts.logger.info({ callSid, streamSid: stream.sid, digits }, 'digits pressed');
    return streamSnapshot(stream);
  }

  /** Runs TwiML on a live call now, as UpdateCall Url/Twiml does. */
  redirect(callSid: string, source: { url: string; method?: 'GET' | 'POST' } | { twiml: string }): CallSnapshot {
    const call = this.#call(callSid);
    if (call.status !== 'in-progress') throw new InvalidInputError(`call ${callSid} is ${call.status}`);
    this.#p.engine.runTwiml(call, 'twiml' in source ? source : { url: source.url, method: source.method ?? 'POST' });
    return callSnapshot(call);
  }

  /** Hangs a call up: its streams get `stop`, its conference sees the participant leave. */
  hangup(callSid: string): CallSnapshot {
    const call = this.#call(callSid);
    this.#p.engine.hangup(call, 'control');
    return callSnapshot(call);
  }

  /** Creates a conference and adds `participants` in order. */
  async createConference(opts: CreateConferenceOptions = {}): Promise<ConferenceSnapshot> {
    const { participants = [], ...rest } = opts;
    const conf = this.#p.engine.conferences.create(rest);
    for (const p of participants) await this.addParticipant(conf.sid, p);
    return conferenceSnapshot(conf);
  }

  /** Adds a participant: a new call playing `opts.audio`, or the existing `opts.callSid`. */
  async addParticipant(conferenceSid: string, opts: ParticipantOptions = {}): Promise<ParticipantSnapshot> {
    const { engine } = this.#p;
    const conf = engine.conferences.conferences.get(conferenceSid);
    if (conf === undefined) throw new SimNotFoundError(`conference ${conferenceSid}`);
    if (conf.status === 'completed') throw new InvalidInputError(`conference ${conferenceSid} is completed`);
    const call = opts.callSid !== undefined ? this.#call(opts.callSid) : await engine.createCall(opts);
    return participantSnapshot(engine.conferences.join(conf, call, opts));
  }

  /** Ends a conference as UpdateConference Status=completed does (not recorded as a REST request). */
  endConference(conferenceSid: string): ConferenceSnapshot {
    const conf = this.#p.engine.conferences.conferences.get(conferenceSid);
    if (conf === undefined) throw new SimNotFoundError(`conference ${conferenceSid}`);
    this.#p.engine.conferences.end(conf, 'conference-ended-via-api', null);
    return conferenceSnapshot(conf);
  }

  /** Registers an API key (generated SID/secret when not given). */
  addApiKey(sid?: string, secret?: string): { sid: string; secret: string } {
    return this.#p.credentials.addApiKey(sid, secret);
  }

  state(): SimStateSnapshot {
    const { engine } = this.#p;
    return {
      accountSid: this.accountSid,
      speed: this.speed,
      calls: [...engine.calls.values()].map(callSnapshot),
      conferences: [...engine.conferences.conferences.values()].map(conferenceSnapshot),
      streams: [...engine.streams.values()].map(streamSnapshot),
    };
  }

  call(callSid: string): CallSnapshot | undefined {
    const c = this.#p.engine.calls.get(callSid);
    return c === undefined ? undefined : callSnapshot(c);
  }

  conference(conferenceSid: string): ConferenceSnapshot | undefined {
    const c = this.#p.engine.conferences.conferences.get(conferenceSid);
    return c === undefined ? undefined : conferenceSnapshot(c);
  }

  stream(streamSid: string): StreamSnapshot | undefined {
    const s = this.#p.engine.streams.get(streamSid);
    return s === undefined ? undefined : streamSnapshot(s);
  }

  streams(filter: StreamFilter = {}): StreamSnapshot[] {
    return [...this.#p.engine.streams.values()].map(streamSnapshot).filter((s) => matchesStream(s, filter));
  }

  /** Twilio REST requests answered so far (oldest first). */
  requests(filter: RequestFilter = {}): RequestLogEntry[] {
    return this.#p.requests.list(filter);
  }

  clearRequests(): void {
    this.#p.requests.clear();
  }

  /** Callbacks sent so far (oldest first). */
  callbacks(filter: CallbackFilter = {}): CallbackLogEntry[] {
    return this.#p.callbacks.log.filter((e) => matchesCallback(e, filter)).map((e) => structuredClone(e));
  }

  clearCallbacks(): void {
    this.#p.callbacks.log.length = 0;
  }

  /** Resolves when every queued callback has been answered or failed. */
  callbacksIdle(): Promise<void> {
    return this.#p.callbacks.idle();
  }

  /** Resolves with the first truthy result of `check`, evaluated now and after every change. */
  waitUntil<T>(check: () => T | undefined | null | false, opts: WaitOptions & { what?: string } = {}): Promise<T> {
    return this.#p.bus.waitUntil(check, opts.what ?? 'a condition', opts.timeoutMs ?? DEFAULT_WAIT_MS);
  }

  /** Waits until at least `count` logged requests match. */
  waitForRequests(filter: RequestFilter, count = 1, opts: WaitOptions = {}): Promise<RequestLogEntry[]> {
    return this.waitUntil(
      () => {
        const hits = this.#p.requests.list(filter);
        return hits.length >= count ? hits : null;
      },
      { ...opts, what: `${count} request(s) matching ${JSON.stringify(filter)}` },
    );
  }

  /** Waits for a stream matching `filter` and returns it. */
  waitForStream(filter: StreamFilter, opts: WaitOptions = {}): Promise<StreamSnapshot> {
    return this.waitUntil(() => this.streams(filter)[0], { ...opts, what: `a stream matching ${JSON.stringify(filter)}` });
  }

  /** Waits until at least `count` callbacks match (settled ones only, unless `settled: false`). */
  waitForCallbacks(filter: CallbackFilter, count = 1, opts: WaitOptions = {}): Promise<CallbackLogEntry[]> {
    const f = { settled: true, ...filter };
    return this.waitUntil(
      () => {
        const hits = this.callbacks(f);
        return hits.length >= count ? hits : null;
      },
      { ...opts, what: `${count} callback(s) matching ${JSON.stringify(f)}` },
    );
  }

  waitForCallStatus(callSid: string, status: CallSnapshot['status'], opts: WaitOptions = {}): Promise<CallSnapshot> {
    return this.waitUntil(
      () => {
        const c = this.call(callSid);
        return c?.status === status ? c : null;
      },
      { ...opts, what: `call ${callSid} to be ${status}` },
    );
  }

  waitForConferenceStatus(conferenceSid: string, status: ConferenceSnapshot['status'], opts: WaitOptions = {}): Promise<ConferenceSnapshot> {
    return this.waitUntil(
      () => {
        const c = this.conference(conferenceSid);
        return c?.status === status ? c : null;
      },
      { ...opts, what: `conference ${conferenceSid} to be ${status}` },
    );
  }

  /** Stops every stream (with `stop`), aborts pending callbacks and closes the server. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const { engine, callbacks, server } = this.#p;
      // Streams get `stop` but no callbacks: receivers are usually shutting down too.
      await engine.close();
      callbacks.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    })();
    return this.#closing;
  }

  #call(callSid: string): CallRecord {
    const call = this.#p.engine.calls.get(callSid);
    if (call === undefined) throw new SimNotFoundError(`call ${callSid}`);
    return call;
  }
}

function matchesStream(s: StreamSnapshot, f: StreamFilter): boolean {
  return (
    (f.callSid === undefined || s.callSid === f.callSid) &&
    (f.name === undefined || s.name === f.name) &&
    (f.status === undefined || s.status === f.status) &&
    (f.connected === undefined || s.connected === f.connected)
  );
}

function matchesCallback(e: CallbackLogEntry, f: CallbackFilter): boolean {
  return (
    (f.kind === undefined || e.kind === f.kind) &&
    (f.subject === undefined || e.subject === f.subject) &&
    (f.event === undefined || e.event === f.event) &&
    (f.settled === undefined || f.settled === (e.status !== null || e.error !== null))
  );
}
