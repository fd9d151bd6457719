/**
 * The naive peer: a Media Streams receiver written the way public samples write one.
 *
 *   ws.on('message') → JSON.parse(data.toString()) → switch on event
 *     start: fs.createWriteStream(<streamSid>.raw)
 *     media: Buffer.from(payload, 'base64') → alawmulaw mulaw.decode → stream.write(pcm)
 *     stop / close: stream.end()
 *
 * No validation, no sequence accounting, no bounded buffering (a write stream queues without
 * limit when the disk is slow). We chose a write stream per stream over fs.appendFile per frame,
 * which samples also show: appendFile opens and closes the file for every 20 ms frame and would
 * make the comparison look better for us than it should. Lag is read after `write` is called,
 * the same point as streamgate's bench sink ("handed to the writer").
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import alawmulaw from 'alawmulaw';
import { WebSocketServer } from 'ws';
import { monoNowMs } from '../lib/clock.js';
import type { LagRecorder } from '../lib/lag.js';
import { runServerChild } from '../lib/server-harness.js';
import { readStampBytes } from '../lib/stamp.js';

interface TwilioMessage {
  event: string;
  start?: { streamSid: string };
  media?: { track: string; payload: string };
}

runServerChild(async (lag: LagRecorder) => {
  const dir = process.env.BENCH_DATA_DIR ?? './data/naive';
  mkdirSync(dir, { recursive: true });
  let frames = 0;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    let out: WriteStream | null = null;
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as TwilioMessage;
      switch (msg.event) {
        case 'start':
          out = createWriteStream(join(dir, `${msg.start!.streamSid}.raw`));
          break;
        case 'media': {
          const mulawBytes = Buffer.from(msg.media!.payload, 'base64');
          const pcm = alawmulaw.mulaw.decode(mulawBytes);
          out?.write(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
          frames++;
          lag.record(monoNowMs() - readStampBytes(mulawBytes));
          break;
        }
        case 'stop':
          out?.end();
          break;
      }
    });
    ws.on('close', () => out?.end());
  });
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
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
