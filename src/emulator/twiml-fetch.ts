/**
 * Requests Twilio makes to the user's application while running a call: the TwiML document
 * (voice URL, `<Redirect>`, `action`) and `<Play>` audio. Signed as every Twilio webhook is
 * (docs/twilio-protocol.md §8): POST signs the URL plus the sorted form parameters, GET the full URL
 * with the parameters in its query. Answers are bounded in size and time.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { computeSignature } from '../twilio/signature.js';
import type { HttpMethod } from './types.js';

export interface SignedRequest {
  url: string;
  method: HttpMethod;
  params: Record<string, string>;
  authToken: string;
  timeoutMs: number;
  maxBytes: number;
  tlsRejectUnauthorized: boolean;
  signal: AbortSignal;
}

export interface FetchAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** Twilio's HTTP retrieval failure (the request failed, timed out, or answered non-2xx). */
export class RetrievalError extends Error {
  readonly code = 11200;
  constructor(message: string) {
    super(message);
    this.name = 'RetrievalError';
  }
}

export function fetchSigned(req: SignedRequest): Promise<FetchAnswer> {
  let url = req.url;
  let body: string | null = null;
  let signature: string;
  if (req.method === 'GET') {
    const query = new URLSearchParams(req.params).toString();
    if (query !== '') url += (url.includes('?') ? '&' : '?') + query;
    signature = computeSignature(req.authToken, url);
  } else {
    body = new URLSearchParams(req.params).toString();
    signature = computeSignature(req.authToken, url, req.params);
  }
  return new Promise<FetchAnswer>((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return reject(new RetrievalError(`malformed URL ${url}`));
    }
    const send = target.protocol === 'https:' ? httpsRequest : target.protocol === 'http:' ? httpRequest : null;
    if (send === null) return reject(new RetrievalError(`unsupported scheme ${target.protocol}`));
    const headers: Record<string, string> = { 'X-Twilio-Signature': signature, 'User-Agent': 'TwilioProxy/1.1', Accept: '*/*' };
    if (body !== null) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const r = send(target, { method: req.method, headers, timeout: req.timeoutMs, signal: req.signal, rejectUnauthorized: req.tlsRejectUnauthorized });
    r.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > req.maxBytes) {
          res.destroy();
          reject(new RetrievalError(`answer larger than ${req.maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', (err) => reject(new RetrievalError(err.message)));
      res.on('end', () => {
        if (status < 200 || status > 299) return reject(new RetrievalError(`${url} answered HTTP ${status}`));
        resolve({ status, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) });
      });
    });
    r.on('timeout', () => r.destroy(new Error(`timed out after ${req.timeoutMs} ms`)));
    r.on('error', (err) => reject(new RetrievalError(err.message)));
    r.end(body ?? undefined);
  });
}
