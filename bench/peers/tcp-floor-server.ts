/**
 * The socket floor: no WebSocket library at all. `net` accepts the connection, answers the
 * upgrade with a hand-computed 101, then walks the client's frames just far enough to count
 * them and read the send-time stamp: header, mask, unmask into one scratch buffer, find the
 * payload key. Nothing is parsed, validated or kept. What it costs per message is what any
 * server must pay to receive a Twilio media message over a socket; run by
 * bench/ingest.bench.ts as a pinned child process like the other peers.
 */
import { createHash } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { monoNowMs } from '../lib/clock.js';
import type { LagRecorder } from '../lib/lag.js';
import { runServerChild } from '../lib/server-harness.js';
import { readStampBase64 } from '../lib/stamp.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const PAYLOAD_KEY = Buffer.from('"payload":"');
const HEADER_END = Buffer.from('\r\n\r\n');
const KEY_RE = /^sec-websocket-key:\s*(\S+)\s*$/im;
const CLOSE_RE = /^connection:\s*close\s*$/im;
const MAX_FRAME = 64 * 1024;

runServerChild(async (lag: LagRecorder) => {
  let frames = 0;
  // One scratch for every connection: each frame is unmasked and read before the next.
  const scratch = Buffer.allocUnsafe(MAX_FRAME);

  /** Consumes whole frames from buf[0..end); returns how many bytes were used. */
  function walk(buf: Buffer, end: number): number {
    let at = 0;
    while (end - at >= 6) {
      const b1 = buf[at + 1]!;
      let len = b1 & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (end - at < 8) break;
        len = buf.readUInt16BE(at + 2);
        hdr = 4;
      } else if (len === 127) {
        return -1; // Twilio never sends 64-bit lengths
      }
      if (len > MAX_FRAME) return -1;
      const maskAt = at + hdr;
      const dataAt = maskAt + 4;
      if (end - dataAt < len) break;
      const opcode = buf[at]! & 0x0f;
      if (opcode === 0x8) return -1;
      if (opcode === 0x1) {
        for (let i = 0; i < len; i++) scratch[i] = buf[dataAt + i]! ^ buf[maskAt + (i & 3)]!;
        const k = scratch.subarray(0, len).indexOf(PAYLOAD_KEY);
        if (k >= 0) {
          frames++;
          lag.record(monoNowMs() - readStampBase64(scratch, k + PAYLOAD_KEY.length));
        }
      }
      at = dataAt + len;
    }
    return at;
  }

  function onConnection(socket: Socket): void {
    let pending: Buffer | null = null;
    let upgraded = false;
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = null;
      while (!upgraded) {
        const h = buf.indexOf(HEADER_END);
        if (h < 0) {
          pending = buf.length > 0 ? buf : null;
          return;
        }
        const head = buf.toString('latin1', 0, h);
        const key = KEY_RE.exec(head)?.[1];
        // Not an upgrade: an HTTP probe (the burst bench's health checks). Kept alive unless the
        // client asks to close, as Node's HTTP servers do, so both probe kinds cost what they cost there.
        if (!key) {
          if (CLOSE_RE.test(head)) return void socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
          buf = buf.subarray(h + HEADER_END.length);
          continue;
        }
        const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        upgraded = true;
        buf = buf.subarray(h + HEADER_END.length);
      }
      const used = walk(buf, buf.length);
      if (used < 0) return void socket.destroy();
      if (used < buf.length) pending = Buffer.from(buf.subarray(used));
    });
  }

  const server = createServer({ noDelay: true }, onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    server: {
      port: typeof addr === 'object' && addr !== null ? addr.port : 0,
      frames: () => frames,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    },
  };
});
