/**
 * Test tools for the recording sink: the real hello-world capture as frames, a feeder that
 * hands frames over the way a stream session does (borrowed buffers, scribbled after accept),
 * an independent G.711 decoder and WAV reader, and sox.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino, type Logger } from 'pino';
import type { MediaFrame, Sink, SinkContext } from '../../../src/sinks/sink.js';
import type { StreamInfo, Track } from '../../../src/core/stream.js';
import { decodeMulaw } from '../../../src/twilio/mulaw.js';

const run = promisify(execFile);

/** The capture: in this repo's test fixtures if copied there, else the shared fixtures beside it. */
export const HELLO_WORLD = ((): string => {
  const local = fileURLToPath(new URL('../../fixtures/twilio-captures/hello-world.jsonl', import.meta.url));
  if (existsSync(local)) return local;
  return fileURLToPath(new URL('../../../../shared/fixtures/twilio-captures/hello-world.jsonl', import.meta.url));
})();

export interface CapturedFrame {
  track: Track;
  timestampMs: number;
  chunk: number;
  sequenceNumber: number;
  mulaw: Uint8Array;
}

export interface Capture {
  info: StreamInfo;
  frames: CapturedFrame[];
}

/** Parses the capture's start and media messages. */
export function loadCapture(path = HELLO_WORLD): Capture {
  let info: StreamInfo | null = null;
  const frames: CapturedFrame[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const m = JSON.parse(line);
    if (m.event === 'start') {
      info = {
        accountSid: m.start.accountSid,
        callSid: m.start.callSid,
        streamSid: m.start.streamSid,
        tracks: m.start.tracks,
        customParameters: m.start.customParameters,
        conferenceSid: null,
        startedAtMs: Date.parse('2026-01-02T03:04:05.000Z'),
      };
    } else if (m.event === 'media') {
      frames.push({
        track: m.media.track,
        timestampMs: Number(m.media.timestamp),
        chunk: Number(m.media.chunk),
        sequenceNumber: Number(m.sequenceNumber),
        mulaw: new Uint8Array(Buffer.from(m.media.payload, 'base64')),
      });
    }
  }
  if (info === null) throw new Error('capture has no start message');
  return { info, frames };
}

/** ITU G.711 mu-law expansion from the formula in docs/twilio-protocol.md §2.3 (not our table). */
export function g711(code: number): number {
  const v = ~code & 0xff;
  const sign = v & 0x80;
  const e = (v >> 4) & 7;
  const m = v & 0x0f;
  const mag = (((m << 3) + 0x84) << e) - 0x84;
  return sign ? -mag : mag;
}

export function g711All(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = g711(bytes[i]!);
  return out;
}

/**
 * Hands frames to a sink as the session does: one MediaFrame object and one pair of buffers,
 * reused for every frame, overwritten with garbage right after accept() so a sink that kept a
 * reference would record garbage.
 */
export class Feeder {
  readonly #pcm = new Int16Array(4096);
  readonly #mulaw = new Uint8Array(4096);
  readonly #frame: MediaFrame;
  #last = Number.NEGATIVE_INFINITY;

  constructor(readonly sink: Sink) {
    this.#frame = {
      track: 'inbound',
      trackIndex: 0,
      timestampMs: 0,
      chunk: 0,
      sequenceNumber: 0,
      samples: 0,
      pcm: this.#pcm.subarray(0, 0),
      mulaw: this.#mulaw.subarray(0, 0),
      energy: 0,
      receivedAt: 0,
      late: false,
    };
  }

  feed(track: Track, timestampMs: number, mulaw: Uint8Array): void {
    const f = this.#frame;
    const n = mulaw.length;
    this.#mulaw.set(mulaw);
    f.track = track;
    f.trackIndex = track === 'inbound' ? 0 : 1;
    f.timestampMs = timestampMs;
    f.samples = n;
    f.pcm = this.#pcm.subarray(0, n);
    f.mulaw = this.#mulaw.subarray(0, n);
    f.energy = decodeMulaw(this.#mulaw, n, this.#pcm);
    f.receivedAt = performance.now();
    f.late = timestampMs < this.#last;
    if (timestampMs > this.#last) this.#last = timestampMs;
    this.sink.accept(f);
    this.#pcm.fill(0x5555);
    this.#mulaw.fill(0x00);
  }
}

/** A captured pino logger and a fresh stats object. */
export function testContext(): SinkContext & { lines: Record<string, unknown>[]; log: Logger } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines, stats: { dropped: 0, errors: 0, queued: 0 } };
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-rec-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface WavFile {
  size: number;
  riffSize: number;
  formatTag: number;
  channels: number;
  sampleRate: number;
  byteRate: number;
  blockAlign: number;
  bits: number;
  factFrames: number | null;
  dataOffset: number;
  dataSize: number;
  data: Buffer;
}

/** Reads a RIFF/WAVE file chunk by chunk (independent of src/sinks/recording/wav-header.ts). */
export function readWav(path: string): WavFile {
  const b = readFileSync(path);
  if (b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'WAVE') throw new Error(`${path}: not a WAVE file`);
  const out: Partial<WavFile> = { size: b.length, riffSize: b.readUInt32LE(4), factFrames: null };
  let at = 12;
  while (at + 8 <= b.length) {
    const id = b.toString('latin1', at, at + 4);
    const size = b.readUInt32LE(at + 4);
    if (id === 'fmt ') {
      out.formatTag = b.readUInt16LE(at + 8);
      out.channels = b.readUInt16LE(at + 10);
      out.sampleRate = b.readUInt32LE(at + 12);
      out.byteRate = b.readUInt32LE(at + 16);
      out.blockAlign = b.readUInt16LE(at + 20);
      out.bits = b.readUInt16LE(at + 22);
    } else if (id === 'fact') {
      out.factFrames = b.readUInt32LE(at + 8);
    } else if (id === 'data') {
      out.dataOffset = at + 8;
      out.dataSize = size;
      out.data = b.subarray(at + 8, at + 8 + size);
      break;
    }
    at += 8 + size + (size & 1);
  }
  if (out.data === undefined || out.formatTag === undefined) throw new Error(`${path}: no fmt/data chunk`);
  return out as WavFile;
}

/** 16-bit little-endian samples of one channel of a PCM WAV. */
export function channel(wav: WavFile, ch: number): Int16Array {
  const frames = Math.floor(wav.data.length / wav.blockAlign);
  const out = new Int16Array(frames);
  for (let i = 0; i < frames; i++) out[i] = wav.data.readInt16LE(i * wav.blockAlign + ch * 2);
  return out;
}

/** Bytes of one channel of an 8-bit (mu-law) WAV. */
export function channelBytes(wav: WavFile, ch: number): Uint8Array {
  const frames = Math.floor(wav.data.length / wav.blockAlign);
  const out = new Uint8Array(frames);
  for (let i = 0; i < frames; i++) out[i] = wav.data[i * wav.blockAlign + ch]!;
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** `sox --i` of a file, as a map of its fields ("Channels" → "1", …). */
export async function soxInfo(path: string): Promise<Record<string, string>> {
  const { stdout } = await run('sox', ['--i', path]);
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/** sox decodes the file to raw 16-bit signed little-endian samples (all channels interleaved). */
export async function soxDecode(path: string): Promise<Int16Array> {
  const { stdout } = await run('sox', [path, '-t', 'raw', '-e', 'signed-integer', '-b', '16', '-L', '-'], {
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
  });
  const b = stdout as unknown as Buffer;
  const out = new Int16Array(b.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = b.readInt16LE(i * 2);
  return out;
}

/** First index where a and b differ, or -1 (and -2 when only the lengths differ). */
export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : -2;
}
