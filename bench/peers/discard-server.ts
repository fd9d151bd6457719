/**
 * The floor: a WebSocket server that accepts the upgrade (ws, perMessageDeflate off, the same
 * options as streamgate's /media endpoint) and throws every message away. Nothing is parsed or
 * decoded; the only work beyond ws's own framing is reading the 12-character send-time stamp
 * out of media messages (bench/lib/stamp.ts), so its lag and frame count can be reported like
 * the others'. Run by bench/ingest.bench.ts as a pinned child process.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { monoNowMs } from '../lib/clock.js';
import type { LagRecorder } from '../lib/lag.js';
import { runServerChild } from '../lib/server-harness.js';
import { readStampBase64 } from '../lib/stamp.js';

const PAYLOAD_KEY = Buffer.from('"payload":"');

runServerChild(async (lag: LagRecorder) => {
  let frames = 0;
  function onMessage(this: WebSocket, data: RawData): void {
    const buf = data as Buffer;
    const at = buf.indexOf(PAYLOAD_KEY);
    if (at < 0) return;
    frames++;
    lag.record(monoNowMs() - readStampBase64(buf, at + PAYLOAD_KEY.length));
  }
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: 64 * 1024 });
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', onMessage);
      ws.on('error', () => ws.terminate());
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const addr = http.address();
  return {
    server: {
      port: typeof addr === 'object' && addr !== null ? addr.port : 0,
      frames: () => frames,
      close: () => new Promise<void>((resolve) => http.close(() => resolve())),
    },
  };
});
