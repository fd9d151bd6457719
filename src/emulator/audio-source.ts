/**
 * Audio sources: what a participant says, as a sequence of mu-law frames. A source answers
 * three questions per frame index: its bytes (for mixing), its exact base64 payload (what goes
 * on the wire) and its media-time offset from frame 0 (what `media.timestamp` advances by).
 * Most sources are 160-byte frames 20 ms apart; a replayed capture keeps its own payloads and
 * timestamps, byte for byte.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { encodeMulaw } from '../twilio/mulaw.js';
import { parseCapture } from './capture.js';
import type { AudioSpec } from './types.js';
import { wavToMulaw } from './wav.js';

/** Bytes in one 20 ms frame of 8 kHz mu-law. */
export const FRAME_BYTES = 160;
export const FRAME_MS = 20;
/** mu-law positive zero. */
export const SILENCE_BYTE = 0xff;
export const SILENCE_FRAME: Uint8Array = new Uint8Array(FRAME_BYTES).fill(SILENCE_BYTE);
export const SILENCE_PAYLOAD: string = Buffer.from(SILENCE_FRAME).toString('base64');

export interface AudioSource {
  readonly description: string;
  /** Number of frames; Infinity for endless sources. */
  readonly frameCount: number;
  /** mu-law bytes of frame `i` (0 <= i < frameCount). Borrowed: do not modify. */
  bytes(i: number): Uint8Array;
  /** Standard base64 of frame `i`, exactly as it goes on the wire. */
  payload(i: number): string;
  /** Media time of frame `i` relative to frame 0, ms. */
  offsetMs(i: number): number;
  /** The `media.timestamp` of frame 0 when the source fixes it (a replayed capture). */
  readonly firstTimestampMs?: number;
}

/** Endless (or `ms`-long) silence. */
export class SilenceSource implements AudioSource {
  readonly description: string;
  readonly frameCount: number;
  constructor(ms?: number) {
    this.frameCount = ms === undefined ? Infinity : Math.ceil(ms / FRAME_MS);
    this.description = ms === undefined ? 'silence' : `silence ${ms} ms`;
  }
  bytes(): Uint8Array {
    return SILENCE_FRAME;
  }
  payload(): string {
    return SILENCE_PAYLOAD;
  }
  offsetMs(i: number): number {
    return i * FRAME_MS;
  }
}

/** Contiguous mu-law audio cut into 160-byte frames; the last frame is padded with silence. */
export class MulawSource implements AudioSource {
  readonly description: string;
  readonly frameCount: number;
  readonly #frames: Uint8Array[];
  // Base64 is computed once per frame and kept: load runs send the same file many times.
  readonly #payloads: (string | undefined)[];

  constructor(audio: Uint8Array, description: string) {
    this.description = description;
    this.frameCount = Math.ceil(audio.length / FRAME_BYTES);
    this.#frames = new Array<Uint8Array>(this.frameCount);
    for (let i = 0; i < this.frameCount; i++) {
      const frame = new Uint8Array(FRAME_BYTES).fill(SILENCE_BYTE);
      frame.set(audio.subarray(i * FRAME_BYTES, (i + 1) * FRAME_BYTES));
      this.#frames[i] = frame;
    }
    this.#payloads = new Array<string | undefined>(this.frameCount);
  }
  bytes(i: number): Uint8Array {
    return this.#frames[i]!;
  }
  payload(i: number): string {
    return (this.#payloads[i] ??= Buffer.from(this.#frames[i]!.buffer, this.#frames[i]!.byteOffset, FRAME_BYTES).toString('base64'));
  }
  offsetMs(i: number): number {
    return i * FRAME_MS;
  }
}

/** Frames with their own payload strings and timestamps (a replayed capture). */
export class RecordedSource implements AudioSource {
  readonly description: string;
  readonly frameCount: number;
  readonly firstTimestampMs: number;
  readonly #payloads: readonly string[];
  readonly #offsets: readonly number[];
  readonly #bytes: (Uint8Array | undefined)[];

  constructor(payloads: readonly string[], timestamps: readonly number[], description: string) {
    if (payloads.length !== timestamps.length) throw new InvalidInputError('payloads and timestamps differ in length');
    this.description = description;
    this.frameCount = payloads.length;
    this.#payloads = payloads;
    const first = timestamps[0] ?? 0;
    this.firstTimestampMs = first;
    this.#offsets = timestamps.map((t) => t - first);
    this.#bytes = new Array<Uint8Array | undefined>(payloads.length);
  }
  bytes(i: number): Uint8Array {
    return (this.#bytes[i] ??= new Uint8Array(Buffer.from(this.#payloads[i]!, 'base64')));
  }
  payload(i: number): string {
    return this.#payloads[i]!;
  }
  offsetMs(i: number): number {
    return this.#offsets[i]!;
  }
}

/** Plays `inner` forever. */
export class LoopSource implements AudioSource {
  readonly description: string;
  readonly frameCount = Infinity;
  readonly firstTimestampMs?: number;
  readonly #inner: AudioSource;
  readonly #period: number;
  constructor(inner: AudioSource) {
    if (!Number.isFinite(inner.frameCount) || inner.frameCount < 1) throw new InvalidInputError('only finite, non-empty audio can loop');
    this.#inner = inner;
    this.#period = inner.offsetMs(inner.frameCount - 1) + FRAME_MS;
    this.description = `${inner.description} (looped)`;
    if (inner.firstTimestampMs !== undefined) this.firstTimestampMs = inner.firstTimestampMs;
  }
  bytes(i: number): Uint8Array {
    return this.#inner.bytes(i % this.#inner.frameCount);
  }
  payload(i: number): string {
    return this.#inner.payload(i % this.#inner.frameCount);
  }
  offsetMs(i: number): number {
    const n = this.#inner.frameCount;
    return Math.floor(i / n) * this.#period + this.#inner.offsetMs(i % n);
  }
}

/** A sine tone as mu-law. */
export function toneSource(hz: number, ms: number, amplitude = 0.5): MulawSource {
  const n = Math.round((ms * 8000) / 1000);
  const pcm = new Int16Array(n);
  const peak = Math.max(0, Math.min(1, amplitude)) * 32767;
  for (let i = 0; i < n; i++) pcm[i] = Math.round(peak * Math.sin((2 * Math.PI * hz * i) / 8000));
  return new MulawSource(encodeMulaw(pcm), `tone ${hz} Hz ${ms} ms`);
}

/** True when every byte of `frame` is mu-law zero (0xFF positive, 0x7F negative). */
export function isSilent(frame: Uint8Array): boolean {
  for (let i = 0; i < frame.length; i++) {
    const b = frame[i]!;
    if (b !== 0xff && b !== 0x7f) return false;
  }
  return true;
}

/** Loads an AudioSpec; `loop` wraps finite audio to repeat forever. */
export async function loadAudio(spec: AudioSpec | undefined, loop = false): Promise<AudioSource> {
  const source = await loadOnce(spec);
  return loop && Number.isFinite(source.frameCount) && source.frameCount > 0 ? new LoopSource(source) : source;
}

async function loadOnce(spec: AudioSpec | undefined): Promise<AudioSource> {
  if (spec === undefined) return new SilenceSource();
  if (typeof spec === 'string') return loadFile(spec);
  switch (spec.type) {
    case 'file':
      return loadFile(spec.path);
    case 'silence':
      return new SilenceSource(spec.ms);
    case 'tone':
      return toneSource(spec.hz, spec.ms, spec.amplitude);
    case 'mulaw': {
      const bytes = typeof spec.data === 'string' ? new Uint8Array(Buffer.from(spec.data, 'base64')) : spec.data;
      return new MulawSource(bytes, `mu-law ${bytes.length} bytes`);
    }
    default:
      throw new InvalidInputError(`unknown audio type ${JSON.stringify((spec as { type?: unknown }).type)}`);
  }
}

async function loadFile(path: string): Promise<AudioSource> {
  const ext = extname(path).toLowerCase();
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch (err) {
    throw new InvalidInputError(`cannot read audio file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  switch (ext) {
    case '.wav':
    case '.wave':
      return new MulawSource(wavToMulaw(content, path), path);
    case '.ulaw':
    case '.mulaw':
    case '.ul':
    case '.raw':
      return new MulawSource(new Uint8Array(content), path);
    case '.jsonl':
    case '.ndjson': {
      const capture = parseCapture(content.toString('utf8'), path);
      return new RecordedSource(capture.payloads, capture.timestamps, path);
    }
    default:
      throw new InvalidInputError(`${path}: unknown audio file type (use .wav, .ulaw or .jsonl)`);
  }
}
