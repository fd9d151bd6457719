/**
 * X-Twilio-Signature (docs/twilio-protocol.md §8): HMAC-SHA1 keyed by the auth token over the URL
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
 * The URL variants Twilio may have signed for one public URL: as given, with the port removed,
 * and with the default port added (twilio-node validateRequest accepts any of these). The port
 * is spliced in or out of the string: re-serialising through WHATWG `URL` would change what was
 * signed (an empty path becomes `/`, `'` in a query becomes `%27`).
 */
export function urlVariants(url: string): string[] {
  const parts = splitUrl(url);
  if (parts === null) return [url];
  const bare = parts.scheme + parts.userInfo + parts.host;
  const out = new Set<string>([url, bare + parts.rest]);
  if (parts.port === '') {
    const scheme = parts.scheme.toLowerCase();
    const secure = scheme === 'https://' || scheme === 'wss://';
    out.add(bare + (secure ? ':443' : ':80') + parts.rest);
    // twilio-node adds :80 for every non-https scheme, wss included.
    if (scheme === 'wss://') out.add(bare + ':80' + parts.rest);
  }
  return [...out];
}

interface UrlParts {
  /** `https://` */
  scheme: string;
  /** `user:pass@` or empty. */
  userInfo: string;
  host: string;
  /** `:8443` or empty. */
  port: string;
  /** Path, query and fragment, exactly as given. */
  rest: string;
}

/** Splits `scheme://authority` off a URL without normalising anything (as twilio-node 6.2 does). */
function splitUrl(url: string): UrlParts | null {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url);
  if (match === null) return null;
  const authority = match[2]!;
  const userInfoEnd = authority.lastIndexOf('@');
  const hostAndPort = authority.slice(userInfoEnd + 1);
  // A colon starts the port only after the closing bracket of an IPv6 literal.
  const portStart = hostAndPort.indexOf(':', hostAndPort.lastIndexOf(']') + 1);
  return {
    scheme: match[1]!,
    userInfo: authority.slice(0, userInfoEnd + 1),
    host: portStart === -1 ? hostAndPort : hostAndPort.slice(0, portStart),
    port: portStart === -1 ? '' : hostAndPort.slice(portStart),
    rest: url.slice(match[0].length),
  };
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
 * the public origin plus the path, with and without a trailing slash (docs/twilio-protocol.md §8.4).
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
