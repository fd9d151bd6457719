/**
 * How the admin API and the webhooks answer a failure: JSON bodies with a stable `error`
 * code, the offending field for bad input, and Twilio's own code for a refused REST call.
 *
 * | failure                                   | status | body                                         |
 * |-------------------------------------------|--------|----------------------------------------------|
 * | schema validation, bad JSON, InvalidInput | 400    | `{ error: 'invalid_request', field, message }` |
 * | body too large / wrong content type       | 413/415| `{ error: 'invalid_request', field: 'body', message }` |
 * | TwilioApiError with Twilio's 404          | 404    | `{ error: 'not_found', twilioCode, message, status: 404 }` |
 * | any other TwilioApiError                  | 502    | `{ error: 'twilio_error', twilioCode, message, status }` |
 * | TwilioTransportError / ResponseError      | 502    | `{ error: 'twilio_unreachable' / 'twilio_bad_response', twilioCode: null, message }` |
 * | no Twilio credentials                     | 503    | `{ error: 'twilio_not_configured', message }` |
 * | anything else                             | 500    | `{ error: 'internal', message: 'internal error' }` (logged) |
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidInputError } from '../../errors.js';
import { TwilioApiError, TwilioResponseError, TwilioTransportError } from '../../twilio/errors.js';
import { TwilioNotConfiguredError } from '../../errors.js';

/** An input error that knows which field it is about. */
export class FieldError extends InvalidInputError {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** The field a fastify validation error is about (`CallSid`, `track`, `parameters.foo`, …) and a message for it. */
export function validationProblem(err: FastifyError): { field: string; message: string } {
  const fallback = err.validationContext ?? 'body';
  const v = err.validation?.[0];
  if (v === undefined) return { field: fallback, message: err.message };
  const path = v.instancePath
    .split('/')
    .filter((p) => p !== '')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const p = v.params;
  // ajv puts the offending key of a `propertyNames` failure on the error itself.
  const badName = (v as { propertyName?: unknown }).propertyName ?? p.propertyName;
  const named = p.missingProperty ?? badName ?? p.additionalProperty;
  if (typeof named === 'string' && named !== '') path.push(named);
  const field = path.length > 0 ? path.join('.') : fallback;
  if (typeof badName === 'string') return { field, message: `${JSON.stringify(badName)} is not an accepted field name here` };
  return { field, message: err.message };
}

/** The error handler of the `/v1` and `/twilio` scopes. */
export function sendRouteError(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const fe = err as FastifyError;
  if (fe.validation !== undefined) {
    return reply.code(400).send({ error: 'invalid_request', ...validationProblem(fe) });
  }
  if (err instanceof FieldError) return reply.code(400).send({ error: 'invalid_request', field: err.field, message: err.message });
  if (err instanceof InvalidInputError) return reply.code(400).send({ error: 'invalid_request', message: err.message });
  if (err instanceof TwilioNotConfiguredError) return reply.code(503).send({ error: 'twilio_not_configured', message: err.message });
  if (err instanceof TwilioApiError) {
    req.log.warn({ operation: err.operation, status: err.status, twilioCode: err.twilioCode }, 'twilio refused the request');
    // Twilio does not know the call, stream or conference: the admin resource does not exist either.
    if (err.status === 404) return reply.code(404).send({ error: 'not_found', twilioCode: err.twilioCode, message: err.twilioMessage, status: 404 });
    return reply.code(502).send({ error: 'twilio_error', twilioCode: err.twilioCode, message: err.twilioMessage, status: err.status });
  }
  if (err instanceof TwilioTransportError) {
    req.log.warn({ operation: err.operation, failure: err.failure }, 'twilio unreachable');
    return reply.code(502).send({ error: 'twilio_unreachable', twilioCode: null, message: err.message });
  }
  if (err instanceof TwilioResponseError) {
    req.log.warn({ operation: err.operation, status: err.status }, 'unexpected twilio response');
    return reply.code(502).send({ error: 'twilio_bad_response', twilioCode: null, message: err.message });
  }
  // fastify's own 4xx: unparsable JSON, unsupported content type, body too large.
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) return reply.code(status).send({ error: 'invalid_request', field: 'body', message: err.message });
  req.log.error({ err }, 'request failed');
  return reply.code(500).send({ error: 'internal', message: 'internal error' });
}
