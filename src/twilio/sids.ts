/**
 * Twilio SID formats (docs/twilio-protocol.md §10): two uppercase letters and 32 hex digits.
 * Every SID taken from the wire is checked here before it reaches a file path or a URL.
 */
import { InvalidInputError } from '../errors.js';

export const SID_PATTERNS = {
  account: /^AC[0-9a-fA-F]{32}$/,
  call: /^CA[0-9a-fA-F]{32}$/,
  conference: /^CF[0-9a-fA-F]{32}$/,
  stream: /^MZ[0-9a-fA-F]{32}$/,
  apiKey: /^SK[0-9a-fA-F]{32}$/,
} as const;

export type SidKind = keyof typeof SID_PATTERNS;

const PREFIX: Record<SidKind, string> = { account: 'AC', call: 'CA', conference: 'CF', stream: 'MZ', apiKey: 'SK' };

export function isSid(kind: SidKind, value: unknown): value is string {
  return typeof value === 'string' && SID_PATTERNS[kind].test(value);
}

/** Returns `value` when it is a valid SID of `kind`; throws InvalidInputError otherwise. */
export function assertSid(kind: SidKind, value: unknown, field: string = kind): string {
  if (!isSid(kind, value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : typeof value;
    throw new InvalidInputError(`${field} must match ${SID_PATTERNS[kind].source}, got ${shown}`);
  }
  return value;
}

/** A fresh random SID of `kind` (lowercase hex, as Twilio issues them). */
export function newSid(kind: SidKind): string {
  const hex = new Uint8Array(16);
  crypto.getRandomValues(hex);
  let s = PREFIX[kind];
  for (let i = 0; i < 16; i++) s += hex[i]!.toString(16).padStart(2, '0');
  return s;
}
