/**
 * Twilio's form encoding (application/x-www-form-urlencoded): what its webhooks post and what
 * its REST API reads. A name given more than once keeps every value, in order: the signature
 * covers each one (src/twilio/signature.ts).
 */

/** A parsed form: repeated names keep every value, in order. */
export type FormBody = Record<string, string | string[]>;

/**
 * Parses `a=1&b=2&a=3` into `{ a: ['1', '3'], b: '2' }`. The result has no prototype, so
 * `__proto__` and `constructor` are names like any other.
 */
export function parseForm(body: string | URLSearchParams): FormBody {
  const out: FormBody = Object.create(null) as FormBody;
  for (const [name, value] of typeof body === 'string' ? new URLSearchParams(body) : body) {
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (typeof prev === 'string') out[name] = [prev, value];
    else prev.push(value);
  }
  return out;
}
