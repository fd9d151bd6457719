/**
 * The speech service the engine bench talks to: one loopback WebSocket server that answers in
 * Deepgram's shape on `/v1/listen` (an interim Results per second of audio, a final every 3 s)
 * or in Vosk's (one reply per audio message), at the services' own cadence, without recognising
 * anything. It reads the load generator's send stamp (bench/lib/stamp.ts) from each audio message
 * to measure frame sent → audio on the engine socket.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { WebSocketServer } from 'ws';
import { MULAW_TO_PCM } from '../../src/twilio/mulaw.js';
import { monoNowMs } from '../lib/clock.js';
import { readStampBytes, STAMP_BYTES, STAMP_MARKER } from '../lib/stamp.js';

export interface AsrServicePeer {
  url: string;
  /** ms from the generator's send to arrival here, one per stamped audio message. */
  latencies: number[];
  audioMessages: number;
  connections: number;
  close(): Promise<void>;
}

/** mu-law byte for each 16-bit sample value that decodes from exactly one byte (0 has two: 0x7f, 0xff). */
const PCM_TO_MULAW = new Map<number, number[]>();
for (let b = 0; b < 256; b++) {
  const v = MULAW_TO_PCM[b]!;
  PCM_TO_MULAW.set(v, [...(PCM_TO_MULAW.get(v) ?? []), b]);
}

/** The stamp of a Vosk PCM message: the mu-law bytes back from the samples (both zeros tried). */
function stampOfPcm(buf: Buffer, now: number): number {
  if (buf.length < STAMP_BYTES * 2 || buf.readInt16LE(16) !== MULAW_TO_PCM[STAMP_MARKER]) return NaN;
  let best = NaN;
  const bytes = new Uint8Array(STAMP_BYTES);
  bytes[8] = STAMP_MARKER;
  const choices = Array.from({ length: 8 }, (_, i) => PCM_TO_MULAW.get(buf.readInt16LE(i * 2)) ?? [0]);
  const walk = (i: number): void => {
    if (i === 8) {
      const t = readStampBytes(bytes);
      if (Number.isFinite(t) && t <= now && (Number.isNaN(best) || now - t < now - best)) best = t;
      return;
    }
    for (const b of choices[i]!) {
      bytes[i] = b;
      walk(i + 1);
    }
  };
  walk(0);
  return best;
}

export async function startAsrService(): Promise<AsrServicePeer> {
  const server: Server = createServer((_q, r) => r.writeHead(426).end());
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  const peer: AsrServicePeer = { url: '', latencies: [], audioMessages: 0, connections: 0, close: async () => {} };
  wss.on('connection', (ws, req) => {
    peer.connections++;
    const deepgram = req.url?.startsWith('/v1/listen') === true;
    let samples = 0;
    let lastInterim = 0;
    let lastFinal = 0;
    ws.on('message', (data: Buffer, isBinary) => {
      const now = monoNowMs();
      if (!isBinary) {
        const text = data.toString();
        if (text.includes('CloseStream') || text === '{"eof" : 1}') {
          ws.send(deepgram ? JSON.stringify({ type: 'Metadata', request_id: 'bench', duration: samples / 8000, channels: 1 }) : '{"text" : ""}');
          ws.close(1000);
        }
        return;
      }
      peer.audioMessages++;
      const stamp = deepgram ? readStampBytes(data) : stampOfPcm(data, now);
      if (Number.isFinite(stamp)) peer.latencies.push(now - stamp);
      samples += deepgram ? data.length : data.length / 2;
      const sec = samples / 8000;
      if (!deepgram) {
        ws.send(sec - lastFinal >= 3 ? ((lastFinal = sec), '{"result" : [{"conf" : 1.0, "end" : 0.5, "start" : 0.2, "word" : "bench"}], "text" : "bench"}') : '{"partial" : "bench"}');
        return;
      }
      if (sec - lastFinal >= 3) {
        ws.send(JSON.stringify(results(lastFinal, sec, true)));
        lastFinal = lastInterim = sec;
      } else if (sec - lastInterim >= 1) {
        ws.send(JSON.stringify(results(lastFinal, sec, false)));
        lastInterim = sec;
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  peer.url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
  peer.close = async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return peer;
}

function results(start: number, end: number, isFinal: boolean): unknown {
  const w = { word: 'bench', start: start + 0.1, end: start + 0.4, confidence: 0.9, punctuated_word: 'Bench' };
  return {
    type: 'Results',
    channel_index: [0, 1],
    start,
    duration: end - start,
    is_final: isFinal,
    speech_final: isFinal,
    channel: { alternatives: [{ transcript: 'bench', confidence: 0.9, words: [w] }] },
    metadata: { request_id: 'bench', model_info: { name: 'bench', version: '0', arch: 'bench' }, model_uuid: 'bench' },
  };
}
