/**
 * The emulator's own control API under /sim/ (JSON in, JSON out; not a Twilio API). It is
 * unauthenticated: the Sim is a local test tool and listens on 127.0.0.1 by default.
 *
 *   GET    /sim/state                               calls, conferences, streams
 *   GET    /sim/calls              POST /sim/calls   list / create (CreateCallOptions)
 *   GET    /sim/calls/{CallSid}
 *   POST   /sim/calls/{CallSid}/hangup               end the call
 *   POST   /sim/calls/{CallSid}/answer               queued/ringing → in-progress
 *   GET    /sim/conferences        POST /sim/conferences   list / create (CreateConferenceOptions)
 *   GET    /sim/conferences/{Sid}
 *   POST   /sim/conferences/{Sid}/participants       add (ParticipantOptions)
 *   POST   /sim/conferences/{Sid}/end                end as UpdateConference Status=completed
 *   GET    /sim/streams[?callSid=&status=]           GET /sim/streams/{StreamSid}
 *   GET    /sim/requests[?operation=&method=&status=]   DELETE /sim/requests
 *   GET    /sim/callbacks[?kind=&subject=&event=]       DELETE /sim/callbacks
 *   GET    /sim/faults   POST /sim/faults (FaultConfig, added)   DELETE /sim/faults
 *   POST   /sim/api-keys                             register {sid?, secret?}
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
  { method: 'GET', pattern: /^\/sim\/state$/, handle: (sim) => ok(sim.state()) },
  { method: 'GET', pattern: /^\/sim\/calls$/, handle: (sim) => ok(sim.state().calls) },
  { method: 'POST', pattern: /^\/sim\/calls$/, handle: async (sim, _m, body) => created(await sim.createCall(callOptions(body))) },
  { method: 'GET', pattern: /^\/sim\/calls\/([^/]+)$/, handle: (sim, [sid]) => found(sim.call(sid!), `call ${sid}`) },
  { method: 'POST', pattern: /^\/sim\/calls\/([^/]+)\/hangup$/, handle: (sim, [sid]) => ok(sim.hangup(sid!)) },
  { method: 'POST', pattern: /^\/sim\/calls\/([^/]+)\/answer$/, handle: (sim, [sid]) => ok(sim.answer(sid!)) },
  { method: 'GET', pattern: /^\/sim\/conferences$/, handle: (sim) => ok(sim.state().conferences) },
  {
    method: 'POST',
    pattern: /^\/sim\/conferences$/,
    handle: async (sim, _m, body) => created(await sim.createConference(conferenceOptions(body))),
  },
  { method: 'GET', pattern: /^\/sim\/conferences\/([^/]+)$/, handle: (sim, [sid]) => found(sim.conference(sid!), `conference ${sid}`) },
  {
    method: 'POST',
    pattern: /^\/sim\/conferences\/([^/]+)\/participants$/,
    handle: async (sim, [sid], body) => created(await sim.addParticipant(sid!, participantOptions(body))),
  },
  { method: 'POST', pattern: /^\/sim\/conferences\/([^/]+)\/end$/, handle: (sim, [sid]) => ok(sim.endConference(sid!)) },
  {
    method: 'GET',
    pattern: /^\/sim\/streams$/,
    handle: (sim, _m, _b, query) => {
      const status = q(query, 'status');
      if (status !== undefined && status !== 'in-progress' && status !== 'stopped') throw new InvalidInputError('status must be in-progress or stopped');
      const callSid = q(query, 'callSid');
      return ok(sim.streams({ ...(callSid !== undefined ? { callSid } : {}), ...(status !== undefined ? { status } : {}) }));
    },
  },
  { method: 'GET', pattern: /^\/sim\/streams\/([^/]+)$/, handle: (sim, [sid]) => found(sim.stream(sid!), `stream ${sid}`) },
  {
    method: 'GET',
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
  { method: 'DELETE', pattern: /^\/sim\/requests$/, handle: (sim) => (sim.clearRequests(), ok({ cleared: true })) },
  {
    method: 'GET',
    pattern: /^\/sim\/callbacks$/,
    handle: (sim, _m, _b, query) => {
      const kind = q(query, 'kind');
      if (kind !== undefined && kind !== 'stream' && kind !== 'conference') throw new InvalidInputError('kind must be stream or conference');
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
  { method: 'DELETE', pattern: /^\/sim\/callbacks$/, handle: (sim) => (sim.clearCallbacks(), ok({ cleared: true })) },
  { method: 'GET', pattern: /^\/sim\/faults$/, handle: (sim) => ok(sim.faults.list()) },
  {
    method: 'POST',
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
  { method: 'DELETE', pattern: /^\/sim\/faults$/, handle: (sim) => (sim.faults.clear(), ok(sim.faults.list())) },
  {
    method: 'POST',
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

/** Serves one request under /sim/. */
export async function handleControl(sim: Sim, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = req.method ?? 'GET';
  let answer: ControlAnswer;
  try {
    const route = ROUTES.find((r) => r.method === method && r.pattern.test(url.pathname));
    if (route === undefined) {
      const known = ROUTES.some((r) => r.pattern.test(url.pathname));
      answer = { status: known ? 405 : 404, body: { error: known ? `method ${method} not allowed` : `no route ${url.pathname}` } };
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
