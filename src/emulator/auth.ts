/**
 * REST credentials the emulator accepts (docs/twilio-protocol.md §7.1): HTTP Basic with the
 * AccountSid and AuthToken, or with an API key SID (SK…) and its secret registered with the
 * Sim. Secrets are compared in constant time and never logged.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { assertSid, newSid } from '../twilio/sids.js';

export class Credentials {
  readonly accountSid: string;
  readonly authToken: string;
  readonly #keys = new Map<string, string>();

  constructor(accountSid: string, authToken: string, apiKeys: readonly { sid: string; secret: string }[] = []) {
    this.accountSid = assertSid('account', accountSid, 'accountSid');
    if (authToken === '') throw new TypeError('authToken must not be empty');
    this.authToken = authToken;
    for (const k of apiKeys) this.addApiKey(k.sid, k.secret);
  }

  /** Registers an API key; generates the SID and/or secret when not given. */
  addApiKey(sid?: string, secret?: string): { sid: string; secret: string } {
    const key = { sid: sid === undefined ? newSid('apiKey') : assertSid('apiKey', sid, 'apiKey.sid'), secret: secret ?? randomBytes(16).toString('hex') };
    if (key.secret === '') throw new TypeError('API key secret must not be empty');
    this.#keys.set(key.sid, key.secret);
    return key;
  }

  /** True when `user:password` is the account's token or a registered API key. */
  check(user: string, password: string): boolean {
    if (user === this.accountSid) return same(password, this.authToken);
    const secret = this.#keys.get(user);
    return secret !== undefined && same(password, secret);
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
