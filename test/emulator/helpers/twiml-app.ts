/**
 * A user's TwiML application as Twilio's samples write one: an HTTP server answering the
 * voice URL (and Redirect/action URLs) with TwiML, checking X-Twilio-Signature on every request
 * with the account's token, and recording what it was asked.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { validateSignature } from '../../../src/twilio/signature.js';

export interface TwimlRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  /** The signature matched the URL and parameters under the account's token. */
  signed: boolean;
}

/** TwiML text, a function of the request's parameters, or a file (audio for <Play>). */
export type TwimlAnswer = string | ((params: Record<string, string>) => string) | { contentType: string; body: Buffer };

export interface TwimlApp {
  /** http://127.0.0.1:port */
  origin: string;
  requests: TwimlRequest[];
  /** TwiML (or a function of the request's parameters) per path; unknown paths answer 404. */
  routes: Map<string, TwimlAnswer>;
  /** Resolves once `path` has been requested `n` times. */
  requested(path: string, n?: number): Promise<TwimlRequest[]>;
  close(): Promise<void>;
}

export async function startTwimlApp(authToken: string): Promise<TwimlApp> {
  const requests: TwimlRequest[] = [];
  const routes = new Map<string, TwimlAnswer>();
  const waiters: (() => void)[] = [];
  let origin = '';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', origin);
      const params = Object.fromEntries(req.method === 'GET' ? url.searchParams : new URLSearchParams(Buffer.concat(chunks).toString()));
      const sig = req.headers['x-twilio-signature'] as string | undefined;
      const signed = req.method === 'GET' ? validateSignature(authToken, sig, url.toString()) : validateSignature(authToken, sig, url.toString(), params);
      requests.push({ method: req.method ?? '', path: url.pathname, params, signed });
      for (const w of waiters.splice(0)) w();
      const answer = routes.get(url.pathname);
      if (answer === undefined || !signed) {
        res.writeHead(answer === undefined ? 404 : 403).end();
        return;
      }
      if (typeof answer === 'object') res.writeHead(200, { 'Content-Type': answer.contentType }).end(answer.body);
      else res.writeHead(200, { 'Content-Type': 'text/xml' }).end(typeof answer === 'string' ? answer : answer(params));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    requests,
    routes,
    requested(path, n = 1) {
      return new Promise((resolve) => {
        const check = (): void => {
          const hits = requests.filter((r) => r.path === path);
          if (hits.length >= n) resolve(hits);
          else waiters.push(check);
        };
        check();
      });
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
