/**
 * The media path's mu-law decoder: WebAssembly SIMD (mulaw-simd.wat), 16 bytes per step,
 * behind a shared decode scratch.
 *
 * The decoder reads and writes its own linear memory, so the scratch is that memory: `raw` is
 * the input region (base64 payloads are decoded straight into it), `pcm` the output region.
 *
 *     memory:  [ raw: capacity bytes (mu-law in) | pcm: capacity int16 (PCM out) | unused ]
 *              0                                 capacity                        3 * capacity
 *
 * One scratch serves every session of the process: a message is handled synchronously from
 * base64 to fan-out, and sinks copy what they keep (the frame is borrowed, src/sinks/sink.ts),
 * so no two frames are ever in it at once. Growing it (`reserve`) replaces the memory's
 * ArrayBuffer, which detaches every view made before: callers re-read `raw` and `pcm` after it.
 *
 * Where WebAssembly SIMD is missing, the same interface runs the JS table decoder (mulaw.ts),
 * which stays the reference: test/twilio/mulaw-simd.test.ts proves both agree on every code
 * and on random frames of every length; bench/mulaw-decode.bench.ts measures them.
 */
import { decodeMulaw } from './mulaw.js';
import { MULAW_SIMD_WASM_BASE64 } from './mulaw-simd.wasm.js';

/** A reusable decode buffer pair, with the decoder that works on it. */
export interface DecodeScratch {
  /** 'wasm-simd', or 'js-table' when WebAssembly SIMD is unavailable. */
  readonly kind: 'wasm-simd' | 'js-table';
  /** Input region, `capacity` bytes: put the mu-law here. Replaced by `reserve`. */
  readonly raw: Buffer;
  /** Output region, `capacity` samples: `decode` writes the PCM here. Replaced by `reserve`. */
  readonly pcm: Int16Array;
  /**
   * The first 160 bytes / samples of `raw` / `pcm` (Twilio's 20 ms frame), made once per
   * (re)allocation so the media path hands sinks a frame without making views. Plain typed
   * arrays (not Buffer), so a sink's .slice() copies. Replaced by `reserve`.
   */
  readonly raw160: Uint8Array;
  readonly pcm160: Int16Array;
  /** Bytes `raw` holds (a multiple of 16). */
  readonly capacity: number;
  /**
   * Decodes raw[0, length) into pcm[0, length) and returns the sum of squared samples (as
   * decodeMulaw does). Writes nothing past pcm[length - 1]. Throws a RangeError when `length`
   * exceeds `capacity`.
   */
  decode(length: number): number;
  /** Makes `capacity` at least `bytes`; when it grows, `raw` and `pcm` are new views. */
  reserve(bytes: number): void;
}

const PAGE = 65536;
/** wasm32 linear memory holds at most 65536 pages (4 GiB). */
const MAX_PAGES = 65536;

// The few WebAssembly JS API members used here: the project's lib (ES2023, no DOM) does not
// declare them, and looking WebAssembly up on globalThis also covers a runtime without it.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
}
interface DecoderExports {
  memory: WasmMemory;
  decode(src: number, dst: number, len: number): number;
}

const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

function wasmBytes(): Uint8Array {
  return Buffer.from(MULAW_SIMD_WASM_BASE64, 'base64');
}

/** True when this runtime compiles the SIMD module (Node 20's V8 does). */
export function wasmSimdSupported(): boolean {
  try {
    return wasmApi !== undefined && wasmApi.validate(wasmBytes());
  } catch {
    return false;
  }
}

class WasmDecodeScratch implements DecodeScratch {
  readonly kind = 'wasm-simd' as const;
  raw: Buffer;
  pcm: Int16Array;
  raw160: Uint8Array;
  pcm160: Int16Array;
  capacity: number;
  readonly #memory: WasmMemory;
  readonly #decode: (src: number, dst: number, len: number) => number;

  constructor(api: WasmApi, capacity: number) {
    // 474 bytes: compiling synchronously at load takes well under a millisecond.
    const instance = new api.Instance(new api.Module(wasmBytes()), {});
    const exports = instance.exports as DecoderExports;
    this.#memory = exports.memory;
    this.#decode = exports.decode;
    this.capacity = 0;
    this.raw = Buffer.alloc(0);
    this.pcm = new Int16Array(0);
    this.raw160 = this.raw;
    this.pcm160 = this.pcm;
    this.#bind();
    this.reserve(capacity);
  }

  decode(length: number): number {
    if (length > this.capacity || length < 0) throw new RangeError(`decode length ${length} outside 0..${this.capacity}`);
    return this.#decode(0, this.capacity, length);
  }

  reserve(bytes: number): void {
    if (bytes <= this.capacity) return;
    // At least double, so a stream of slowly growing frames grows the memory a few times only.
    const want = roundUp16(Math.max(bytes, this.capacity * 2));
    const pages = Math.ceil((want * 3) / PAGE);
    if (pages > MAX_PAGES) throw new RangeError(`decode scratch cannot hold ${bytes} bytes`);
    const have = this.#memory.buffer.byteLength / PAGE;
    if (pages > have) this.#memory.grow(pages - have);
    this.#bind();
  }

  /** (Re)makes the views over the whole memory, which may be larger than asked. */
  #bind(): void {
    const buffer = this.#memory.buffer;
    const capacity = roundDown16(Math.floor(buffer.byteLength / 3));
    this.capacity = capacity;
    this.raw = Buffer.from(buffer, 0, capacity);
    this.pcm = new Int16Array(buffer, capacity, capacity);
    [this.raw160, this.pcm160] = frameViews(this.raw, this.pcm);
  }
}

class TableDecodeScratch implements DecodeScratch {
  readonly kind = 'js-table' as const;
  raw: Buffer;
  pcm: Int16Array;
  raw160: Uint8Array;
  pcm160: Int16Array;
  capacity: number;

  constructor(capacity: number) {
    this.capacity = roundUp16(capacity);
    this.raw = Buffer.allocUnsafe(this.capacity);
    this.pcm = new Int16Array(this.capacity);
    [this.raw160, this.pcm160] = frameViews(this.raw, this.pcm);
  }

  decode(length: number): number {
    if (length > this.capacity || length < 0) throw new RangeError(`decode length ${length} outside 0..${this.capacity}`);
    return decodeMulaw(this.raw, length, this.pcm);
  }

  reserve(bytes: number): void {
    if (bytes <= this.capacity) return;
    this.capacity = roundUp16(Math.max(bytes, this.capacity * 2));
    this.raw = Buffer.allocUnsafe(this.capacity);
    this.pcm = new Int16Array(this.capacity);
    [this.raw160, this.pcm160] = frameViews(this.raw, this.pcm);
  }
}

/** The 160-byte / 160-sample views at the start of `raw` / `pcm` (shorter if they are). */
function frameViews(raw: Buffer, pcm: Int16Array): [Uint8Array, Int16Array] {
  const n = Math.min(160, raw.length);
  return [new Uint8Array(raw.buffer, raw.byteOffset, n), pcm.subarray(0, n)];
}

function roundUp16(n: number): number {
  return Math.ceil(n / 16) * 16;
}

function roundDown16(n: number): number {
  return Math.floor(n / 16) * 16;
}

/**
 * A new scratch holding at least `capacity` bytes: the SIMD decoder where the runtime has it
 * (unless `simd` is false), else the JS table. The wasm one starts at one 64 KiB page, which
 * holds 21 840 bytes of mu-law and their PCM.
 */
export function createDecodeScratch(opts: { capacity?: number; simd?: boolean } = {}): DecodeScratch {
  const capacity = opts.capacity ?? 1024;
  if (opts.simd !== false && wasmApi !== undefined && wasmSimdSupported()) return new WasmDecodeScratch(wasmApi, capacity);
  return new TableDecodeScratch(capacity);
}

/** The process-wide scratch the media path decodes into (see the module comment). */
export const decodeScratch: DecodeScratch = createDecodeScratch();
