/**
 * Twilio's REST surface under /2010-04-01/Accounts/{AccountSid}/….json. Every request is
 * authenticated first (401/20003), then checked against the account in the path (404/20404:
 * Twilio does not confirm that another account's resources exist), matched to an operation
 * (404 for unknown paths, 405 for a known path with another method), given its injected faults,
 * handled, and recorded in the request log with its answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidInputError } from '../errors.js';
import type { Credentials } from './auth.js';
import type { SimEngine } from './engine.js';
import type { FaultController } from './faults.js';
import { parseForm } from '../twilio/form.js';
import { basicAuth, readBody, sendJson } from './http-util.js';
import { createCall, createStream, fetchCall, listCalls, updateCall, updateStream, type RestAnswer } from './rest-calls.js';
import {
  createParticipant,
  fetchConference,
  fetchParticipant,
  listConferences,
  listParticipants,
  updateConference,
} from './rest-conferences.js';
import { authenticate, notFound, SimRestError, TWILIO_CODES } from './rest-errors.js';
import type { Params } from './rest-params.js';
import type { RequestLogEntry, RestOperation, SimLogger } from './types.js';

type Handler = (engine: SimEngine, match: string[], params: Params, path: string) => RestAnswer | Promise<RestAnswer>;

interface Route {
  method: 'GET' | 'POST';
  /** Matched against the path after `/2010-04-01/Accounts/{AccountSid}`. */
  pattern: RegExp;
  operation: RestOperation;
  handle: Handler;
}

const SEG = '([^/]+)';
const ROUTES: readonly Route[] = [
  { method: 'GET', pattern: /^\/Calls\.json$/, operation: 'ListCall', handle: listCalls },
  { method: 'POST', pattern: /^\/Calls\.json$/, operation: 'CreateCall', handle: createCall },
  { method: 'GET', pattern: new RegExp(`^/Calls/${SEG}\\.json$`), operation: 'FetchCall', handle: fetchCall },
  { method: 'POST', pattern: new RegExp(`^/Calls/${SEG}\\.json$`), operation: 'UpdateCall', handle: updateCall },
  { method: 'POST', pattern: new RegExp(`^/Calls/${SEG}/Streams\\.json$`), operation: 'CreateStream', handle: createStream },
  { method: 'POST', pattern: new RegExp(`^/Calls/${SEG}/Streams/${SEG}\\.json$`), operation: 'UpdateStream', handle: updateStream },
  { method: 'GET', pattern: /^\/Conferences\.json$/, operation: 'ListConference', handle: listConferences },
  { method: 'GET', pattern: new RegExp(`^/Conferences/${SEG}\\.json$`), operation: 'FetchConference', handle: fetchConference },
  { method: 'POST', pattern: new RegExp(`^/Conferences/${SEG}\\.json$`), operation: 'UpdateConference', handle: updateConference },
  { method: 'GET', pattern: new RegExp(`^/Conferences/${SEG}/Participants\\.json$`), operation: 'ListParticipant', handle: listParticipants },
  { method: 'POST', pattern: new RegExp(`^/Conferences/${SEG}/Participants\\.json$`), operation: 'CreateParticipant', handle: createParticipant },
  {
    method: 'GET',
    pattern: new RegExp(`^/Conferences/${SEG}/Participants/${SEG}\\.json$`),
    operation: 'FetchParticipant',
    handle: fetchParticipant,
  },
];

const ACCOUNT_PATH = /^\/2010-04-01\/Accounts\/([^/]+)(\/.*)$/;

export interface RestContext {
  engine: SimEngine;
  credentials: Credentials;
  faults: FaultController;
  logger: SimLogger;
  /** Appends an answered request to the log. */
  record(entry: Omit<RequestLogEntry, 'seq'>): void;
}

/** Serves one request whose path starts with /2010-04-01/. */
export async function handleRest(ctx: RestContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = req.method ?? 'GET';
  const path = url.pathname;
  const entry: Omit<RequestLogEntry, 'seq'> = {
    time: new Date().toISOString(),
    method,
    path,
    operation: null,
    params: {},
    authUser: null,
    status: 0,
    twilioCode: null,
    injected: false,
  };
  let answer: RestAnswer;
  let headers: Record<string, string> = {};
  try {
    const body = method === 'POST' ? await readBody(req) : '';
    // Form body (POST) or query (GET); a repeated name becomes a list (qs `arrayFormat: repeat`).
    entry.params = parseForm(method === 'POST' ? body : url.searchParams);
    const auth = basicAuth(req);
    entry.authUser = auth?.user ?? null;
    const m = ACCOUNT_PATH.exec(path);
    const rest = m === null ? null : m[2]!;
    const route = rest === null ? undefined : ROUTES.find((r) => r.method === method && r.pattern.test(rest));
    entry.operation = route?.operation ?? null;
    if (auth === null || !ctx.credentials.check(auth.user, auth.password)) throw authenticate();
    if (m === null || m[1] !== ctx.credentials.accountSid) throw notFound(path);
    if (route === undefined) {
      const allowed = ROUTES.filter((r) => r.pattern.test(rest!)).map((r) => `${r.method} (${r.operation})`);
      if (allowed.length > 0) throw new SimRestError(405, 20004, `Method not allowed: ${path} accepts ${allowed.join(', ')}`);
      throw notFound(path);
    }
    const fault = ctx.faults.forRequest(route.operation);
    if (fault.latencyMs > 0) await sleep(fault.latencyMs);
    if (fault.status !== null) {
      entry.injected = true;
      throw injectedError(fault.status);
    }
    const segments = route.pattern.exec(rest!)!.slice(1).map(decodeSegment);
    answer = await route.handle(ctx.engine, segments, entry.params, path);
  } catch (err) {
    const e = toRestError(err, ctx.logger);
    answer = { status: e.httpStatus, body: e.body() };
    headers = { ...e.headers };
    entry.twilioCode = e.twilioCode;
  }
  entry.status = answer.status;
  sendJson(res, answer.status, answer.body, { 'Twilio-Request-Id': 'RQ' + randomBytes(16).toString('hex'), ...headers });
  ctx.record(entry);
}

function injectedError(status: 429 | 500 | 503): SimRestError {
  if (status === 429) return new SimRestError(429, TWILIO_CODES.tooManyRequests, 'Too Many Requests', { 'Twilio-Concurrent-Requests': '101' });
  if (status === 503) return new SimRestError(503, TWILIO_CODES.unavailable, 'Service Unavailable');
  return new SimRestError(500, TWILIO_CODES.internal, 'Internal Server Error');
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function toRestError(err: unknown, logger: SimLogger): SimRestError {
  if (err instanceof SimRestError) return err;
  if (err instanceof InvalidInputError) return new SimRestError(400, TWILIO_CODES.invalidParameter, err.message);
  logger.error({ err }, 'sim REST handler failed');
  return new SimRestError(500, TWILIO_CODES.internal, 'Internal Server Error');
}
