/**
 * The recording I/O thread: one worker thread owns every recording file, so the event loop that
 * carries the media never calls fs. A sink posts small requests; requests made in the same tick
 * (a flush bucket's writes, a burst of opens) travel in one postMessage, and their answers come
 * back batched the same way:
 *
 *   main thread                                      I/O thread
 *   sink.#drain ── flush {ring (shared), [off, len, at]…, ► pwrite(v) from the ring, then the
 *                         data size}                   header's sizes patched and written at 0
 *               ◄── written ────────────────────────── (sync: page-cache writes are short)
 *   sink.open   ── open {paths, layout, header} ───► mkdir, exclusive open, header
 *   first drain ── sidecar {json} (with its flush) ─► the sidecar, written once, in place
 *   sink.close  ── finish {sizes, header, manifest} ─► truncate, header, hash, fsync, manifest
 *               ◄── {bytes, sha256} ──────────────── over the sidecar, renames, one dir fsync
 *                                                     (on the finish thread, finisher.ts)
 *
 * The ring is a SharedArrayBuffer (sample-ring.ts), handed to the thread once (and again after a
 * resize): a write names slots the sink will not touch until the answer, so no byte is copied to
 * cross threads. Writes go to the page cache as they
 * did from the main thread, and the header is patched in the same request as the data it
 * describes, so the crash-safety contract (a killed process loses at most the last flush
 * interval; recover.ts repairs the rest) is unchanged.
 *
 * A finish is the I/O thread's only to hand on: it gives the descriptor to its own finish thread
 * (finisher.ts), which hashes the file, syncs it and writes the manifest at a lower priority than
 * the event loop, so a burst of stops neither competes with the media nor holds up the live
 * streams' writes behind its fsyncs. The hash is a read of the finished file from the descriptor
 * still open (page cache): a whole-file SHA-256 starts with the header, whose sizes are known only
 * at the end, so it cannot be folded in while the audio is written.
 *
 * The thread's code is io-worker.ts, loaded as a module beside this one (module-thread.ts):
 * dist/…/io-worker.js in production, or the .ts source through tsx's loader when this module runs
 * from source (tests, `tsx`). The thread starts on first use, is unref'd while nothing is
 * outstanding (it never keeps the process alive) and ref'd while a request is.
 */
import type { Worker } from 'node:worker_threads';
import type { IoAnswers, IoBatch, IoMessage, IoReply, IoRequest } from './io-messages.js';
import { spawnModuleThread } from './module-thread.js';

export type { IoReply, IoRequest } from './io-messages.js';

/** An error from the I/O thread, with the file system's code (EFBIG, ENOENT, …) kept. */
export class IoError extends Error {
  readonly code: string | undefined;
  /** open: the file was created before the failure. */
  readonly opened: boolean;
  /** flush: the writes that reached the file before the failure. */
  readonly written: number;
  constructor(reply: IoReply) {
    super(reply.error);
    this.name = 'IoError';
    this.code = reply.code;
    this.opened = reply.opened === true;
    this.written = reply.written ?? 0;
  }
}

interface Pending {
  resolve(r: IoReply): void;
  reject(err: Error): void;
}

let worker: Worker | null = null;
let nextId = 1;
let nextFile = 1;
const pending = new Map<number, Pending>();
/**
 * Flushes in flight, by slot: a flush's id is -1 - slot, and a slot is reused once answered.
 * At several hundred flushes a second a Map keyed by ever-new ids grew and shrank (rehashing)
 * with every flush bucket (bench/RESULTS.md, perf-steady); a dense array of reused slots does not.
 */
const flushWaiters: (Pending | null)[] = [];
const freeFlushSlots: number[] = [];
let outbox: IoMessage[] = [];
/** This turn's flushes, encoded as IoBatch.flushes says; grows, and is copied out at each post. */
let flushes = new Float64Array(8192);
let flushLen = 0;
let flushRings: (number | SharedArrayBuffer)[] = [];
let posting = false;
/** What a flush that succeeded resolves to (the sink reads nothing from it). */
const FLUSHED: IoReply = Object.freeze({ id: 0 });

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  for (let slot = 0; slot < flushWaiters.length; slot++) {
    const p = flushWaiters[slot];
    if (p === null || p === undefined) continue;
    flushWaiters[slot] = null;
    freeFlushSlots.push(slot);
    p.reject(err);
  }
}

/** Flushes sent and not yet answered: every slot ever made but the free ones. */
function flushesInFlight(): number {
  return flushWaiters.length - freeFlushSlots.length;
}

function start(): Worker {
  const w = spawnModuleThread(import.meta.url, 'io-worker', 'streamgate-recording-io');
  w.on('message', ({ replies, flushed }: IoAnswers) => {
    if (flushed !== null) {
      for (let i = 0; i < flushed.length; i++) takeFlushWaiter(flushed[i]!)?.resolve(FLUSHED);
    }
    for (const m of replies) {
      const p = m.id < 0 ? takeFlushWaiter(m.id) : pending.get(m.id);
      if (p === undefined || p === null) continue;
      if (m.id >= 0) pending.delete(m.id);
      if (m.error !== undefined) p.reject(new IoError(m));
      else p.resolve(m);
    }
    if (pending.size === 0 && flushesInFlight() === 0) w.unref();
  });
  // A thread that dies fails its outstanding requests: those streams degrade (their sinks see
  // the error), their files stay open until the process ends (module-thread.ts) and recover.ts
  // repairs them at the next start; the next request starts a new thread.
  w.on('error', (err) => {
    if (worker === w) worker = null;
    failAll(err);
  });
  w.on('exit', (code) => {
    if (worker === w) worker = null;
    failAll(new Error(`recording I/O thread exited with code ${code}`));
  });
  w.unref();
  return w;
}

function post(): void {
  posting = false;
  const f = flushLen > 0 ? flushes.slice(0, flushLen) : null;
  const batch: IoBatch = { requests: outbox, flushes: f, rings: flushRings };
  outbox = [];
  flushLen = 0;
  if (flushRings.length > 0) flushRings = [];
  const w = (worker ??= start());
  w.ref();
  // The copy of the flushes is ours alone: moved, not cloned.
  w.postMessage(batch, f !== null ? [f.buffer] : []);
}

function sendSoon(): void {
  if (!posting) {
    posting = true;
    queueMicrotask(post);
  }
}

/** The waiter of flush `id` (-1 - its slot), its slot freed; null when there is none. */
function takeFlushWaiter(id: number): Pending | null {
  const slot = -1 - id;
  const p = flushWaiters[slot] ?? null;
  if (p === null) return null;
  flushWaiters[slot] = null;
  freeFlushSlots.push(slot);
  return p;
}

function waitFor(id: number): Promise<IoReply> {
  return new Promise<IoReply>((resolve, reject) => pending.set(id, { resolve, reject }));
}

/** Sends one request; requests made in the same tick go in one message. */
export function ioRequest(req: IoRequest): Promise<IoReply> {
  const id = nextId++;
  outbox.push({ ...req, id });
  sendSoon();
  return waitFor(id);
}

/**
 * Sends one stream's drain (IoBatch.flushes): `writes` are (ring offset or -1 for silence,
 * length, file position) triples, written in order, then the header patched to say `dataBytes`
 * of data (-1: no patch). `ring` only when it changed. Rejects with an IoError whose `written`
 * counts the writes that reached the file.
 */
export function ioFlush(file: number, ring: SharedArrayBuffer | undefined, writes: readonly number[], dataBytes: number): Promise<IoReply> {
  const slot = freeFlushSlots.pop() ?? flushWaiters.length;
  const id = -1 - slot;
  const need = flushLen + 4 + writes.length;
  if (need > flushes.length) {
    const grown = new Float64Array(Math.max(need, flushes.length * 2));
    grown.set(flushes.subarray(0, flushLen));
    flushes = grown;
  }
  const f = flushes;
  f[flushLen] = id;
  f[flushLen + 1] = file;
  f[flushLen + 2] = dataBytes;
  f[flushLen + 3] = writes.length / 3;
  flushLen += 4;
  for (let i = 0; i < writes.length; i++) f[flushLen + i] = writes[i]!;
  flushLen += writes.length;
  if (ring !== undefined) flushRings.push(id, ring);
  sendSoon();
  return new Promise<IoReply>((resolve, reject) => (flushWaiters[slot] = { resolve, reject }));
}

/**
 * Starts the thread now (idle, unref'd) so the first stream's open does not wait for a thread
 * to boot: the recording factory calls it when it is made.
 */
export function startIoThread(): void {
  worker ??= start();
}

/** A new file number for {@link ioRequest}'s `open` (the thread keys its handles by it). */
export function newIoFile(): number {
  return nextFile++;
}
