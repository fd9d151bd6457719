/**
 * `GET /v1/transcripts`: final transcripts live, as Server-Sent Events, so pipelines need not
 * tail files; with REDIS_URL, every process's (they arrive as `peer-transcript` on the bus).
 * `?callSid=` / `?conferenceSid=` filter. Registered inside the `/v1` scope, so it
 * shares the admin auth. A client that cannot keep up (1 MiB unsent) is disconnected rather
 * than buffered without bound; an idle connection gets a comment every 15 s to stay open.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { TranscriptEvent } from '../../core/transcript.js';
import { SID_PATTERNS } from '../../twilio/sids.js';
import { errorResponses } from './openapi.js';
import type { Gateway } from '../server.js';

const MAX_UNSENT_BYTES = 1 << 20;
const KEEPALIVE_MS = 15_000;

export function transcriptsSse(scope: FastifyInstance, gateway: Gateway): void {
  const clients = new Set<ServerResponse>();
  gateway.onClose(() => {
    for (const res of clients) res.end();
    clients.clear();
  });
  scope.get<{ Querystring: { callSid?: string; conferenceSid?: string } }>(
    '/transcripts',
    {
      schema: {
        summary: 'Final transcripts, live (Server-Sent Events)',
        response: {
          200: {
            description: 'An `event: transcript` per final result, its data the transcript as JSON; a comment every 15 s keeps the connection open',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          ...errorResponses(),
        },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            callSid: { type: 'string', pattern: SID_PATTERNS.call.source },
            conferenceSid: { type: 'string', pattern: SID_PATTERNS.conference.source },
          },
        },
      },
    },
    (req, reply) => {
      const { callSid, conferenceSid } = req.query;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-content-type-options': 'nosniff' });
      res.write(': streamgate transcripts\n\n');
      clients.add(res);
      const send = (t: TranscriptEvent) => {
        if (!t.isFinal) return;
        if (callSid !== undefined && t.callSid !== callSid) return;
        if (conferenceSid !== undefined && t.conferenceSid !== conferenceSid) return;
        if (res.writableLength > MAX_UNSENT_BYTES) {
          gateway.log.warn({ callSid, conferenceSid }, 'SSE client too slow; disconnected');
          res.destroy();
          return;
        }
        res.write(`event: transcript\ndata: ${JSON.stringify(t)}\n\n`);
      };
      const offs = [gateway.bus.on('transcript', send), gateway.bus.on('peer-transcript', send)];
      const off = () => offs.forEach((f) => f());
      const ping = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
      ping.unref();
      res.on('close', () => {
        off();
        clearInterval(ping);
        clients.delete(res);
      });
    },
  );
}
