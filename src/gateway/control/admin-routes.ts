/**
 * The admin API, `/v1/*` (docs/design.md "Routes"), as one encapsulated fastify plugin with its own
 * access hook (admin-access.ts), error handler and JSON parser, so nothing here leaks onto the
 * webhook or health routes. Every route in the scope refuses query parameters it does not name,
 * as it refuses unknown body fields: a typo is answered, not ignored.
 *
 * `GET /v1/transcripts` (SSE) is registered by the transcription side, not here.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { STREAM_TRACKS, type StreamTrack } from '../../twilio/rest-client.js';
import { SID_PATTERNS } from '../../twilio/sids.js';
import { adminAccess } from './admin-access.js';
import { errorResponses, registerOpenApi } from './openapi.js';
import { FieldError, sendRouteError } from './route-errors.js';
import type { EndConference } from '../../core/conference.js';
import type { Gateway } from '../server.js';
import type { SessionRegistry } from '../media/session-registry.js';
import { STATE } from '../media/stream-state.js';
import { RESERVED_PARAMETERS, type StreamStarter, type TrackedStream } from './stream-starter.js';

export const ADMIN_PREFIX = '/v1';

/** Registers more routes inside the `/v1` scope (paths relative to `/v1`), behind its auth and error handler. */
export type AdminExtension = (scope: FastifyInstance, gateway: Gateway) => void;

export interface AdminRoutesOptions {
  starter: StreamStarter;
  /** What `POST /v1/conferences/{sid}/end` calls: the conditions engine's once-only end, or plain REST. */
  endConference: EndConference;
  /** With REDIS_URL: the other processes' live streams, listed after this one's (shared-state.ts), and this process's id. */
  peerStreams?: () => Promise<LiveStream[]>;
  processId?: string;
  /** E.g. `GET /v1/transcripts` (SSE), owned by the transcription side. */
  extensions?: readonly AdminExtension[];
  /** A live stream's per-track level in dBFS (the level sink's meter), for `GET /v1/streams`. */
  levels?: LevelSource;
}

export type LevelSource = (streamSid: string) => Partial<Record<'inbound' | 'outbound', number | null>> | null;

/** One entry of `GET /v1/streams`. */
export interface LiveStream {
  streamSid: string;
  callSid: string;
  accountSid: string | null;
  conferenceSid: string | null;
  tracks: string[];
  /** ISO 8601; null while the stream is only requested. */
  startedAt: string | null;
  /** Media frames received so far. */
  frames: number;
  /** Media frames missing from the wire so far (sequence-number gaps). */
  lost: number;
  /** `streaming`: its socket is open here; `pending`: CreateStream succeeded, Twilio has not connected (here) yet. */
  state: 'streaming' | 'pending';
  /** Set when the gateway asked for the stream (or Twilio sent a callback for it). */
  name: string | null;
  origin: TrackedStream['origin'] | null;
  /** With REDIS_URL: the process holding the stream. */
  owner?: string;
  /** Last stream status callback (`stream-started`, `stream-stopped`, `stream-error`). */
  lastCallback: string | null;
  error: string | null;
  /**
   * Per track: `transcribed`, `phrases-only` (waiting for a TRANSCRIPTION_MAX_STREAMS slot,
   * phrase rules still spotted) or `waiting`; null when the stream is not transcribed at all.
   */
  transcription: Partial<Record<string, string>> | null;
  /** Per track, its recent level in dBFS (null before its first frame); `{}` while pending. */
  levels: Partial<Record<'inbound' | 'outbound', number | null>>;
}

const TRACKS_OF: Record<StreamTrack, string[]> = {
  inbound_track: ['inbound'],
  outbound_track: ['outbound'],
  both_tracks: ['inbound', 'outbound'],
};
const BODY_FIELDS = ['track', 'name', 'conferenceSid', 'parameters'];

const callParams = {
  type: 'object',
  required: ['CallSid'],
  properties: { CallSid: { type: 'string', pattern: SID_PATTERNS.call.source } },
} as const;

const NULLABLE_STRING = { type: ['string', 'null'] } as const;

const createStreamSchema = {
  summary: 'Start streaming a call (Twilio CreateStream to this gateway)',
  params: callParams,
  body: {
    type: 'object',
    // propertyNames rather than additionalProperties:false: fastify's ajv would silently strip
    // unknown keys, and a typo in an admin request should be answered, not ignored.
    propertyNames: { enum: BODY_FIELDS },
    properties: {
      track: { type: 'string', enum: STREAM_TRACKS },
      name: { type: 'string', minLength: 1, maxLength: 256 },
      conferenceSid: { type: 'string', pattern: SID_PATTERNS.conference.source },
      parameters: {
        type: 'object',
        // 99 Twilio parameters minus the two the gateway adds.
        maxProperties: 97,
        propertyNames: { minLength: 1, maxLength: 256 },
        additionalProperties: { type: 'string', maxLength: 500 },
      },
    },
  },
  response: {
    201: {
      description: 'Twilio accepted CreateStream; the stream connects to `url` shortly',
      type: 'object',
      properties: {
        streamSid: { type: 'string' },
        callSid: { type: 'string' },
        name: NULLABLE_STRING,
        conferenceSid: NULLABLE_STRING,
        track: NULLABLE_STRING,
        status: { type: 'string' },
        url: { type: 'string', description: 'the wss:// media URL Twilio was given' },
      },
      additionalProperties: true,
    },
    ...errorResponses(404, 415, 502, 503),
  },
} as const;

const stopStreamSchema = {
  summary: 'Stop a stream (Twilio UpdateStream Status=stopped)',
  params: {
    type: 'object',
    required: ['CallSid', 'nameOrSid'],
    properties: {
      CallSid: { type: 'string', pattern: SID_PATTERNS.call.source },
      nameOrSid: { type: 'string', minLength: 1, maxLength: 256 },
    },
  },
  response: {
    200: {
      description: 'Twilio stopped the stream',
      type: 'object',
      properties: { streamSid: { type: 'string' }, callSid: { type: 'string' }, name: NULLABLE_STRING, status: { type: 'string' } },
      additionalProperties: true,
    },
    ...errorResponses(404, 415, 502, 503),
  },
} as const;

const endConferenceSchema = {
  summary: 'End a conference now (once: Twilio UpdateConference Status=completed)',
  params: {
    type: 'object',
    required: ['ConferenceSid'],
    properties: { ConferenceSid: { type: 'string', pattern: SID_PATTERNS.conference.source } },
  },
  response: {
    200: {
      description: 'The decision and what Twilio answered (also kept in the conference audit)',
      type: 'object',
      properties: {
        scope: { type: 'string' },
        scopeKind: { type: 'string', enum: ['conference', 'stream'] },
        result: { type: 'string', enum: ['completed', 'already-ended', 'not-found', 'failed', 'dry-run', 'suppressed'] },
        httpStatus: { type: ['integer', 'null'] },
        twilioCode: { type: ['integer', 'null'] },
        status: NULLABLE_STRING,
        error: NULLABLE_STRING,
      },
      additionalProperties: true,
    },
    ...errorResponses(404, 415, 502, 503),
  },
} as const;

const listStreamsSchema = {
  summary: 'The live streams of this gateway (with REDIS_URL: of every process sharing it)',
  response: {
    200: {
      description: 'Streams whose socket is open here, then streams requested from Twilio that have not connected yet',
      type: 'object',
      properties: {
        streams: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              streamSid: { type: 'string' },
              callSid: { type: 'string' },
              accountSid: NULLABLE_STRING,
              conferenceSid: NULLABLE_STRING,
              tracks: { type: 'array', items: { type: 'string', enum: ['inbound', 'outbound'] } },
              startedAt: { type: ['string', 'null'], format: 'date-time' },
              frames: { type: 'integer', description: 'media frames received so far' },
              lost: { type: 'integer', description: 'media frames missing from the wire so far (sequence-number gaps)' },
              state: { type: 'string', enum: ['streaming', 'pending'] },
              name: NULLABLE_STRING,
              origin: NULLABLE_STRING,
              lastCallback: NULLABLE_STRING,
              error: NULLABLE_STRING,
              owner: { type: 'string', description: 'with REDIS_URL: the process holding the stream (every process\'s streams are listed)' },
              levels: {
                type: 'object',
                description: 'per track, its recent level in dBFS (about 100 ms of media; null before its first frame)',
                properties: { inbound: { type: ['number', 'null'] }, outbound: { type: ['number', 'null'] } },
              },
            },
            additionalProperties: true,
          },
        },
      },
    },
    ...errorResponses(),
  },
} as const;

interface CreateStreamBody {
  track?: StreamTrack;
  name?: string;
  conferenceSid?: string;
  parameters?: Record<string, string>;
}

/** A `GatewayParts.routes` entry that registers the admin API. */
export function adminRoutes(opts: AdminRoutesOptions): (app: FastifyInstance, gateway: Gateway) => void {
  return (app, gateway) => {
    app.register(
      async (scope) => {
        scope.addHook('onRequest', adminAccess(gateway, { adminToken: gateway.config.adminToken, metrics: gateway.metrics }));
        scope.addHook('onRoute', refuseUnknownQuery);
        acceptEmptyJson(scope);
        scope.setErrorHandler(sendRouteError);
        // Before any route, so the OpenAPI document sees them all (openapi.ts).
        const addOpenApiRoute = await registerOpenApi(scope);
        registerRoutes(scope, gateway, opts);
        for (const extend of opts.extensions ?? []) extend(scope, gateway);
        addOpenApiRoute();
      },
      { prefix: ADMIN_PREFIX },
    );
  };
}

function registerRoutes(scope: FastifyInstance, gateway: Gateway, opts: AdminRoutesOptions): void {
  const { starter, endConference } = opts;

  scope.post<{ Params: { CallSid: string }; Body: CreateStreamBody }>(
    '/calls/:CallSid/streams',
    {
      schema: createStreamSchema,
      // An empty POST (no body at all) means "all defaults".
      preValidation: async (req) => {
        if (req.body === undefined) req.body = {};
      },
    },
    async (req, reply) => {
      const body = req.body;
      for (const key of Object.keys(body.parameters ?? {})) {
        if (RESERVED_PARAMETERS.includes(key)) throw new FieldError(`parameters.${key}`, `parameters.${key} is reserved: the gateway sets it`);
      }
      const entry = await starter.start(req.params.CallSid, body, 'admin');
      return reply.code(201).send({
        streamSid: entry.streamSid,
        callSid: entry.callSid,
        name: entry.name,
        conferenceSid: entry.conferenceSid,
        track: entry.track,
        status: entry.status,
        url: starter.mediaUrl,
      });
    },
  );

  scope.delete<{ Params: { CallSid: string; nameOrSid: string } }>(
    '/calls/:CallSid/streams/:nameOrSid',
    { schema: stopStreamSchema },
    async (req) => {
      const resource = await starter.stop(req.params.CallSid, req.params.nameOrSid);
      return { streamSid: resource.sid, callSid: req.params.CallSid, name: resource.name, status: resource.status };
    },
  );

  scope.post<{ Params: { ConferenceSid: string } }>('/conferences/:ConferenceSid/end', { schema: endConferenceSchema }, async (req) => {
    return endConference(req.params.ConferenceSid, 'admin');
  });

  const transcription = gateway.sinkFactories.find((f) => f.name === 'transcription');
  const statusOf = (streamSid: string) => transcription?.status?.(streamSid) ?? null;
  scope.get('/streams', { schema: listStreamsSchema }, async () => {
    const streams = listStreams(gateway.registry, starter, statusOf, opts.levels);
    if (opts.peerStreams === undefined) return { streams };
    // A stream this process still lists as pending may be live on another one. One Twilio
    // reported started (its callback may reach any process) is listed by the process holding
    // its socket, from the directory: here it would be a copy, or a ghost once it ended there.
    const peers = await opts.peerStreams();
    const elsewhere = new Set(peers.map((s) => s.streamSid));
    const pendingHere = (s: LiveStream) => !elsewhere.has(s.streamSid) && starter.get(s.streamSid)?.status !== 'started';
    const mine = streams.filter((s) => s.state === 'streaming' || pendingHere(s)).map((s) => ({ ...s, owner: opts.processId }));
    return { streams: [...mine, ...peers] };
  });
}

/**
 * The live streams: every started session on this gateway, then every stream the gateway
 * asked Twilio for that has not connected here (yet).
 */
export function listStreams(
  registry: SessionRegistry,
  starter: StreamStarter | null,
  transcriptionOf: (streamSid: string) => LiveStream['transcription'] = () => null,
  levels: LevelSource = () => null,
): LiveStream[] {
  const out: LiveStream[] = [];
  const seen = new Set<string>();
  for (const s of registry.sessions) {
    const info = s.info;
    if (s.state !== STATE.STARTED || info === null) continue;
    const tracked = starter?.get(info.streamSid);
    const summary = s.summary();
    seen.add(info.streamSid);
    out.push({
      streamSid: info.streamSid,
      callSid: info.callSid,
      accountSid: info.accountSid,
      conferenceSid: info.conferenceSid,
      tracks: [...info.tracks],
      startedAt: new Date(info.startedAtMs).toISOString(),
      frames: summary.frames,
      lost: summary.lost,
      state: 'streaming',
      name: tracked?.name ?? null,
      origin: tracked?.origin ?? null,
      lastCallback: tracked?.lastCallback ?? null,
      error: tracked?.error ?? null,
      transcription: transcriptionOf(info.streamSid),
      levels: levels(info.streamSid) ?? {},
    });
  }
  if (starter === null) return out;
  for (const e of starter.active()) {
    if (seen.has(e.streamSid)) continue;
    out.push({
      streamSid: e.streamSid,
      callSid: e.callSid,
      accountSid: starter.accountSid,
      conferenceSid: e.conferenceSid,
      tracks: e.track === null ? [] : TRACKS_OF[e.track],
      startedAt: null,
      frames: 0,
      lost: 0,
      state: 'pending',
      name: e.name,
      origin: e.origin,
      lastCallback: e.lastCallback,
      error: e.error,
      transcription: null,
      levels: {},
    });
  }
  return out;
}

/**
 * Makes a route's querystring schema name every parameter it takes (none, when it has no
 * schema): fastify's ajv would otherwise drop unknown ones silently (removeAdditional).
 */
function refuseUnknownQuery(route: RouteOptions): void {
  const schema = (route.schema ??= {}) as { querystring?: { type?: string; properties?: Record<string, unknown>; propertyNames?: unknown } };
  const query = (schema.querystring ??= { type: 'object', properties: {} });
  const names = Object.keys(query.properties ?? {});
  // ajv wants a non-empty enum; `false` refuses every name.
  query.propertyNames = names.length === 0 ? false : { enum: names };
}

/**
 * Without ADMIN_TOKEN, state-changing requests must say `Content-Type: application/json`
 * (admin-access.ts), also those that have nothing to send: an empty JSON body means "no body".
 */
function acceptEmptyJson(scope: FastifyInstance): void {
  const parse = scope.getDefaultJsonParser('error', 'error');
  scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') done(null, undefined);
    else parse(req, body as string, done);
  });
}

export { isLoopback } from './admin-access.js';
