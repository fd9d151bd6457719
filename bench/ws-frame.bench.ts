/**
 * WebSocket frame bench: ns per Twilio media message from the socket's 'data' event to the
 * handler holding the unmasked text, for ws's receive path as the media socket used it (the
 * socket listener writes the chunk into ws's Receiver, a Writable; the receiver's 'message'
 * is re-emitted by the WebSocket, whose listener gets a Buffer) against the media socket's own
 * frame reader (src/gateway/media/frame-reader.ts: header check, unmask in place, a plain call
 * with the range). One chunk per message, as the load generator and Twilio send them; the same
 * masked ~330-byte frame for both, the handler reads one byte of it.
 *
 *   npx tsx bench/ws-frame.bench.ts            (or node dist/bench/ws-frame.bench.js)
 */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import * as wsModule from 'ws';
import { MediaFrameReader } from '../src/gateway/media/frame-reader.js';
import { fmt, mdTable } from './lib/stats.js';
import { timeCases, type CaseResult, type TimedCase } from './lib/timing.js';
import { mediaMessage, newStreamIds, speechLikeFrames } from './lib/twilio-frames.js';

// ws exports its Receiver (ws/wrapper.mjs) but @types/ws does not declare it.
const { Receiver } = wsModule as unknown as { Receiver: new (opts: { isServer: boolean; maxPayload: number; skipUTF8Validation: boolean }) => Writable };

const FRAMES = 64;
const MASK = FRAMES - 1;

/** Masked client text frames, one per chunk (16-bit length: a media message is over 125 bytes). */
function chunks(): Buffer[] {
  const ids = newStreamIds();
  const audio = speechLikeFrames(FRAMES, 3);
  return audio.map((a, i) => {
    const text = Buffer.from(mediaMessage(ids.streamSid, 100 + i, 'inbound', 99 + i, 2000 + 20 * i, Buffer.from(a).toString('base64')));
    const mask = [0x12, 0x9a, 0x4c, 0xe1];
    const head = Buffer.from([0x81, 0x80 | 126, text.length >> 8, text.length & 255, ...mask]);
    return Buffer.concat([head, Buffer.from(text.map((x, j) => x ^ mask[j & 3]!))]);
  });
}

function cases(frames: Buffer[]): TimedCase[] {
  let seen = 0;
  // ws: socketOnData → receiver.write(chunk); the receiver emits 'message', the WebSocket re-emits it.
  const receiver = new Receiver({ isServer: true, maxPayload: 64 * 1024, skipUTF8Validation: true });
  const websocket = new EventEmitter();
  receiver.on('message', (data: Buffer, isBinary: boolean) => websocket.emit('message', data, isBinary));
  websocket.on('message', (data: Buffer) => {
    seen += data[0]!;
  });
  // Ours: the reader takes the socket's 'data' events over from the listener that was there.
  const socket = new PassThrough();
  socket.on('data', () => {
    throw new Error('the reader handed a media frame to ws');
  });
  MediaFrameReader.attach(socket, 64 * 1024, {
    onTextBytes(chunk, _receivedAt, start) {
      seen += chunk[start]!;
    },
  });
  return [
    {
      name: 'ws: Receiver.write (Writable) + receiver and WebSocket message events',
      run(n) {
        for (let i = 0; i < n; i++) receiver.write(frames[i & MASK]!);
        return seen;
      },
    },
    {
      name: 'streamgate MediaFrameReader: header check + unmask in place + plain call',
      run(n) {
        for (let i = 0; i < n; i++) socket.emit('data', frames[i & MASK]!);
        return seen;
      },
    },
  ];
}

export function runWsFrameBench(opts: { quick: boolean }): CaseResult[] {
  const timing = opts.quick ? { rounds: 3, roundMs: 5, warmupMs: 30 } : { rounds: 20, roundMs: 40, warmupMs: 300 };
  return timeCases(cases(chunks()), timing);
}

export function wsFrameMarkdown(r: CaseResult[]): string {
  const ws = r[0]!.ns.mean;
  return mdTable(
    ['socket chunk → unmasked media message in the handler', 'ns/message', '±', 'vs ws'],
    r.map((c) => [c.name, fmt(c.ns.mean, 0), `${fmt(c.ns.tolerancePct, 1)} %`, `${fmt(c.ns.mean / ws, 2)}×`]),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(wsFrameMarkdown(runWsFrameBench({ quick: process.argv.includes('--quick') })) + '\n');
}
