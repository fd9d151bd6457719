/**
 * Fault configuration of one Sim: rules that give new streams their faults, and REST faults
 * (errors and latency per operation). Input from the control API is checked here, so a typo
 * in a test answers 400 instead of silently injecting nothing.
 */
import { InvalidInputError } from '../errors.js';
import { prng } from './frame-faults.js';
import type { FaultConfig, FrameSelector, RestFault, RestOperation, StreamFaultRule, StreamFaults, StreamTrack } from './types.js';

const REST_OPERATIONS: readonly RestOperation[] = [
  'CreateCall',
  'CreateStream',
  'UpdateStream',
  'FetchCall',
  'UpdateCall',
  'ListCall',
  'FetchConference',
  'UpdateConference',
  'ListConference',
  'ListParticipant',
  'FetchParticipant',
  'CreateParticipant',
];

/** What a REST fault decided for one request. */
export interface RestFaultDecision {
  latencyMs: number;
  status: 429 | 500 | 503 | null;
}

export class FaultController {
  #streamRules: StreamFaultRule[] = [];
  #rest: { fault: RestFault; remaining: number }[] = [];
  readonly #random = prng(0x5eed);

  constructor(initial?: FaultConfig) {
    if (initial !== undefined) this.configure(initial);
  }

  /** Adds rules and REST faults (after validating them). */
  configure(config: FaultConfig): void {
    for (const rule of config.streams ?? []) this.addStreamRule(rule);
    for (const fault of config.rest ?? []) this.addRestFault(fault);
  }

  addStreamRule(rule: StreamFaultRule): void {
    this.#streamRules.push(checkStreamRule(rule));
  }

  addRestFault(fault: RestFault): void {
    const f = checkRestFault(fault);
    this.#rest.push({ fault: f, remaining: f.next ?? Infinity });
  }

  clear(): void {
    this.#streamRules = [];
    this.#rest = [];
  }

  list(): FaultConfig {
    return {
      streams: this.#streamRules.map((r) => structuredClone(r)),
      rest: this.#rest.map(({ fault, remaining }) => ({ ...fault, ...(Number.isFinite(remaining) ? { next: remaining } : {}) })),
    };
  }

  /**
   * Faults for a new stream: the call's own, then every matching rule in order (later fields
   * win). `once` rules are consumed.
   */
  forStream(stream: { callSid: string; name: string | null; track: StreamTrack }, callFaults?: StreamFaults): StreamFaults | null {
    let merged: StreamFaults | null = callFaults !== undefined ? { ...callFaults } : null;
    const kept: StreamFaultRule[] = [];
    for (const rule of this.#streamRules) {
      const m = rule.match ?? {};
      const hit =
        (m.callSid === undefined || m.callSid === stream.callSid) &&
        (m.name === undefined || m.name === stream.name) &&
        (m.track === undefined || m.track === stream.track);
      if (hit) merged = { ...(merged ?? {}), ...rule.faults };
      if (!(hit && rule.once === true)) kept.push(rule);
    }
    this.#streamRules = kept;
    return merged;
  }

  /** Decides latency and failure for one request to `operation`. */
  forRequest(operation: RestOperation | null): RestFaultDecision {
    const decision: RestFaultDecision = { latencyMs: 0, status: null };
    for (const entry of this.#rest) {
      const f = entry.fault;
      if (f.operation !== undefined && f.operation !== '*' && f.operation !== operation) continue;
      let applies: boolean;
      if (f.next !== undefined) applies = entry.remaining-- > 0;
      else if (f.rate !== undefined) applies = this.#random() < f.rate;
      else applies = true;
      if (!applies) continue;
      decision.latencyMs = Math.max(decision.latencyMs, f.latencyMs ?? 0);
      if (decision.status === null && f.status !== undefined) decision.status = f.status;
    }
    this.#rest = this.#rest.filter((e) => e.remaining > 0);
    return decision;
  }
}

function fail(message: string): never {
  throw new InvalidInputError(message);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function nonNegative(x: unknown, field: string): number | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) fail(`${field} must be a non-negative number`);
  return x;
}

function rate(x: unknown, field: string): number | undefined {
  const r = nonNegative(x, field);
  if (r !== undefined && r > 1) fail(`${field} must be between 0 and 1`);
  return r;
}

function selector(x: unknown, field: string): FrameSelector {
  if (!isObject(x)) fail(`${field} must be an object with rate and/or frames`);
  const frames = x.frames;
  if (frames !== undefined && (!Array.isArray(frames) || !frames.every((n) => Number.isInteger(n) && (n as number) > 0))) {
    fail(`${field}.frames must be a list of positive integers`);
  }
  const out: FrameSelector = {};
  const r = rate(x.rate, `${field}.rate`);
  if (r !== undefined) out.rate = r;
  if (frames !== undefined) out.frames = frames as number[];
  return out;
}

const STREAM_FAULT_KEYS = new Set([
  'seed',
  'drop',
  'duplicate',
  'reorder',
  'delay',
  'silenceGaps',
  'chunkSizes',
  'closeAfterFrames',
  'handshakeDelayMs',
  'startDelayMs',
]);

/** Validates stream faults from untrusted input. */
export function checkStreamFaults(x: unknown, field = 'faults'): StreamFaults {
  if (!isObject(x)) fail(`${field} must be an object`);
  for (const key of Object.keys(x)) if (!STREAM_FAULT_KEYS.has(key)) fail(`${field}.${key} is not a stream fault`);
  const f: StreamFaults = {};
  if (x.seed !== undefined) {
    if (!Number.isInteger(x.seed)) fail(`${field}.seed must be an integer`);
    f.seed = x.seed as number;
  }
  if (x.drop !== undefined) f.drop = selector(x.drop, `${field}.drop`);
  if (x.duplicate !== undefined) f.duplicate = selector(x.duplicate, `${field}.duplicate`);
  if (x.reorder !== undefined) {
    const by = nonNegative((x.reorder as Record<string, unknown>).by, `${field}.reorder.by`);
    f.reorder = { ...selector(x.reorder, `${field}.reorder`), ...(by !== undefined ? { by } : {}) };
  }
  if (x.delay !== undefined) {
    const ms = nonNegative((x.delay as Record<string, unknown>).ms, `${field}.delay.ms`);
    if (ms === undefined) fail(`${field}.delay.ms is required`);
    f.delay = { ...selector(x.delay, `${field}.delay`), ms };
  }
  if (x.silenceGaps !== undefined) {
    if (typeof x.silenceGaps !== 'boolean') fail(`${field}.silenceGaps must be a boolean`);
    f.silenceGaps = x.silenceGaps;
  }
  if (x.chunkSizes !== undefined) {
    const sizes = x.chunkSizes;
    if (!Array.isArray(sizes) || sizes.length === 0 || !sizes.every((n) => Number.isInteger(n) && (n as number) > 0)) {
      fail(`${field}.chunkSizes must be a non-empty list of positive integers`);
    }
    f.chunkSizes = sizes as number[];
  }
  for (const key of ['closeAfterFrames', 'handshakeDelayMs', 'startDelayMs'] as const) {
    const v = nonNegative(x[key], `${field}.${key}`);
    if (v !== undefined) f[key] = v;
  }
  return f;
}

const TRACKS: readonly StreamTrack[] = ['inbound_track', 'outbound_track', 'both_tracks'];

function checkStreamRule(x: unknown): StreamFaultRule {
  if (!isObject(x)) fail('stream fault rule must be an object');
  const rule: StreamFaultRule = { faults: checkStreamFaults(x.faults, 'faults') };
  if (x.once !== undefined) {
    if (typeof x.once !== 'boolean') fail('once must be a boolean');
    rule.once = x.once;
  }
  if (x.match !== undefined) {
    if (!isObject(x.match)) fail('match must be an object');
    const { callSid, name, track } = x.match;
    rule.match = {};
    if (callSid !== undefined) rule.match.callSid = typeof callSid === 'string' ? callSid : fail('match.callSid must be a string');
    if (name !== undefined) rule.match.name = typeof name === 'string' ? name : fail('match.name must be a string');
    if (track !== undefined) rule.match.track = TRACKS.includes(track as StreamTrack) ? (track as StreamTrack) : fail(`match.track must be one of ${TRACKS.join(', ')}`);
  }
  return rule;
}

function checkRestFault(x: unknown): RestFault {
  if (!isObject(x)) fail('REST fault must be an object');
  const f: RestFault = {};
  if (x.operation !== undefined) {
    if (x.operation !== '*' && !REST_OPERATIONS.includes(x.operation as RestOperation)) {
      fail(`operation must be '*' or one of ${REST_OPERATIONS.join(', ')}`);
    }
    f.operation = x.operation as RestOperation | '*';
  }
  if (x.status !== undefined) {
    if (x.status !== 429 && x.status !== 500 && x.status !== 503) fail('status must be 429, 500 or 503');
    f.status = x.status;
  }
  const latency = nonNegative(x.latencyMs, 'latencyMs');
  if (latency !== undefined) f.latencyMs = latency;
  if (x.next !== undefined) {
    if (!Number.isInteger(x.next) || (x.next as number) < 1) fail('next must be a positive integer');
    f.next = x.next as number;
  }
  const r = rate(x.rate, 'rate');
  if (r !== undefined) f.rate = r;
  if (f.status === undefined && f.latencyMs === undefined) fail('a REST fault needs a status and/or latencyMs');
  return f;
}
