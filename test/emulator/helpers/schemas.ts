/**
 * Response schemas from the OpenAPI extract (twilio-api-v2010-extract.json), compiled with
 * ajv + ajv-formats. `date-time-rfc-2822` gets a strict format check; `uri` accepts URI
 * references because the 2010 API (and the spec's own examples) give relative URIs; formats
 * that describe no string shape (uri-map, http-method, …) are ignored.
 *
 * One patch: the spec's `reason_conference_ended` is a `$ref` to a non-nullable enum, yet its
 * description ("When a conference is in progress, will be `null`") and the spec's own
 * `fetchValidRegionInProgress` example say null while running; it is made nullable here.
 * exampleBodies() exposes the spec's examples so a test can show the patched schemas accept
 * every one of them.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

/** A copy of ../shared/docs/twilio-api-v2010-extract.json, vendored so a clean clone has it. */
const EXTRACT = fileURLToPath(new URL('../../fixtures/twilio-api/twilio-api-v2010-extract.json', import.meta.url));

/** `Thu, 30 Jul 2015 20:00:00 +0000` (two-digit day, as REST dates are). */
export const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} \+0000$/;

interface Operation {
  operationId: string;
  responses: Record<string, { content?: Record<string, { schema: unknown; examples?: Record<string, { value: unknown }> }> }>;
}

type AddFormats = (ajv: Ajv) => Ajv;

interface Components {
  schemas: Record<string, { properties?: Record<string, unknown> }>;
}

export interface Validators {
  validator(operationId: string): ValidateFunction;
  statusOf(operationId: string): number;
  /** The response examples the spec gives for an operation. */
  exampleBodies(operationId: string): unknown[];
}

export function loadValidators(): Validators {
  const doc = JSON.parse(readFileSync(EXTRACT, 'utf8')) as {
    paths: Record<string, Record<string, Operation>>;
    components: Components;
  };
  const conference = doc.components.schemas['api.v2010.account.conference']!.properties!;
  conference.reason_conference_ended = { oneOf: [conference.reason_conference_ended, { type: 'null' }] };
  const ajv = new Ajv({ strict: false, allErrors: true });
  // ajv-formats ships CJS with a default export; under NodeNext the namespace may wrap it.
  const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as unknown as AddFormats;
  addFormats(ajv);
  ajv.addFormat('date-time-rfc-2822', RFC2822);
  ajv.addFormat('uri', (s: string) => /^(\/|[a-z][a-z0-9+.-]*:)/i.test(s));
  for (const f of ['uri-map', 'http-method', 'endpoint', 'phone-number', 'date-time-rfc-2822-or-iso']) ajv.addFormat(f, true);
  const byId = new Map<string, { schema: unknown; status: number; examples: unknown[] }>();
  for (const methods of Object.values(doc.paths)) {
    for (const op of Object.values(methods)) {
      if (typeof op !== 'object' || op === null || !('operationId' in op)) continue;
      const [status, response] = Object.entries(op.responses)[0]!;
      const json = response.content!['application/json']!;
      const examples = Object.values(json.examples ?? {}).map((e) => e.value);
      byId.set(op.operationId, { schema: json.schema, status: Number(status), examples });
    }
  }
  const cache = new Map<string, ValidateFunction>();
  return {
    validator(operationId) {
      let v = cache.get(operationId);
      if (v === undefined) {
        const entry = byId.get(operationId);
        if (entry === undefined) throw new Error(`no operation ${operationId} in the extract`);
        v = ajv.compile({ ...(entry.schema as object), components: doc.components });
        cache.set(operationId, v);
      }
      return v;
    },
    statusOf(operationId) {
      return byId.get(operationId)!.status;
    },
    exampleBodies(operationId) {
      return byId.get(operationId)!.examples;
    },
  };
}
