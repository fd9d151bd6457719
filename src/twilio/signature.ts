/**
 * X-Twilio-Signature (twilio-protocol.md §8): HMAC-SHA1 keyed by the auth token over the URL
 * Twilio called followed by the POST form parameters sorted by name (byte order), each name
 * immediately followed by its value; standard base64.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureParams = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The exact string Twilio signs for `url` and form `params`. */
export function signaturePayload(url: string, params: SignatureParams = {}): string {
  let data = url;
  const names = Object.keys(params).sort(byteOrder);
  for (const name of names) {
    const value = params[name];
    if (value === undefined) continue;
    if (typeof value === 'string') {
      data += name + value;
    } else {
      // twilio-node: repeated names are de-duplicated and sorted, then appended one by one.
      for (const v of [...new Set(value)].sort(byteOrder)) data += name + v;
    }
  }
  return data;
}

export function computeSignature(authToken: string, url: string, params: SignatureParams = {}): string {
  return createHmac('sha1', authToken).update(signaturePayload(url, params), 'utf8').digest('base64');
}

/** Constant-time comparison of two base64 signatures. */
export function signaturesEqual(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The URL variants Twilio may have signed for one public URL: with the port removed and with
 * the default port added (twilio-node validateRequest accepts either), as twilio-node does.
 */
export function urlVariants(url: string): string[] {
  const out = new Set<string>([url]);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [...out];
  }
  const withoutPort = new URL(url);
  withoutPort.port = '';
  out.add(withoutPort.toString());
  if (parsed.port === '') {
    // WHATWG URL drops a default port, so splice it into the string by hand.
    const port = parsed.protocol === 'https:' || parsed.protocol === 'wss:' ? '443' : '80';
    const auth = parsed.username ? `${parsed.username}${parsed.password ? ':' + parsed.password : ''}@` : '';
    out.add(`${parsed.protocol}//${auth}${parsed.hostname}:${port}${parsed.pathname}${parsed.search}`);
    // twilio-node adds :80 for every non-https scheme, wss included.
    if (parsed.protocol === 'wss:') out.add(`${parsed.protocol}//${auth}${parsed.hostname}:80${parsed.pathname}${parsed.search}`);
  }
  return [...out];
}

/** True when `signature` matches `url` (or a port variant of it) with `params`. */
export function validateSignature(
  authToken: string,
  signature: string | undefined,
  url: string,
  params: SignatureParams = {},
): boolean {
  if (signature === undefined || signature === '') return false;
  for (const candidate of urlVariants(url)) {
    if (signaturesEqual(computeSignature(authToken, candidate, params), signature)) return true;
  }
  return false;
}

/**
 * The URLs a Media Streams upgrade to `path` may have been signed over: the `wss://` form of
 * the public origin plus the path, with and without a trailing slash (twilio-protocol.md §8.4).
 */
export function mediaUpgradeUrls(publicUrl: string, path: string): string[] {
  const origin = new URL(publicUrl);
  const scheme = origin.protocol === 'http:' || origin.protocol === 'ws:' ? 'ws:' : 'wss:';
  // Twilio only dials wss://, but a local emulator or test may dial ws:// over plain HTTP.
  const schemes = scheme === 'wss:' ? ['wss:'] : ['wss:', 'ws:'];
  const base = origin.pathname.replace(/\/+$/, '');
  const bare = (base + '/' + path.replace(/^\/+/, '')).replace(/\/+$/, '');
  const urls: string[] = [];
  for (const s of schemes) {
    urls.push(`${s}//${origin.host}${bare}`, `${s}//${origin.host}${bare}/`);
  }
  return urls;
}

/** Validates an upgrade's signature over every URL Twilio may have signed (empty params). */
export function validateUpgradeSignature(authToken: string, signature: string | undefined, publicUrl: string, path: string): boolean {
  for (const url of mediaUpgradeUrls(publicUrl, path)) {
    if (validateSignature(authToken, signature, url)) return true;
  }
  return false;
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
