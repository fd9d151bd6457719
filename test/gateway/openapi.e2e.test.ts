/**
 * `GET /v1/openapi.json` on a real gateway: a valid OpenAPI 3.1 document (checked against the
 * specification's JSON Schema), listing exactly the `/v1` routes fastify registered, with the
 * schemas those routes validate with and their error bodies, behind the same access rule as
 * the rest of `/v1`.
 */
import { request } from 'node:http';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { RouteOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/events.js';
import { loadConfig } from '../../src/gateway/config.js';
import { restEndConference } from '../../src/gateway/control/conference-end.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { transcriptsSse } from '../../src/gateway/control/transcripts-sse.js';
import { restClientFromConfig, twilioControl } from '../../src/gateway/control/twilio-wiring.js';
import { SID_PATTERNS } from '../../src/twilio/sids.js';
import { startTestGateway, TEST_ENV, type TestGateway } from '../helpers/gateway.js';
import { captureLog } from '../helpers/log.js';

interface Operation {
  parameters?: { name: string; in: string; schema: { pattern?: string } }[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown>; required?: string[] } }> }>;
  summary?: string;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** A gateway with the control plane as the app builds it, and every route fastify registers recorded. */
async function start(env: Record<string, string> = {}): Promise<{ gw: TestGateway; routes: RouteOptions[] }> {
  const captured = captureLog();
  const config = loadConfig({ ...TEST_ENV, ...env });
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const bus = new EventBus(captured.log);
  const client = restClientFromConfig(config, captured.log, metrics.observeTwilio);
  const twilio = twilioControl({ config, log: captured.log, bus, client, endConference: restEndConference(client, captured.log), adminExtensions: [transcriptsSse] });
  const routes: RouteOptions[] = [];
  const collect = (app: Parameters<(typeof twilio.routes)[number]>[0]) => app.addHook('onRoute', (r) => void routes.push(r));
  gw = await startTestGateway(env, { metrics, bus, checkStart: twilio.checkStart, routes: [collect, ...twilio.routes] }, captured);
  return { gw, routes };
}

/** fastify's `/calls/:CallSid/streams` is OpenAPI's `/calls/{CallSid}/streams`. */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

/** fetch() will not send a foreign Host header; node:http will (a DNS-rebinding page's request). */
function statusWithHost(http: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${http}/v1/openapi.json`, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

async function fetchDocument(http: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${http}/v1/openapi.json`, { headers });
}

describe('GET /v1/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const { gw } = await start();
    const res = await fetchDocument(gw.http);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = (await res.json()) as Document;
    expect(doc.openapi).toBe('3.1.0');
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    // The validator does reject a broken document (so the check above can fail).
    const broken = structuredClone(doc) as unknown as Record<string, unknown>;
    delete broken.info;
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('lists every registered /v1 route, and nothing else', async () => {
    const { gw, routes } = await start();
    const doc = (await (await fetchDocument(gw.http)).json()) as Document;
    const registered = new Set<string>();
    for (const r of routes) {
      if (!r.url.startsWith('/v1/')) continue;
      for (const m of [r.method].flat()) if (m !== 'HEAD') registered.add(`${m.toLowerCase()} ${openApiPath(r.url)}`);
    }
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)));
    expect([...documented].sort()).toEqual([...registered].sort());
    // The routes docs/design.md names are among them.
    const v1 = ['post /calls/{CallSid}/streams', 'delete /calls/{CallSid}/streams/{nameOrSid}', 'post /conferences/{ConferenceSid}/end', 'get /streams', 'get /transcripts', 'get /openapi.json'];
    for (const r of v1.map((x) => x.replace(' /', ' /v1/'))) {
      expect(documented, r).toContain(r);
    }
  });

  it('carries the schemas the handlers validate with, and every error body', async () => {
    const { gw } = await start();
    const doc = (await (await fetchDocument(gw.http)).json()) as Document;
    const create = doc.paths['/v1/calls/{CallSid}/streams']!.post!;
    expect(create.parameters?.find((p) => p.name === 'CallSid')).toMatchObject({ in: 'path', schema: { pattern: SID_PATTERNS.call.source } });
    expect(JSON.stringify(create.requestBody)).toContain('"inbound_track"');
    const sse = doc.paths['/v1/transcripts']!.get!;
    expect(sse.parameters?.map((p) => p.name).sort()).toEqual(['callSid', 'conferenceSid']);
    expect(Object.keys(sse.responses['200']!.content!)).toEqual(['text/event-stream']);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.summary, `${method} ${path}`).toBeTruthy();
        for (const status of ['400', '401', '403', '429', '500']) {
          const body = op.responses[status]?.content?.['application/json']?.schema;
          expect(body?.required, `${method} ${path} ${status}`).toEqual(['error', 'message']);
        }
        if (method !== 'get') for (const status of ['404', '415', '502', '503']) expect(op.responses[status], `${method} ${path} ${status}`).toBeDefined();
      }
    }
  });

  it('answers the error shapes it documents', async () => {
    const { gw } = await start();
    const doc = (await (await fetchDocument(gw.http)).json()) as Document;
    const errorSchema = doc.paths['/v1/calls/{CallSid}/streams']!.post!.responses['400']!.content!['application/json']!.schema;
    // A bad CallSid: 400 invalid_request with the field.
    const bad = await fetch(`${gw.http}/v1/calls/nope/streams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: 'invalid_request', field: 'CallSid' });
    for (const key of Object.keys(body)) expect(Object.keys(errorSchema.properties!)).toContain(key);
    // No Twilio credentials: 503 twilio_not_configured.
    const unconfigured = await fetch(`${gw.http}/v1/calls/CA${'0'.repeat(32)}/streams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(unconfigured.status).toBe(503);
    expect(await unconfigured.json()).toMatchObject({ error: 'twilio_not_configured' });
  });

  it('is behind the /v1 access rule: bearer token when ADMIN_TOKEN is set, loopback Host otherwise', async () => {
    const { gw } = await start({ ADMIN_TOKEN: 'openapi-test-token' });
    expect((await fetchDocument(gw.http)).status).toBe(401);
    expect((await fetchDocument(gw.http, { authorization: 'Bearer openapi-test-token' })).status).toBe(200);
    await gw.close();
    const local = await start();
    expect(await statusWithHost(local.gw.http, 'attacker.example')).toBe(403);
    expect((await fetchDocument(local.gw.http)).status).toBe(200);
  });
});
