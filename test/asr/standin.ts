/**
 * What both speech-service stand-ins share: a loopback HTTP server that checks each WebSocket
 * handshake the way the service would (refusing with the service's own status and body),
 * records every connection (query, what it was sent, in order, how it ended), and lets a test
 * inject the faults a real service shows (refused handshakes, a close mid-call, silence,
 * malformed messages).
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

export interface StandinConnection {
  index: number;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** Audio bytes received, in order, exactly as sent. */
  audio: Buffer[];
  /** Text messages received, in order. */
  texts: string[];
  /** Every message in order: `audio:<bytes>` or the text. */
  sequence: string[];
  /** Messages sent to the client. */
  sent: string[];
  /** Protocol violations the service would not accept. */
  violations: string[];
  closed: { code: number; reason: string; by: 'client' | 'server' } | null;
  /** Messages that arrived after the service closed (ignored, as the service would). */
  ignoredAfterClose: number;
  ws: WebSocket;
}

export interface Refusal {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export abstract class Standin {
  readonly connections: StandinConnection[] = [];
  /** Handshakes refused (status), in order. */
  readonly refused: number[] = [];
  /** Handshakes attempted, including refused ones. */
  attempts = 0;
  /** Refuse the next handshakes with these (one entry each). */
  readonly refuseNext: Refusal[] = [];
  /** Refuse every handshake with this while set. */
  refuseAll: Refusal | null = null;
  /** While true, the service reads audio but answers nothing (a hung recogniser). */
  muted = false;
  /** The connection with this index stops answering once it has this much audio. */
  mutePlan: { connection: number; afterSeconds: number } | null = null;
  /** When set, the connection with this index closes with this code once it has this much audio. */
  closePlan: { connection: number; afterSeconds: number; code: number; reason: string } | null = null;
  readonly #server: Server;
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  url = '';

  constructor() {
    this.#server = createServer((_req, res) => res.writeHead(426).end());
    this.#server.on('upgrade', (req, socket, head) => this.#upgrade(req, socket, head));
  }

  async listen(): Promise<this> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    const { port } = this.#server.address() as { port: number };
    this.url = `ws://127.0.0.1:${port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Every violation over all connections. */
  violations(): string[] {
    return this.connections.flatMap((c) => c.violations.map((v) => `#${c.index}: ${v}`));
  }

  /** Sends `text` (or binary) to the latest connection, as a faulty service would. */
  inject(data: string | Buffer): void {
    const c = this.connections[this.connections.length - 1];
    if (c === undefined) throw new Error('no connection to inject into');
    c.ws.send(data);
    c.sent.push(typeof data === 'string' ? data : `binary:${data.length}`);
  }

  /** The service's own check of a handshake: null to accept, or how to refuse. */
  protected abstract check(req: IncomingMessage, url: URL): Refusal | null;
  /** A new accepted connection. */
  protected abstract opened(c: StandinConnection): void;
  /** One message from the client. */
  protected abstract message(c: StandinConnection, data: Buffer, isBinary: boolean): void;

  protected send(c: StandinConnection, message: unknown): void {
    if (c.closed !== null) return;
    const text = JSON.stringify(message);
    c.ws.send(text);
    c.sent.push(text);
  }

  protected closeConnection(c: StandinConnection, code: number, reason: string): void {
    if (c.closed !== null) return;
    c.closed = { code, reason, by: 'server' };
    c.ws.close(code, reason);
  }

  /** Whether `c` answers nothing now, having received `seconds` of audio. */
  protected isMuted(c: StandinConnection, seconds: number): boolean {
    const plan = this.mutePlan;
    return this.muted || (plan !== null && plan.connection === c.index && seconds >= plan.afterSeconds);
  }

  /** Audio seconds received on `c`, for close plans (bytes per second of the service's format). */
  protected checkClosePlan(c: StandinConnection, seconds: number): boolean {
    const plan = this.closePlan;
    if (plan === null || plan.connection !== c.index || seconds < plan.afterSeconds) return false;
    this.closePlan = null;
    this.closeConnection(c, plan.code, plan.reason);
    return true;
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.attempts++;
    const url = new URL(req.url ?? '/', 'http://standin');
    const refusal = this.refuseNext.shift() ?? this.refuseAll ?? this.check(req, url);
    if (refusal !== null) {
      this.refused.push(refusal.status);
      const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(refusal.body)), connection: 'close', ...refusal.headers };
      socket.end(`HTTP/1.1 ${refusal.status} Refused\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${refusal.body}`);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const c: StandinConnection = {
        index: this.connections.length,
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        audio: [],
        texts: [],
        sequence: [],
        sent: [],
        violations: [],
        closed: null,
        ignoredAfterClose: 0,
        ws,
      };
      this.connections.push(c);
      ws.on('message', (data, isBinary) => {
        const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        if (c.closed !== null) {
          // What a client sent while the service's own close was on its way is not its fault: the
          // service ignores it (and the gateway counts it as replayed on the next connection).
          if (c.closed.by === 'server') c.ignoredAfterClose++;
          else c.violations.push(`message after the close (${isBinary ? 'binary' : buf.toString('utf8').slice(0, 40)})`);
          return;
        }
        c.sequence.push(isBinary ? `audio:${buf.length}` : buf.toString('utf8'));
        if (isBinary) c.audio.push(Buffer.from(buf));
        else c.texts.push(buf.toString('utf8'));
        this.message(c, buf, isBinary);
      });
      ws.on('close', (code, reason) => {
        c.closed ??= { code, reason: reason.toString('utf8'), by: 'client' };
      });
      this.opened(c);
    });
  }
}

/** The audio bytes of connection `c`, concatenated. */
export function audioOf(c: StandinConnection): Buffer {
  return Buffer.concat(c.audio);
}
