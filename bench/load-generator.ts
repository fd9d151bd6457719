/**
 * The load generator: N Twilio-like Media Streams over raw TCP sockets, in its own process
 * (pinned to its own core by bench/ingest.bench.ts), driven over IPC.
 *
 * Each stream does the WebSocket handshake by hand, sends `connected` and `start`, then one
 * `media` message every 20 ms per track, as its own masked text frame and its own
 * `socket.write` (no batching of frames into one write; Nagle off, as a real sender's frames
 * leave separately). Streams are staggered evenly across the 20 ms period:
 *
 *   unit u = (stream, track), phase(u) = u / units * 20 ms
 *   period p:  ──u0──u1──u2── … ──u(units-1)──│──u0──u1── …      each unit once per period
 *
 * The send time is taken right before each write, on the shared monotonic clock, and written
 * into the payload's first bytes (bench/lib/stamp.ts); the server measures lag against it. How
 * late a send is against its schedule ("slip") is measured too, so a saturated generator is
 * reported as such instead of being blamed on the server.
 *
 * Frames are built per send from a per-stream template (string concat, latin1 write, mask):
 * the server receives exactly what it would from pre-built frames; building them costs only
 * the generator's own core.
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { monoNowMs } from './lib/clock.js';
import { LagRecorder, type LagSnapshot } from './lib/lag.js';
import { STAMP_B64_CHARS, writeStampBase64 } from './lib/stamp.js';
import { connectedMessage, mediaMessage, newStreamIds, speechLikeFrames, startMessage, stopMessage } from './lib/twilio-frames.js';

export interface GeneratorConfig {
  port: number;
  streams: number;
  bothTracks: boolean;
  /** Media periods (20 ms each) before the measured window. */
  warmupMs: number;
  measureMs: number;
  /** Handshakes in flight at once while connecting. */
  connectConcurrency?: number;
}

export type GeneratorEvent =
  | { type: 'connected'; ok: number; failed: number; rejected: Record<string, number>; ms: number }
  | { type: 'measure-start' }
  | { type: 'measure-end' }
  | { type: 'done'; report: GeneratorReport };

export interface GeneratorReport {
  /** Media frames written over the whole run (warm-up included). */
  sent: number;
  sentInWindow: number;
  /** Frames the schedule asked for in the window. */
  scheduledInWindow: number;
  windowMs: number;
  slip: LagSnapshot;
  cpuUs: number;
  cpuSystemUs: number;
  /** Writes that found the socket's kernel buffer full (the server was not reading). */
  blockedWrites: number;
  /** Streams the server closed or reset before we finished. */
  closedEarly: number;
  errors: number;
}

const PERIOD_MS = 20;
const MAX_LIFE_MS = 10 * 60_000;

class Stream {
  readonly ids = newStreamIds();
  socket: Socket | null = null;
  seq = 1;
  readonly chunk = [0, 0];
  readonly mask = randomBytes(4);
  /** Base64 payload: 12 placeholder characters for the stamp, then 204 of constant audio. */
  payload = '';
  /** Where the stamp starts, counted back from the end of the message text. */
  stampFromEnd = 0;
  closedEarly = false;
  finished = false;
}

function frame(text: string, mask: Buffer, stampAt: number, sentMs: number): Buffer {
  const len = text.length; // ASCII only
  const header = len < 126 ? 2 : 4;
  const buf = Buffer.allocUnsafe(header + 4 + len);
  buf[0] = 0x81; // FIN + text
  if (header === 2) buf[1] = 0x80 | len;
  else {
    buf[1] = 0x80 | 126;
    buf[2] = len >> 8;
    buf[3] = len & 255;
  }
  const p = header + 4;
  buf[header] = mask[0]!;
  buf[header + 1] = mask[1]!;
  buf[header + 2] = mask[2]!;
  buf[header + 3] = mask[3]!;
  buf.write(text, p, 'latin1');
  if (stampAt >= 0) writeStampBase64(sentMs, buf, p + stampAt);
  const m0 = mask[0]!;
  const m1 = mask[1]!;
  const m2 = mask[2]!;
  const m3 = mask[3]!;
  let i = 0;
  for (; i + 3 < len; i += 4) {
    buf[p + i] = buf[p + i]! ^ m0;
    buf[p + i + 1] = buf[p + i + 1]! ^ m1;
    buf[p + i + 2] = buf[p + i + 2]! ^ m2;
    buf[p + i + 3] = buf[p + i + 3]! ^ m3;
  }
  for (; i < len; i++) buf[p + i] = buf[p + i]! ^ mask[i & 3]!;
  return buf;
}

function handshake(port: number, s: Stream): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    const key = randomBytes(16).toString('base64');
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 'bad';
      if (status !== '101') {
        socket.destroy();
        resolve(status);
        return;
      }
      s.socket = socket;
      socket.on('data', () => {
        // The server never speaks to a Twilio stream except to close it.
        if (!s.finished) s.closedEarly = true;
      });
      resolve(null);
    };
    socket.on('data', onData);
    socket.on('error', () => {
      if (s.socket === null) resolve('error');
    });
    socket.on('close', () => {
      if (!s.finished) s.closedEarly = true;
    });
    socket.write(`GET /media HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}

async function run(cfg: GeneratorConfig, emit: (e: GeneratorEvent) => void): Promise<void> {
  const n = cfg.streams;
  const tracks: ('inbound' | 'outbound')[] = cfg.bothTracks ? ['inbound', 'outbound'] : ['inbound'];
  const audio = speechLikeFrames(16);
  const streams: Stream[] = [];
  for (let i = 0; i < n; i++) {
    const s = new Stream();
    // Bytes 9..159 of one of the audio frames: base64 of a 3-byte-aligned slice is the tail of the whole.
    s.payload = 'A'.repeat(STAMP_B64_CHARS) + Buffer.from(audio[i % audio.length]!.subarray(9)).toString('base64');
    s.stampFromEnd = s.payload.length + '"},"streamSid":"'.length + s.ids.streamSid.length + '"}'.length;
    streams.push(s);
  }

  // Connect with bounded concurrency; a 503 (admission) is retried a few times, then counted.
  const t0 = performance.now();
  const rejected: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const s = streams[next++]!;
      let status: string | null = 'none';
      for (let attempt = 0; attempt < 5 && status !== null; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 100 * attempt));
        status = await handshake(cfg.port, s);
      }
      if (status !== null) rejected[status] = (rejected[status] ?? 0) + 1;
      else {
        s.socket!.write(frame(connectedMessage(), s.mask, -1, 0));
        s.socket!.write(frame(startMessage(s.ids, tracks), s.mask, -1, 0));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(cfg.connectConcurrency ?? 32, n) }, worker));
  const live = streams.filter((s) => s.socket !== null);
  emit({ type: 'connected', ok: live.length, failed: n - live.length, rejected, ms: performance.now() - t0 });
  // Let every session reach STARTED before media flows.
  await new Promise((r) => setTimeout(r, 300));

  const units = live.length * tracks.length;
  const warmupPeriods = Math.round(cfg.warmupMs / PERIOD_MS);
  const measurePeriods = Math.round(cfg.measureMs / PERIOD_MS);
  const totalPeriods = warmupPeriods + measurePeriods;
  const phase = new Float64Array(units);
  for (let u = 0; u < units; u++) phase[u] = (u / units) * PERIOD_MS;

  const slip = new LagRecorder();
  let sent = 0;
  let sentAtWindowStart = 0;
  let blockedWrites = 0;
  let errors = 0;
  let cpuAtStart = process.cpuUsage();
  let windowStartMs = 0;
  let windowMs = 0;

  const base = monoNowMs() + 5;
  let period = 0;
  let cursor = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      for (;;) {
        const due = base + period * PERIOD_MS + phase[cursor]!;
        const now = monoNowMs();
        if (due > now) break;
        // Units are (stream, track) pairs; with both tracks a stream's two units are adjacent.
        const t = tracks.length === 1 ? 0 : cursor & 1;
        const st = live[tracks.length === 1 ? cursor : cursor >> 1]!;
        const chunk = ++st.chunk[t]!;
        const text = mediaMessage(st.ids.streamSid, ++st.seq, tracks[t]!, chunk, 100 + (chunk - 1) * PERIOD_MS, st.payload);
        const stampAt = text.length - st.stampFromEnd;
        const sentMs = monoNowMs();
        if (st.socket !== null && !st.socket.destroyed) {
          if (!st.socket.write(frame(text, st.mask, stampAt, sentMs))) blockedWrites++;
          sent++;
          slip.record(sentMs - due);
        } else errors++;
        if (++cursor === units) {
          cursor = 0;
          period++;
          if (period === warmupPeriods) {
            slip.reset();
            sentAtWindowStart = sent;
            cpuAtStart = process.cpuUsage();
            windowStartMs = monoNowMs();
            emit({ type: 'measure-start' });
          } else if (period === totalPeriods) {
            windowMs = monoNowMs() - windowStartMs;
            emit({ type: 'measure-end' });
            resolve();
            return;
          }
        }
      }
      // Node timers have 1 ms granularity: a send may slip by up to ~1 ms (measured as slip,
      // never counted as server lag). Spinning with setImmediate would hide the generator's
      // real CPU use, which the report needs to show it is not the bottleneck.
      const wait = base + period * PERIOD_MS + phase[cursor]! - monoNowMs();
      setTimeout(tick, Math.max(1, Math.floor(wait)));
    };
    tick();
  });
  const cpuUs = process.cpuUsage(cpuAtStart);
  const sentInWindow = sent - sentAtWindowStart;
  const slipSnap = slip.snapshot();

  // Stop every stream the way Twilio does: a `stop` message, then the socket closes.
  for (const s of live) {
    s.finished = true;
    if (s.socket === null || s.socket.destroyed) continue;
    s.socket.write(frame(stopMessage(s.ids, ++s.seq), s.mask, -1, 0));
    s.socket.end();
  }
  await new Promise((r) => setTimeout(r, 200));
  for (const s of live) s.socket?.destroy();

  emit({
    type: 'done',
    report: {
      sent,
      sentInWindow,
      scheduledInWindow: measurePeriods * units,
      windowMs,
      slip: slipSnap,
      cpuUs: cpuUs.user + cpuUs.system,
      cpuSystemUs: cpuUs.system,
      blockedWrites,
      closedEarly: live.filter((s) => s.closedEarly).length,
      errors,
    },
  });
}

if (process.send !== undefined) {
  setTimeout(() => process.exit(3), MAX_LIFE_MS).unref();
  process.on('disconnect', () => process.exit(0));
  process.once('message', (cfg: GeneratorConfig) => {
    run(cfg, (e) => process.send!(e)).then(
      () => setTimeout(() => process.exit(0), 100),
      (err: unknown) => {
        process.stderr.write(`load generator failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        process.exit(2);
      },
    );
  });
}
