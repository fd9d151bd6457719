import { createHash } from 'node:crypto';
import fc from 'fast-check';
import twilio from 'twilio';
import { describe, expect, it } from 'vitest';
import {
  computeSignature,
  mediaUpgradeUrls,
  signaturePayload,
  urlVariants,
  validateSignature,
  validateUpgradeSignature,
} from '../../src/twilio/signature.js';

const TOKEN = '12345';
const A32 = 'a'.repeat(32);

/** The four vectors of docs/twilio-protocol.md §8.1. */
const VECTORS: { url: string; params: Record<string, string>; signature: string }[] = [
  {
    url: 'https://example.com/myapp.php?foo=1&bar=2',
    params: { CallSid: 'CA1234567890ABCDE', Caller: '+14158675310', Digits: '1234', From: '+14158675310', To: '+18005551212' },
    signature: 'L/OH5YylLD5NRKLltdqwSvS0BnU=',
  },
  { url: 'wss://gw.example.com/media', params: {}, signature: 'EaUrJnXeOdQbckRcqHzor+8Gtsk=' },
  { url: 'wss://gw.example.com/media/', params: {}, signature: 'ecRPTWAi5CQuAiLbSzs00z3K3yM=' },
  {
    url: 'https://gw.example.com/twilio/stream-status',
    params: {
      AccountSid: `AC${A32}`,
      CallSid: `CA${A32}`,
      StreamSid: `MZ${A32}`,
      StreamName: `MZ${A32}`,
      StreamEvent: 'stream-started',
      Timestamp: '2024-11-29T00:09:39.602648368Z',
    },
    signature: '9w7oRY9rxW2p90/Sp0PObirvXTg=',
  },
];

describe('computeSignature', () => {
  it.each(VECTORS)('matches the documented vector for $url', ({ url, params, signature }) => {
    expect(computeSignature(TOKEN, url, params)).toBe(signature);
    expect(validateSignature(TOKEN, signature, url, params)).toBe(true);
    expect(twilio.getExpectedTwilioSignature(TOKEN, url, params)).toBe(signature);
  });

  it('builds the documented signed string: URL then sorted name+value pairs', () => {
    const v = VECTORS[0]!;
    expect(signaturePayload(v.url, v.params)).toBe(
      'https://example.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675310Digits1234From+14158675310To+18005551212',
    );
  });

  it('sorts names by byte order, uppercase before lowercase', () => {
    expect(signaturePayload('u', { b: '1', B: '2', a: '3', A: '4' })).toBe('uA4B2a3b1');
  });

  it('de-duplicates and sorts repeated values as twilio-node does', () => {
    const params = { To: ['b', 'a', 'b'], From: 'x' };
    expect(signaturePayload('u', params)).toBe('uFromxToaTob');
    expect(computeSignature(TOKEN, 'https://e.com/x', params)).toBe(
      twilio.getExpectedTwilioSignature(TOKEN, 'https://e.com/x', { To: ['b', 'a', 'b'], From: 'x' }),
    );
  });

  it('signs the §8.2 JSON-body URL (bodySHA256 in the query, no params)', () => {
    const body = '{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}';
    const hash = createHash('sha256').update(body, 'utf8').digest('hex');
    expect(hash).toBe('5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9');
    const url = `https://example.com/myapp?bodySHA256=${hash}`;
    expect(computeSignature(TOKEN, url)).toBe('hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=');
    expect(twilio.validateRequestWithBody(TOKEN, 'hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=', url, body)).toBe(true);
  });
});

describe('validateSignature', () => {
  const v = VECTORS[0]!;

  it('rejects a wrong token, a changed param, an extra param, a missing or empty header', () => {
    expect(validateSignature('54321', v.signature, v.url, v.params)).toBe(false);
    expect(validateSignature(TOKEN, v.signature, v.url, { ...v.params, Digits: '1235' })).toBe(false);
    expect(validateSignature(TOKEN, v.signature, v.url, { ...v.params, Extra: '' })).toBe(false);
    expect(validateSignature(TOKEN, undefined, v.url, v.params)).toBe(false);
    expect(validateSignature(TOKEN, '', v.url, v.params)).toBe(false);
    expect(validateSignature(TOKEN, v.signature.slice(0, -1), v.url, v.params)).toBe(false);
  });

  it('rejects a different URL: path, query, scheme', () => {
    expect(validateSignature(TOKEN, v.signature, 'https://example.com/myapp.php?foo=1&bar=3', v.params)).toBe(false);
    expect(validateSignature(TOKEN, v.signature, 'https://example.com/other.php?foo=1&bar=2', v.params)).toBe(false);
    expect(validateSignature(TOKEN, v.signature, 'http://example.com/myapp.php?foo=1&bar=2', v.params)).toBe(false);
  });

  it('accepts a signature over the URL without its port when configured with one (voice over HTTPS)', () => {
    const sig = computeSignature(TOKEN, 'https://gw.example.com/twilio/conf?x=1', { A: 'b' });
    expect(validateSignature(TOKEN, sig, 'https://gw.example.com:8443/twilio/conf?x=1', { A: 'b' })).toBe(true);
    expect(validateSignature(TOKEN, sig, 'https://gw.example.com:443/twilio/conf?x=1', { A: 'b' })).toBe(true);
  });

  it('accepts a signature over the URL with the default port added (SMS, plain HTTP)', () => {
    const https = computeSignature(TOKEN, 'https://gw.example.com:443/cb', {});
    expect(validateSignature(TOKEN, https, 'https://gw.example.com/cb')).toBe(true);
    const http = computeSignature(TOKEN, 'http://gw.example.com:80/cb', {});
    expect(validateSignature(TOKEN, http, 'http://gw.example.com/cb')).toBe(true);
  });

  it('accepts an explicit non-default port that Twilio kept, but not another port', () => {
    const sig = computeSignature(TOKEN, 'http://gw.example.com:8080/cb', {});
    expect(validateSignature(TOKEN, sig, 'http://gw.example.com:8080/cb')).toBe(true);
    expect(validateSignature(TOKEN, sig, 'http://gw.example.com:8081/cb')).toBe(false);
    expect(validateSignature(TOKEN, sig, 'http://gw.example.com/cb')).toBe(false);
  });

  it('keeps the query exactly as sent when adding or removing a port', () => {
    // WHATWG URL would rewrite ' to %27 in the query; Twilio signs the characters it sent.
    const signed = "https://gw.example.com/cb?name='o'&x=a%20b";
    const sig = computeSignature(TOKEN, signed, {});
    expect(validateSignature(TOKEN, sig, "https://gw.example.com:8443/cb?name='o'&x=a%20b")).toBe(true);
    const withPort = computeSignature(TOKEN, "https://gw.example.com:443/cb?name='o'", {});
    expect(validateSignature(TOKEN, withPort, "https://gw.example.com/cb?name='o'")).toBe(true);
  });

  it('lists the URL itself among its variants, unchanged', () => {
    const url = "https://gw.example.com:8443/a/b?c='d'";
    expect(urlVariants(url)).toContain(url);
    expect(urlVariants(url)).toContain("https://gw.example.com/a/b?c='d'");
  });
});

describe('validateUpgradeSignature', () => {
  const bare = VECTORS[1]!.signature;
  const slash = VECTORS[2]!.signature;

  it('accepts the wss URL with and without a trailing slash', () => {
    expect(validateUpgradeSignature(TOKEN, bare, 'https://gw.example.com', '/media')).toBe(true);
    expect(validateUpgradeSignature(TOKEN, slash, 'https://gw.example.com', '/media')).toBe(true);
    expect(validateUpgradeSignature(TOKEN, bare, 'https://gw.example.com/', 'media')).toBe(true);
    expect(validateUpgradeSignature(TOKEN, slash, 'https://gw.example.com/', 'media/')).toBe(true);
  });

  it('accepts a signature over the wss URL with :443 when the public URL has no port, and vice versa', () => {
    const withPort = computeSignature(TOKEN, 'wss://gw.example.com:443/media', {});
    expect(validateUpgradeSignature(TOKEN, withPort, 'https://gw.example.com', '/media')).toBe(true);
    expect(validateUpgradeSignature(TOKEN, bare, 'https://gw.example.com:443', '/media')).toBe(true);
  });

  it('rejects a signature over the https URL, another host, another path, or another token', () => {
    const httpsSig = computeSignature(TOKEN, 'https://gw.example.com/media', {});
    expect(validateUpgradeSignature(TOKEN, httpsSig, 'https://gw.example.com', '/media')).toBe(false);
    expect(validateUpgradeSignature(TOKEN, bare, 'https://gw2.example.com', '/media')).toBe(false);
    expect(validateUpgradeSignature(TOKEN, bare, 'https://gw.example.com', '/media2')).toBe(false);
    expect(validateUpgradeSignature('other', bare, 'https://gw.example.com', '/media')).toBe(false);
    expect(validateUpgradeSignature(TOKEN, undefined, 'https://gw.example.com', '/media')).toBe(false);
  });

  it('keeps a public base path and a non-default port', () => {
    expect(mediaUpgradeUrls('https://gw.example.com:8443/base/', '/media')).toEqual([
      'wss://gw.example.com:8443/base/media',
      'wss://gw.example.com:8443/base/media/',
    ]);
  });

  it('also tries ws:// for a plain-HTTP public URL (local emulator)', () => {
    const urls = mediaUpgradeUrls('http://localhost:8080', '/media');
    expect(urls).toEqual(['wss://localhost:8080/media', 'wss://localhost:8080/media/', 'ws://localhost:8080/media', 'ws://localhost:8080/media/']);
    const sig = computeSignature(TOKEN, 'ws://localhost:8080/media', {});
    expect(validateUpgradeSignature(TOKEN, sig, 'http://localhost:8080', '/media')).toBe(true);
  });
});

describe('cross-check with twilio-node', () => {
  const scheme = fc.constantFrom('https', 'http', 'wss');
  const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
  const query = fc.option(fc.webQueryParameters(), { nil: undefined });
  const urlParts = fc.record({ scheme, host: fc.domain(), port, path: fc.webPath(), query });
  const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.]{0,11}$/);
  const value = fc.string({ unit: 'grapheme', maxLength: 24 });
  const params = fc.dictionary(name, fc.oneof(value, fc.array(value, { minLength: 1, maxLength: 3 })), { maxKeys: 8 });
  const token = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 });

  type Parts = { scheme: string; host: string; port: number | undefined; path: string; query: string | undefined };
  const build = (p: Parts, withPort: boolean): string =>
    `${p.scheme}://${p.host}${withPort && p.port !== undefined ? `:${p.port}` : ''}${p.path}${p.query === undefined ? '' : `?${p.query}`}`;

  it('accepts every signature twilio-node computes for the same URL and params', () => {
    fc.assert(
      fc.property(token, urlParts, params, (tok, parts, ps) => {
        const url = build(parts, true);
        const sig = twilio.getExpectedTwilioSignature(tok, url, ps);
        expect(validateSignature(tok, sig, url, ps)).toBe(true);
        expect(computeSignature(tok, url, ps)).toBe(sig);
      }),
      { numRuns: 300 },
    );
  });

  it('produces signatures that twilio-node validateRequest accepts', () => {
    fc.assert(
      fc.property(token, urlParts, params, (tok, parts, ps) => {
        const url = build(parts, true);
        expect(twilio.validateRequest(tok, computeSignature(tok, url, ps), url, ps)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('accepts what twilio-node accepts when Twilio dropped the configured port', () => {
    fc.assert(
      fc.property(token, urlParts, params, (tok, parts, ps) => {
        const configured = build(parts, true);
        const sig = twilio.getExpectedTwilioSignature(tok, build(parts, false), ps);
        expect(twilio.validateRequest(tok, sig, configured, ps)).toBe(true);
        expect(validateSignature(tok, sig, configured, ps)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects, like twilio-node, a signature made with another token or other params', () => {
    fc.assert(
      fc.property(token, urlParts, params, (tok, parts, ps) => {
        const url = build(parts, true);
        const wrongToken = twilio.getExpectedTwilioSignature(`${tok}x`, url, ps);
        expect(validateSignature(tok, wrongToken, url, ps)).toBe(false);
        const changed = { ...ps, ZZextra: 'v' };
        const sig = twilio.getExpectedTwilioSignature(tok, url, changed);
        expect(validateSignature(tok, sig, url, ps)).toBe(twilio.validateRequest(tok, sig, url, ps));
        expect(validateSignature(tok, sig, url, ps)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
