/**
 * Reading Twilio form parameters: required strings, enums, booleans, URLs, and the
 * ParameterN.Name/Value pairs of CreateStream. Bad values answer 400 with a Twilio body.
 */
import { badRequest, TWILIO_CODES } from './rest-errors.js';
import { param } from './http-util.js';

export type Params = Record<string, string | string[]>;

/** CreateStream accepts Parameter1 … Parameter99 (docs/twilio-protocol.md §4.1). */
export const MAX_CUSTOM_PARAMETERS = 99;

export function required(params: Params, name: string): string {
  const v = param(params, name);
  if (v === undefined || v === '') throw badRequest(TWILIO_CODES.invalidParameter, `Missing required parameter ${name} in the post body`);
  return v;
}

export function optional(params: Params, name: string): string | undefined {
  const v = param(params, name);
  return v === '' ? undefined : v;
}

export function oneOf<T extends string>(params: Params, name: string, allowed: readonly T[], fallback: T): T;
export function oneOf<T extends string>(params: Params, name: string, allowed: readonly T[]): T | undefined;
export function oneOf<T extends string>(params: Params, name: string, allowed: readonly T[], fallback?: T): T | undefined {
  const v = optional(params, name);
  if (v === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(v)) {
    throw badRequest(TWILIO_CODES.invalidParameter, `${name} must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}

/** Form booleans are `true`/`false` in any case. */
export function bool(params: Params, name: string): boolean | undefined {
  const v = optional(params, name);
  if (v === undefined) return undefined;
  const lower = v.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw badRequest(TWILIO_CODES.invalidParameter, `${name} must be true or false`);
}

/** An absolute URL with one of `schemes`; 21205 otherwise. */
export function absoluteUrl(value: string, name: string, schemes: readonly string[]): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw badRequest(TWILIO_CODES.invalidUrl, `${name} is not a valid URL: ${value}`);
  }
  if (!schemes.includes(u.protocol)) throw badRequest(TWILIO_CODES.invalidUrl, `${name} is not a valid URL: ${value}`);
  return value;
}

/** `ParameterN.Name` / `ParameterN.Value` pairs, N = 1..99, in N order; unnamed pairs are skipped. */
export function customParameters(params: Params): Record<string, string> {
  const out: Record<string, string> = {};
  for (let n = 1; n <= MAX_CUSTOM_PARAMETERS; n++) {
    const name = param(params, `Parameter${n}.Name`);
    if (name === undefined || name === '') continue;
    out[name] = param(params, `Parameter${n}.Value`) ?? '';
  }
  return out;
}

/** Page and PageSize of a list request (PageSize 1..1000, default 50). */
export function paging(params: Params): { page: number; pageSize: number } {
  const size = Number(optional(params, 'PageSize') ?? 50);
  const page = Number(optional(params, 'Page') ?? 0);
  if (!Number.isInteger(size) || size < 1 || size > 1000) throw badRequest(TWILIO_CODES.invalidParameter, 'PageSize must be an integer between 1 and 1000');
  if (!Number.isInteger(page) || page < 0) throw badRequest(TWILIO_CODES.invalidParameter, 'Page must be a non-negative integer');
  return { page, pageSize: size };
}
