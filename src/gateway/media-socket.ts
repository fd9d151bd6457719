/**
 * The `/media` WebSocket endpoint. Upgrades are vetted in the HTTP 'upgrade' event, before any
 * 101 (ws abortHandshake style): path, draining, admission, then X-Twilio-Signature. Socket
 * handlers are module-level functions that find their session through `this[kSession]`, so a
 * connection costs no closures.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import { validateUpgradeSignature } from '../twilio/signature.js';
import type { StartFields } from '../twilio/protocol.js';
import type { SinkFactory } from '../sinks/sink.js';
import type { EventBus } from '../core/events.js';
import { MEDIA_PATH } from '../core/routes.js';
import type { GatewayMetrics } from './metrics.js';
import type { SessionRegistry } from './session-registry.js';
import { CLOSE, StreamSession } from './stream-session.js';

const kSession = Symbol('streamgate.session');
type SessionSocket = WebSocket & { [kSession]: StreamSession };

export interface MediaEndpointOptions {
  log: Logger;
  metrics: GatewayMetrics;
  bus: EventBus;
  registry: SessionRegistry;
  sinkFactories: readonly SinkFactory[];
  publicUrl: string;
  authToken: string | undefined;
  maxMessageBytes: number;
  maxStreams: number | undefined;
  maxEventLoopDelayMs: number;
  checkStart: ((start: StartFields) => string | null) | null;
  isDraining: () => boolean;
}

export class MediaEndpoint {
  readonly wss: WebSocketServer;
  readonly #opts: MediaEndpointOptions;

  constructor(opts: MediaEndpointOptions) {
    this.#opts = opts;
    // Twilio never negotiates compression; deflate would only cost CPU and memory per socket.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxMessageBytes, perMessageDeflate: false, clientTracking: false });
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const o = this.#opts;
    const path = (req.url ?? '/').split('?')[0]!;
    if (path !== MEDIA_PATH && path !== MEDIA_PATH + '/') return this.#reject(socket, 404, 'path');
    // Signature first: a client that is not Twilio learns nothing of our load or drain state.
    if (o.authToken !== undefined) {
      const header = req.headers['x-twilio-signature'];
      const signature = Array.isArray(header) ? header[0] : header;
      if (signature === undefined || signature === '') return this.#reject(socket, 403, 'signature_missing');
      if (!validateUpgradeSignature(o.authToken, signature, o.publicUrl, path)) return this.#reject(socket, 403, 'signature_invalid');
    }
    if (o.isDraining()) return this.#reject(socket, 503, 'draining');
    if (o.maxStreams !== undefined && o.registry.sessions.size >= o.maxStreams) return this.#reject(socket, 503, 'capacity');
    if (o.registry.loopDelayP99Ms > o.maxEventLoopDelayMs) return this.#reject(socket, 503, 'overload');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws as SessionSocket));
  }

  #reject(socket: Duplex, status: 403 | 404 | 503, reason: string): void {
    this.#opts.metrics.upgradeRejected.labels(reason).inc();
    this.#opts.log.warn({ status, reason }, 'media upgrade refused');
    const text = status === 403 ? 'Forbidden' : status === 404 ? 'Not Found' : 'Service Unavailable';
    if (socket.writable) {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${reason.length}\r\n\r\n${reason}`);
    }
    socket.destroy();
  }

  #onConnection(ws: SessionSocket): void {
    const o = this.#opts;
    const registry = o.registry;
    const session = new StreamSession({
      log: o.log,
      metrics: o.metrics,
      bus: o.bus,
      sinkFactories: o.sinkFactories,
      maxFrameBytes: o.maxMessageBytes,
      checkStart: o.checkStart,
      claimStreamSid: (sid, s) => registry.claimStreamSid(sid, s),
      closeSocket: (code, reason) => {
        if (ws.readyState === ws.OPEN) ws.close(code, reason);
      },
      onStarted: () => registry.markStarted(),
      onStopped: () => registry.markStopped(),
      onEnded: (s) => registry.remove(s),
    });
    ws[kSession] = session;
    registry.add(session);
    const socket = ws as WebSocket;
    socket.on('message', onMessage as (this: WebSocket, data: RawData, isBinary: boolean) => void);
    socket.on('close', onClose as (this: WebSocket, code: number) => void);
    socket.on('error', onError as (this: WebSocket, err: Error) => void);
  }

  /** Closes every live socket with 1001 after its session's sinks finalised. */
  async closeAll(): Promise<void> {
    const ending: Promise<void>[] = [];
    for (const s of this.#opts.registry.sessions) ending.push(s.shutdown());
    await Promise.all(ending);
  }
}

function onMessage(this: SessionSocket, data: RawData, isBinary: boolean): void {
  const session = this[kSession];
  if (isBinary) session.onBinary();
  // A text message is a Buffer (ws's default binaryType); the session reads media from the
  // bytes and makes a string only for the other messages.
  else session.onTextBytes(data as Buffer, performance.now());
}

function onClose(this: SessionSocket, code: number): void {
  this[kSession].onSocketClose(code);
}

function onError(this: SessionSocket, err: Error & { code?: string }): void {
  const session = this[kSession];
  const reason = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'message_too_large' : err.code === 'WS_ERR_INVALID_UTF8' ? 'invalid_utf8' : 'websocket_error';
  // ws has already failed the connection with the matching close code (1009, 1007, 1002).
  session.fail(reason, err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? CLOSE.TOO_BIG : CLOSE.PROTOCOL_ERROR);
}
