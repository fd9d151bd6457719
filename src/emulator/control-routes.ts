/**
 * The emulator's own control API under /sim/ (JSON in, JSON out; not a Twilio API). It is
 * unauthenticated: the Sim is a local test tool and listens on 127.0.0.1 by default. Every
 * route carries its one-line description: `GET /sim/` lists them, `streamgate sim --help`
 * prints them, and a wrong method names the right one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidInputError } from '../errors.js';
import { callOptions, conferenceOptions, participantOptions } from './control-input.js';
import { SimNotFoundError } from './errors.js';
import { readBody, sendJson } from './http-util.js';
import type { Sim } from './sim.js';
import type { FaultConfig, RestOperation } from './types.js';

interface ControlAnswer {
  status: number;
  body: unknown;
}

type ControlHandler = (sim: Sim, match: string[], body: unknown, query: URLSearchParams) => ControlAnswer | Promise<ControlAnswer>;

interface ControlRoute {
  method: 'GET' | 'POST' | 'DELETE';
  /** The path as shown to people, `{…}` for a SID. */
  path: string;
  does: string;
  pattern: RegExp;
  handle: ControlHandler;
}

const ok = (body: unknown): ControlAnswer => ({ status: 200, body });
const created = (body: unknown): ControlAnswer => ({ status: 201, body });

function found<T>(value: T | undefined, what: string): ControlAnswer {
  return value === undefined ? { status: 404, body: { error: `no ${what}` } } : ok(value);
}

function q(query: URLSearchParams, name: string): string | undefined {
  return query.get(name) ?? undefined;
}

const ROUTES: readonly ControlRoute[] = [
  { method: 'GET', path: '/sim/', does: 'this list of control routes', pattern: /^\/sim\/?$/, handle: () => ok({ routes: controlRoutes() }) },
  { method: 'GET', path: '/sim/state', does: 'calls, conferences and streams, as JSON', pattern: /^\/sim\/state$/, handle: (sim) => ok(sim.state()) },
  { method: 'GET', path: '/sim/calls', does: 'every call', pattern: /^\/sim\/calls$/, handle: (sim) => ok(sim.state().calls) },
  { method: 'POST', path: '/sim/calls', does: 'place a scripted call: {audio, hears, url|twiml, statusCallback, …}; with url/twiml it runs your TwiML', pattern: /^\/sim\/calls$/, handle: async (sim, _m, body) => created(await sim.createCall(callOptions(body))) },
  { method: 'GET', path: '/sim/calls/{CallSid}', does: 'one call', pattern: /^\/sim\/calls\/([^/]+)$/, handle: (sim, [sid]) => found(sim.call(sid!), `call ${sid}`) },
  { method: 'POST', path: '/sim/calls/{CallSid}/hangup', does: 'hang the call up', pattern: /^\/sim\/calls\/([^/]+)\/hangup$/, handle: (sim, [sid]) => ok(sim.hangup(sid!)) },
  {
    method: 'POST',
    path: '/sim/calls/{CallSid}/digits',
    does: 'press keys: {digits: "12#"}; dtmf events on the call\'s <Connect><Stream>',
    pattern: /^\/sim\/calls\/([^/]+)\/digits$/,
    handle: (sim, [sid], body) => ok(sim.pressDigits(sid!, digitsOf(body))),
  },
  {
    method: 'POST',
    path: '/sim/calls/{CallSid}/twiml',
    does: 'run TwiML now, as UpdateCall does: {url, method?} or {twiml}',
    pattern: /^\/sim\/calls\/([^/]+)\/twiml$/,
    handle: (sim, [sid], body) => ok(sim.redirect(sid!, twimlOf(body))),
  },
  { method: 'POST', path: '/sim/calls/{CallSid}/answer', does: 'answer a queued or ringing call', pattern: /^\/sim\/calls\/([^/]+)\/answer$/, handle: (sim, [sid]) => ok(sim.answer(sid!)) },
  { method: 'GET', path: '/sim/conferences', does: 'every conference', pattern: /^\/sim\/conferences$/, handle: (sim) => ok(sim.state().conferences) },
  {
    method: 'POST', path: '/sim/conferences', does: 'create a conference: {friendlyName, statusCallback, statusCallbackEvent, participants}',
    pattern: /^\/sim\/conferences$/,
    handle: async (sim, _m, body) => created(await sim.createConference(conferenceOptions(body))),
  },
  { method: 'GET', path: '/sim/conferences/{ConferenceSid}', does: 'one conference with its participants', pattern: /^\/sim\/conferences\/([^/]+)$/, handle: (sim, [sid]) => found(sim.conference(sid!), `conference ${sid}`) },
  {
    method: 'POST', path: '/sim/conferences/{ConferenceSid}/participants', does: 'add a participant: {audio, label, muted, endConferenceOnExit, …}',
    pattern: /^\/sim\/conferences\/([^/]+)\/participants$/,
    handle: async (sim, [sid], body) => created(await sim.addParticipant(sid!, participantOptions(body))),
  },
  { method: 'POST', path: '/sim/conferences/{ConferenceSid}/end', does: 'end it as UpdateConference Status=completed does', pattern: /^\/sim\/conferences\/([^/]+)\/end$/, handle: (sim, [sid]) => ok(sim.endConference(sid!)) },
  {
    method: 'GET', path: '/sim/streams', does: 'streams with their counts (sent, received, marks); ?callSid=&status=',
    pattern: /^\/sim\/streams$/,
    handle: (sim, _m, _b, query) => {
      const status = q(query, 'status');
      if (status !== undefined && status !== 'in-progress' && status !== 'stopped') throw new InvalidInputError('status must be in-progress or stopped');
      const callSid = q(query, 'callSid');
      return ok(sim.streams({ ...(callSid !== undefined ? { callSid } : {}), ...(status !== undefined ? { status } : {}) }));
    },
  },
  { method: 'GET', path: '/sim/streams/{StreamSid}', does: 'one stream', pattern: /^\/sim\/streams\/([^/]+)$/, handle: (sim, [sid]) => found(sim.stream(sid!), `stream ${sid}`) },
  {
    method: 'GET', path: '/sim/requests', does: 'Twilio REST requests answered; ?operation=&method=&status=',
    pattern: /^\/sim\/requests$/,
    handle: (sim, _m, _b, query) => {
      const status = q(query, 'status');
      const operation = q(query, 'operation') as RestOperation | undefined;
      const method = q(query, 'method');
      return ok(
        sim.requests({
          ...(operation !== undefined ? { operation } : {}),
          ...(method !== undefined ? { method } : {}),
          ...(status !== undefined ? { status: Number(status) } : {}),
        }),
      );
    },
  },
  { method: 'DELETE', path: '/sim/requests', does: 'forget the request log', pattern: /^\/sim\/requests$/, handle: (sim) => (sim.clearRequests(), ok({ cleared: true })) },
  {
    method: 'GET', path: '/sim/callbacks', does: 'callbacks sent, with their answers; ?kind=&subject=&event=',
    pattern: /^\/sim\/callbacks$/,
    handle: (sim, _m, _b, query) => {
      const kind = q(query, 'kind');
      if (kind !== undefined && kind !== 'stream' && kind !== 'conference' && kind !== 'call') throw new InvalidInputError('kind must be stream, conference or call');
      const subject = q(query, 'subject');
      const event = q(query, 'event');
      return ok(
        sim.callbacks({
          ...(kind !== undefined ? { kind } : {}),
          ...(subject !== undefined ? { subject } : {}),
          ...(event !== undefined ? { event } : {}),
        }),
      );
    },
  },
  { method: 'DELETE', path: '/sim/callbacks', does: 'forget the callback log', pattern: /^\/sim\/callbacks$/, handle: (sim) => (sim.clearCallbacks(), ok({ cleared: true })) },
  { method: 'GET', path: '/sim/faults', does: 'the faults in force', pattern: /^\/sim\/faults$/, handle: (sim) => ok(sim.faults.list()) },
  {
    method: 'POST', path: '/sim/faults', does: 'add faults: {streams: [{match, once, faults}], rest: [{operation, status, latencyMs, next, rate}]}',
    pattern: /^\/sim\/faults$/,
    handle: (sim, _m, body) => {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidInputError('body must be {streams?, rest?}');
      const { streams, rest, ...extra } = body as Record<string, unknown>;
      if (Object.keys(extra).length > 0) throw new InvalidInputError(`unknown fault fields: ${Object.keys(extra).join(', ')}`);
      if (streams !== undefined && !Array.isArray(streams)) throw new InvalidInputError('streams must be a list');
      if (rest !== undefined && !Array.isArray(rest)) throw new InvalidInputError('rest must be a list');
      sim.faults.configure({ streams, rest } as FaultConfig);
      return ok(sim.faults.list());
    },
  },
  { method: 'DELETE', path: '/sim/faults', does: 'remove every fault', pattern: /^\/sim\/faults$/, handle: (sim) => (sim.faults.clear(), ok(sim.faults.list())) },
  {
    method: 'POST', path: '/sim/api-keys', does: 'register an API key: {sid?, secret?}',
    pattern: /^\/sim\/api-keys$/,
    handle: (sim, _m, body) => {
      const b = (body ?? {}) as { sid?: unknown; secret?: unknown };
      if ((b.sid !== undefined && typeof b.sid !== 'string') || (b.secret !== undefined && typeof b.secret !== 'string')) {
        throw new InvalidInputError('sid and secret must be strings');
      }
      return created(sim.addApiKey(b.sid, b.secret));
    },
  },
];

/** Every control route as `METHOD path: what it does`. */
export function controlRoutes(): string[] {
  return ROUTES.map((r) => `${r.method} ${r.path}: ${r.does}`);
}

function digitsOf(body: unknown): string {
  const b = body as { digits?: unknown } | undefined;
  if (typeof b !== 'object' || b === null || typeof b.digits !== 'string' || Object.keys(b).length !== 1) throw new InvalidInputError('body must be {digits: "…"}');
  return b.digits;
}

function twimlOf(body: unknown): { url: string; method?: 'GET' | 'POST' } | { twiml: string } {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b.twiml === 'string' && b.url === undefined) return { twiml: b.twiml };
  if (typeof b.url !== 'string') throw new InvalidInputError('body must be {url, method?} or {twiml}');
  try {
    new URL(b.url);
  } catch {
    throw new InvalidInputError('url must be an absolute URL');
  }
  if (b.method !== undefined && b.method !== 'GET' && b.method !== 'POST') throw new InvalidInputError('method must be GET or POST');
  return b.method === undefined ? { url: b.url } : { url: b.url, method: b.method };
}

/** Serves one request under /sim/. */
export async function handleControl(sim: Sim, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = req.method ?? 'GET';
  let answer: ControlAnswer;
  try {
    const route = ROUTES.find((r) => r.method === method && r.pattern.test(url.pathname));
    if (route === undefined) {
      const same = ROUTES.filter((r) => r.pattern.test(url.pathname)).map((r) => `${r.method} ${r.path}`);
      answer =
        same.length > 0
          ? { status: 405, body: { error: `${method} is not allowed on ${url.pathname}; use ${same.join(' or ')}`, routes: controlRoutes() } }
          : { status: 404, body: { error: `no route ${url.pathname}; GET /sim/ lists them`, routes: controlRoutes() } };
    } else {
      const text = method === 'GET' ? '' : await readBody(req);
      let body: unknown;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        throw new InvalidInputError('body is not JSON');
      }
      const match = route.pattern.exec(url.pathname)!.slice(1).map(decodeURIComponent);
      answer = await route.handle(sim, match, body, url.searchParams);
    }
  } catch (err) {
    if (err instanceof SimNotFoundError) answer = { status: 404, body: { error: err.message } };
    else if (err instanceof InvalidInputError) answer = { status: 400, body: { error: err.message } };
    else throw err;
  }
  sendJson(res, answer.status, answer.body);
}
