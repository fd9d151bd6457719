/**
 * The load generator: N Twilio-like Media Streams over raw TCP sockets, in its own process
 * (pinned to its own core by bench/ingest.bench.ts), driven over IPC.
 *
 * Each stream does the WebSocket handshake by hand, sends `connected` and `start`, then one
 * `media` message every 20 ms per track, each its own masked text frame (Nagle off). A stream's
 * tracks leave together, in one write per stream per period; streams are staggered evenly across
 * the 20 ms period:
 *
 *   stream s, phase(s) = s / streams * 20 ms
 *   period p:  ──s0──s1──s2── … ──s(n-1)──│──s0──s1── …      each stream once per period
 *
 * Built to drive 1,000+ streams from one core on schedule (the server, not the generator, must
 * be the limit): every stream keeps its frames pre-built and pre-masked in one Buffer, and a
 * send only patches the bytes that change in place (the sequence number, chunk and timestamp
 * digits and the 12-character send stamp, each XORed with the mask at its offset). A frame is
 * rebuilt only when a counter gains a digit (its length changes), a handful of times per run,
 * and copied only when the previous write of it is still queued in the socket (counted as a
 * blocked write). One timer tick sends every stream that has come due, with one clock read for
 * the schedule; the send stamp is still taken right before each write, on the shared monotonic
 * clock (bench/lib/stamp.ts), so lag never includes the generator's own loop. How late a send
 * is against its schedule ("slip") is measured too, so a saturated generator is reported as
 * such instead of being blamed on the server.
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
  /** Sends that found their previous write still queued, so patched a fresh copy. */
  copiedFrames: number;
  /** Frame rebuilds (a counter gained a digit). */
  rebuilds: number;
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
  /** Chunks sent per track (the next media message carries chunk + 1). */
  chunk = 0;
  readonly mask = randomBytes(4);
  /** Base64 payload: 12 placeholder characters for the stamp, then 204 of constant audio. */
  payload = '';
  /** The stream's media frames for one period (one per track), masked, patched per send. */
  wire: Buffer = Buffer.alloc(0);
  /** Per track, offsets in `wire` of the patched fields and their current digit counts. */
  readonly at: FrameOffsets[] = [];
  closedEarly = false;
  finished = false;
}

interface FrameOffsets {
  seq: number;
  seqDigits: number;
  chunk: number;
  chunkDigits: number;
  ts: number;
  tsDigits: number;
  stamp: number;
  /** Where the frame's masked payload starts in `wire` (the mask index counts from here). */
  data: number;
}

const digitCount = (v: number): number => (v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10_000 ? 4 : v < 100_000 ? 5 : v < 1_000_000 ? 6 : v < 10_000_000 ? 7 : String(v).length);
const tsOf = (chunk: number): number => 100 + (chunk - 1) * PERIOD_MS;

/** One masked text frame (the handshake's `connected`/`start`/`stop`, and templates). */
function frame(text: string, mask: Buffer): Buffer {
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
  for (let i = 0; i < len; i++) buf[p + i] = buf[p + i]! ^ mask[i & 3]!;
  return buf;
}

/**
 * Rebuilds `s.wire` for the next period's messages (sequence numbers s.seq + 1 …, chunk
 * s.chunk + 1) and records where their changing fields sit. Run at the start and whenever a
 * counter gains a digit.
 */
function rebuild(s: Stream, tracks: readonly ('inbound' | 'outbound')[]): void {
  const parts: Buffer[] = [];
  let off = 0;
  s.at.length = 0;
  const chunk = s.chunk + 1;
  for (let t = 0; t < tracks.length; t++) {
    const seq = s.seq + 1 + t;
    const text = mediaMessage(s.ids.streamSid, seq, tracks[t]!, chunk, tsOf(chunk), s.payload);
    const f = frame(text, s.mask);
    const data = f.length - text.length;
    const seqAt = text.indexOf('"sequenceNumber":"') + '"sequenceNumber":"'.length;
    const chunkAt = text.indexOf('"chunk":"') + '"chunk":"'.length;
    const tsAt = text.indexOf('"timestamp":"') + '"timestamp":"'.length;
    const stampAt = text.indexOf('"payload":"') + '"payload":"'.length;
    s.at.push({
      seq: off + data + seqAt,
      seqDigits: digitCount(seq),
      chunk: off + data + chunkAt,
      chunkDigits: digitCount(chunk),
      ts: off + data + tsAt,
      tsDigits: digitCount(tsOf(chunk)),
      stamp: off + data + stampAt,
      data: off + data,
    });
    parts.push(f);
    off += f.length;
  }
  s.wire = Buffer.concat(parts, off);
}

/** Writes `v` (exactly `width` decimal digits) masked into `buf` at `at`. */
function patchDigits(buf: Buffer, at: number, data: number, mask: Buffer, v: number, width: number): void {
  for (let i = width - 1; i >= 0; i--) {
    const d = v % 10;
    v = (v - d) / 10;
    buf[at + i] = (48 + d) ^ mask[(at + i - data) & 3]!;
  }
}

const stampScratch = Buffer.alloc(STAMP_B64_CHARS);

/** Writes the send stamp's 12 base64 characters masked into `buf` at `at`. */
function patchStamp(buf: Buffer, at: number, data: number, mask: Buffer, sentMs: number): void {
  writeStampBase64(sentMs, stampScratch, 0);
  for (let i = 0; i < STAMP_B64_CHARS; i++) buf[at + i] = stampScratch[i]! ^ mask[(at + i - data) & 3]!;
}

/**
 * Loopback source addresses the streams are spread over (127.0.1.1 …): Twilio's streams come
 * from many media servers, and the gateway caps connections per client address that have not
 * sent their request yet (src/gateway/http/http-limits.ts, 64); a burst of 500 connects from one
 * address would trip it, which no real burst does. Linux routes all of 127/8 to the loopback.
 */
const SOURCE_ADDRESSES = 32;

function handshake(port: number, s: Stream, index: number): Promise<string | null> {
  return new Promise((resolve) => {
    const localAddress = `127.0.1.${1 + (index % SOURCE_ADDRESSES)}`;
    const socket = connect({ port, host: '127.0.0.1', localAddress, noDelay: true });
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
      // Closed before the 101 (refused without an answer): the caller retries.
      if (s.socket === null) resolve('closed');
      else if (s.socket === socket && !s.finished) s.closedEarly = true;
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
    rebuild(s, tracks);
    streams.push(s);
  }

  // Connect with bounded concurrency; a 503 (admission) is retried a few times, then counted.
  const t0 = performance.now();
  const rejected: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const index = next++;
      const s = streams[index]!;
      let status: string | null = 'none';
      for (let attempt = 0; attempt < 5 && status !== null; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 100 * attempt));
        status = await handshake(cfg.port, s, index);
      }
      if (status !== null) rejected[status] = (rejected[status] ?? 0) + 1;
      else {
        s.socket!.write(frame(connectedMessage(), s.mask));
        s.socket!.write(frame(startMessage(s.ids, tracks), s.mask));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(cfg.connectConcurrency ?? 32, n) }, worker));
  const live = streams.filter((s) => s.socket !== null);
  emit({ type: 'connected', ok: live.length, failed: n - live.length, rejected, ms: performance.now() - t0 });
  // Let every session reach STARTED before media flows.
  await new Promise((r) => setTimeout(r, 300));

  const units = live.length;
  const nTracks = tracks.length;
  const warmupPeriods = Math.round(cfg.warmupMs / PERIOD_MS);
  const measurePeriods = Math.round(cfg.measureMs / PERIOD_MS);
  const totalPeriods = warmupPeriods + measurePeriods;
  const phase = new Float64Array(units);
  for (let u = 0; u < units; u++) phase[u] = (u / units) * PERIOD_MS;

  const slip = new LagRecorder();
  let sent = 0;
  let sentAtWindowStart = 0;
  let blockedWrites = 0;
  let copiedFrames = 0;
  let rebuilds = 0;
  let errors = 0;
  let cpuAtStart = process.cpuUsage();
  let windowStartMs = 0;
  let windowMs = 0;

  /** Patches stream `st`'s frames for this period (or rebuilds them) and writes them at once. */
  const send = (st: Stream, due: number): void => {
    const socket = st.socket;
    if (socket === null || socket.destroyed) {
      errors += nTracks;
      return;
    }
    const chunk = st.chunk + 1;
    const ts = tsOf(chunk);
    const at = st.at;
    if (digitCount(st.seq + nTracks) !== at[nTracks - 1]!.seqDigits || digitCount(st.seq + 1) !== at[0]!.seqDigits || digitCount(chunk) !== at[0]!.chunkDigits || digitCount(ts) !== at[0]!.tsDigits) {
      rebuild(st, tracks);
      rebuilds++;
    } else if (socket.writableLength > 0) {
      // The last write of this buffer may still be queued: patch a copy, never bytes in flight.
      st.wire = Buffer.from(st.wire);
      copiedFrames++;
    }
    const wire = st.wire;
    const mask = st.mask;
    for (let t = 0; t < nTracks; t++) {
      const o = at[t]!;
      patchDigits(wire, o.seq, o.data, mask, st.seq + 1 + t, o.seqDigits);
      patchDigits(wire, o.chunk, o.data, mask, chunk, o.chunkDigits);
      patchDigits(wire, o.ts, o.data, mask, ts, o.tsDigits);
    }
    // Stamped last, right before the write: lag starts here.
    const sentMs = monoNowMs();
    for (let t = 0; t < nTracks; t++) patchStamp(wire, at[t]!.stamp, at[t]!.data, mask, sentMs);
    if (!socket.write(wire)) blockedWrites++;
    st.seq += nTracks;
    st.chunk = chunk;
    sent += nTracks;
    slip.record(sentMs - due);
  };

  const base = monoNowMs() + 5;
  let period = 0;
  let cursor = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      // One clock read decides what is due in this tick; every due stream is sent now.
      const now = monoNowMs();
      for (;;) {
        const due = base + period * PERIOD_MS + phase[cursor]!;
        if (due > now) break;
        send(live[cursor]!, due);
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
    s.socket.write(frame(stopMessage(s.ids, ++s.seq), s.mask));
    s.socket.end();
  }
  await new Promise((r) => setTimeout(r, 200));
  for (const s of live) s.socket?.destroy();

  emit({
    type: 'done',
    report: {
      sent,
      sentInWindow,
      scheduledInWindow: measurePeriods * units * nTracks,
      windowMs,
      slip: slipSnap,
      cpuUs: cpuUs.user + cpuUs.system,
      cpuSystemUs: cpuUs.system,
      blockedWrites,
      copiedFrames,
      rebuilds,
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
