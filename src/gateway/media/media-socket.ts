/**
 * The `/media` WebSocket endpoint. Upgrades are vetted in the HTTP 'upgrade' event, before any
 * 101 (ws abortHandshake style): path, X-Twilio-Signature, draining, admission. The handshake
 * of a vetted upgrade (101, WebSocket, session) then waits its turn in a queue that runs about
 * HANDSHAKE_TURN_MS of them per loop turn, so a burst of 500 connects does not hold the loop
 * for all of them at once; the client sends nothing before its 101 (RFC 6455 §4.1), so nothing
 * is read meanwhile. While connections are being accepted the queue gives way to them (up to
 * HANDSHAKE_YIELD_MS at a time): Node accepts one connection per loop iteration, so every turn
 * spent on handshakes in a burst of connects kept everything behind them in the accept queue
 * waiting (a health check, a webhook: ~600 ms behind 500 connects, bench/RESULTS.md). The
 * message handler is a module-level function that finds its session through `this[kSession]`.
 *
 * Every socket is tracked until it is closed, not only until its session ended: a peer may keep
 * the socket after `stop` (closed by us after STOP_GRACE_MS) or ignore our close frame (destroyed
 * after CLOSE_HANDSHAKE_MS). Admission counts such sockets, and shutdown closes them, because the
 * HTTP server's close waits for every socket.
 */
import type { IncomingMessage, Server } from 'node:http';
// Imported, not the global: the global `performance` is a lazy getter.
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import { validateUpgradeSignature } from '../../twilio/signature.js';
import type { StartFields } from '../../twilio/protocol.js';
import type { SinkFactory } from '../../sinks/sink.js';
import type { EventBus } from '../../core/events.js';
import { MEDIA_PATH } from '../../core/routes.js';
import type { GatewayMetrics } from '../metrics.js';
import type { SessionRegistry } from './session-registry.js';
import { MediaFrameReader } from './frame-reader.js';
import { CLOSE, StreamSession } from './stream-session.js';
import { TurnQueue } from '../../core/turn-queue.js';

/** After `stop`, how long the peer may keep the socket (Twilio closes at once) before we close it with 1000. */
export const STOP_GRACE_MS = 1000;
/** How long a close handshake we started may take before the socket is destroyed (ws would wait 30 s). */
export const CLOSE_HANDSHAKE_MS = 2000;
/**
 * How far media time may run ahead of the wall clock since `start` before the stream is closed.
 * Twilio's media time trails real time; the slack is for replays and tests that send recorded
 * audio faster than real time, and it bounds what a lying stream can make us write beyond real time.
 */
export const MEDIA_CLOCK_SLACK_MS = 120_000;

/**
 * Most of a loop turn the queued handshakes may take (each ~0.3 ms: 101, ws objects, session);
 * the rest wait for the next turn, so timers, probes and live streams' frames run in between.
 */
const HANDSHAKE_TURN_MS = 3;
/**
 * Longest the queued handshakes wait while connections keep being accepted (one per loop
 * iteration, a few hundred µs each): a burst's accept queue drains first, then its handshakes run.
 */
const HANDSHAKE_YIELD_MS = 20;

const kSession = Symbol('streamgate.session');
const kTimer = Symbol('streamgate.closeTimer');
const kEnded = Symbol('streamgate.sessionEnded');
type SessionSocket = WebSocket & { [kSession]: StreamSession; [kTimer]?: NodeJS.Timeout; [kEnded]?: boolean };

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
  /** MAX_GAP_MS: longer media-timestamp jumps are counted (and recorded as discontinuities). */
  maxGapMs: number;
  maxEventLoopDelayMs: number;
  checkStart: ((start: StartFields) => string | null) | null;
  trustConference?: ((start: StartFields) => boolean) | null;
  isDraining: () => boolean;
}

export class MediaEndpoint {
  readonly wss: WebSocketServer;
  readonly #opts: MediaEndpointOptions;
  /** Every open socket, whether or not its session is still in the registry. */
  readonly #sockets = new Set<SessionSocket>();
  /** Open sockets whose session has already ended (a peer that stays after `stop` or a close). */
  #lingering = 0;
  /** Vetted upgrades whose handshake waits in #handshakes (admission counts them). */
  #waiting = 0;
  /** A connection was accepted since the handshake queue last asked. */
  #accepted = false;
  readonly #handshakes = new TurnQueue(HANDSHAKE_TURN_MS, {
    yieldTo: {
      yieldWhile: () => {
        const accepted = this.#accepted;
        this.#accepted = false;
        return accepted;
      },
      maxYieldMs: HANDSHAKE_YIELD_MS,
    },
  });
  #onSocketsGone: (() => void) | null = null;

  constructor(opts: MediaEndpointOptions) {
    this.#opts = opts;
    // Twilio never negotiates compression; deflate would only cost CPU and memory per socket.
    // UTF-8 is checked by the session instead of ws: a media message the fast path accepts is
    // ASCII by construction (every byte matched), so only the others are validated
    // (StreamSession.onTextBytes); ws's check was ~4 % of the gateway's CPU per message.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxMessageBytes, perMessageDeflate: false, clientTracking: false, skipUTF8Validation: true });
  }

  attach(server: Server): void {
    server.on('connection', () => {
      this.#accepted = true;
    });
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
    if (o.maxStreams !== undefined && this.streamsHeld >= o.maxStreams) return this.#reject(socket, 503, 'capacity');
    if (o.registry.loopDelayP99Ms > o.maxEventLoopDelayMs) return this.#reject(socket, 503, 'overload');
    for (const f of o.sinkFactories) {
      const refusal = f.admission?.() ?? null;
      if (refusal !== null) return this.#reject(socket, 503, refusal);
    }
    // Node's HTTP server took its 'error' listener off the socket before 'upgrade'; a reset
    // while the handshake waits must not become an uncaught error (ws adds its own listener).
    socket.on('error', destroyOnError);
    this.#waiting++;
    this.#handshakes.run(() => this.#handshake(req, socket, head)).catch((err: unknown) => {
      // Run synchronously in the 'upgrade' event this would have been an uncaught exception.
      this.#opts.log.error({ err }, 'media handshake failed');
      socket.destroy();
    });
  }

  #handshake(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#waiting--;
    socket.off('error', destroyOnError);
    // A peer gone meanwhile: ws destroys the socket. A drain begun meanwhile refuses as at vetting.
    if (this.#opts.isDraining() && !socket.destroyed) return this.#reject(socket, 503, 'draining');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws as SessionSocket, socket));
  }

  /** What admission counts: live sessions, vetted upgrades waiting for their handshake, and open sockets whose session has ended. */
  get streamsHeld(): number {
    return this.#opts.registry.sessions.size + this.#waiting + this.#lingering;
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

  #onConnection(ws: SessionSocket, raw: Duplex): void {
    const o = this.#opts;
    const registry = o.registry;
    const session = new StreamSession({
      log: o.log,
      metrics: o.metrics,
      bus: o.bus,
      sinkFactories: o.sinkFactories,
      maxFrameBytes: o.maxMessageBytes,
      checkStart: o.checkStart,
      trustConference: o.trustConference ?? null,
      claimStreamSid: (sid, s) => registry.claimStreamSid(sid, s),
      maxGapMs: o.maxGapMs,
      maxClockLeadMs: MEDIA_CLOCK_SLACK_MS,
      closeSocket: (code, reason) => closeSocket(ws, code, reason),
      onStarted: () => registry.markStarted(),
      onStopped: (s) => {
        registry.markStopped();
        // A peer that stays after `stop` would hold a socket nobody tracks: close it ourselves.
        if (s.closeReason === 'stopped' && ws.readyState === ws.OPEN && ws[kTimer] === undefined) {
          ws[kTimer] = setTimeout(() => closeSocket(ws, CLOSE.NORMAL, 'stopped'), STOP_GRACE_MS).unref();
        }
      },
      onEnded: (s) => {
        registry.remove(s);
        if (this.#sockets.has(ws)) {
          ws[kEnded] = true;
          this.#lingering++;
        }
      },
    });
    ws[kSession] = session;
    registry.add(session);
    this.#sockets.add(ws);
    // Text frames go from the socket straight to the session; ws reads the connection from the
    // first frame of another kind (a close, above all) and then delivers through onMessage.
    MediaFrameReader.attach(raw, o.maxMessageBytes, session);
    const socket = ws as WebSocket;
    socket.on('message', onMessage as (this: WebSocket, data: RawData, isBinary: boolean) => void);
    socket.on('close', (code: number) => this.#onClose(ws, code));
    socket.on('error', onError as (this: WebSocket, err: Error) => void);
  }

  #onClose(ws: SessionSocket, code: number): void {
    clearTimeout(ws[kTimer]);
    this.#sockets.delete(ws);
    if (ws[kEnded] === true) this.#lingering--;
    ws[kSession].onSocketClose(code);
    if (this.#sockets.size === 0) this.#onSocketsGone?.();
  }

  /**
   * Closes every live stream with 1001 after its session's sinks finalised, then every socket
   * still open (a session may have ended while its peer kept the socket): the HTTP server's close
   * waits for all of them, so each gets at most CLOSE_HANDSHAKE_MS before it is destroyed.
   */
  async closeAll(): Promise<void> {
    const ending: Promise<void>[] = [];
    for (const s of this.#opts.registry.sessions) ending.push(s.shutdown());
    await Promise.all(ending);
    if (this.#sockets.size === 0) return;
    const gone = new Promise<void>((resolve) => (this.#onSocketsGone = resolve));
    for (const ws of this.#sockets) closeSocket(ws, CLOSE.GOING_AWAY, 'shutdown');
    await gone;
  }
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** Starts a close handshake (once) and destroys the socket if the peer has not finished it in time. */
function closeSocket(ws: SessionSocket, code: number, reason: string): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.close(code, reason);
  clearTimeout(ws[kTimer]);
  ws[kTimer] = setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_MS).unref();
}

function onMessage(this: SessionSocket, data: RawData, isBinary: boolean): void {
  const session = this[kSession];
  if (isBinary) session.onBinary();
  // A text message is a Buffer (ws's default binaryType); the session reads media from the
  // bytes and makes a string only for the other messages.
  else session.onTextBytes(data as Buffer, performance.now());
}

function onError(this: SessionSocket, err: Error & { code?: string }): void {
  const session = this[kSession];
  const reason = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'message_too_large' : err.code === 'WS_ERR_INVALID_UTF8' ? 'invalid_utf8' : 'websocket_error';
  // ws has already failed the connection with the matching close code (1009, 1007, 1002).
  session.fail(reason, err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? CLOSE.TOO_BIG : CLOSE.PROTOCOL_ERROR);
}
