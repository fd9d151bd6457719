/**
 * Test stand-ins for a gateway: a real `ws` WebSocketServer that records what the emulator
 * sends on each stream connection, and an HTTP server that records callbacks.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** A Media Streams message as parsed JSON (fields by event). */
export interface WireMessage {
  event: string;
  sequenceNumber?: string;
  streamSid?: string;
  protocol?: string;
  version?: string;
  start?: {
    accountSid: string;
    streamSid: string;
    callSid: string;
    tracks: string[];
    mediaFormat: { encoding: string; sampleRate: number; channels: number };
    customParameters: Record<string, string>;
  };
  media?: { track: string; chunk: string; timestamp: string; payload: string };
  stop?: { accountSid: string; callSid: string };
  dtmf?: { track: string; digit: string };
  mark?: { name: string };
}

export interface ReceivedMessage {
  text: string;
  /** performance.now() at arrival. */
  at: number;
  json: WireMessage;
}

export interface StreamConnection {
  path: string;
  headers: IncomingHttpHeaders;
  messages: ReceivedMessage[];
  socket: WebSocket;
  /** Resolves with the close code once the socket closed. */
  closed: Promise<number>;
  closeCode: number | null;
}

export interface StreamReceiver {
  /** ws://127.0.0.1:port */
  origin: string;
  connections: StreamConnection[];
  /** Resolves with the n-th connection (0-based) once it is open. */
  connection(n?: number): Promise<StreamConnection>;
  /** Answer upgrades with this HTTP status instead of 101 (null: accept). */
  refuseWith: number | null;
  close(): Promise<void>;
}

export async function startStreamReceiver(): Promise<StreamReceiver> {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  const connections: StreamConnection[] = [];
  const waiters: (() => void)[] = [];
  const receiver: StreamReceiver = {
    origin: '',
    connections,
    refuseWith: null,
    connection(n = 0) {
      return new Promise((resolve) => {
        const check = (): boolean => {
          const c = connections[n];
          if (c !== undefined) resolve(c);
          return c !== undefined;
        };
        if (!check()) waiters.push(() => void check());
      });
    },
    async close() {
      for (const c of connections) c.socket.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('upgrade', (req, socket, head) => {
    if (receiver.refuseWith !== null) {
      socket.end(`HTTP/1.1 ${receiver.refuseWith} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      let resolveClosed!: (code: number) => void;
      const conn: StreamConnection = {
        path: req.url ?? '',
        headers: req.headers,
        messages: [],
        socket: ws,
        closed: new Promise((r) => (resolveClosed = r)),
        closeCode: null,
      };
      ws.on('message', (data, isBinary) => {
        const text = isBinary ? '<binary>' : data.toString();
        conn.messages.push({ text, at: performance.now(), json: JSON.parse(text) as WireMessage });
      });
      ws.on('close', (code) => {
        conn.closeCode = code;
        resolveClosed(code);
      });
      connections.push(conn);
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  receiver.origin = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

export interface ReceivedCallback {
  method: string;
  /** Path and query as requested. */
  url: string;
  headers: IncomingHttpHeaders;
  /** Form body (POST) or query (GET). */
  params: Record<string, string>;
}

export interface CallbackReceiver {
  /** http://127.0.0.1:port */
  origin: string;
  received: ReceivedCallback[];
  /** Status to answer with. */
  status: number;
  close(): Promise<void>;
}

export async function startCallbackReceiver(): Promise<CallbackReceiver> {
  const received: ReceivedCallback[] = [];
  const receiver: CallbackReceiver = { origin: '', received, status: 200, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const source = req.method === 'GET' ? url.searchParams : new URLSearchParams(Buffer.concat(chunks).toString());
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, params: Object.fromEntries(source) });
      res.writeHead(receiver.status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  receiver.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  receiver.close = () => new Promise<void>((r) => server.close(() => r()));
  return receiver;
}
