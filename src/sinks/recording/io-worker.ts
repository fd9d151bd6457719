/**
 * The recording I/O thread's code (started by io-thread.ts; the protocol is io-messages.ts). It
 * owns every recording file while it is written: requests arrive in batches, in order, and
 * answers go back batched per turn of this thread's loop. Writes are synchronous pwrites to the
 * page cache (short). Opens make their files synchronously on this thread too: their CPU
 * (creating a file is ~0.3 ms of kernel time on an ext4 VM disk) is this thread's, not four pool
 * threads' beside the event loop. A finish hands the file to the finish thread (finisher.ts), so
 * no fsync ever holds up the live streams' writes here.
 *
 * The thread keeps the process's priority: a lower one (it was 5 nicer for a while) did not
 * shorten the bursts' loop delay clearly, and on a host where other processes want the cores it
 * let the thread fall more than the rings' 5 s behind, which drops audio (bench/RESULTS.md,
 * "Issue 19 work"). The finish thread, which holds no audio, runs nicer.
 */
import { parentPort, type Worker } from 'node:worker_threads';
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { hostname } from 'node:os';
import { sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sha256OfFile, writeFullySync, writevFullySync } from './file-ops.js';
import { errorReply, type FinishJob, type IoAnswers, type IoBatch, type IoMessage, type IoReply } from './io-messages.js';
import { spawnModuleThread } from './module-thread.js';
import { FINISH_THREAD } from './finisher.js';
import { wavLayout, writeWavHeader, type WavLayout } from './wav-header.js';

type Op<K extends IoMessage['op']> = Extract<IoMessage, { op: K }>;

const port = parentPort!;
/** Silence blocks (16-bit zero or mu-law 0xFF): a silence write is at most one of these. */
const SILENCE = { pcm16: Buffer.alloc(65536, 0), mulaw: Buffer.alloc(65536, 0xff) };
/** One open .partial: its descriptor, its ring (as the latest flush that carried one sent it), its header. */
interface OpenFile {
  readonly fd: number;
  ring: Uint8Array | null;
  /** The header as last written; a flush patches its sizes here (wav-header.ts) and writes it. */
  readonly header: Buffer;
  readonly layout: WavLayout;
}
/** Open files by the sink's file number. */
const files = new Map<number, OpenFile>();
/** The views of one run of writes that continue each other in the file (reused). */
const runViews: Uint8Array[] = [];
/** Most writes merged into one pwritev (Linux's IOV_MAX is 1024; a drain rarely has more than 2). */
const MAX_RUN = 64;

let out: IoReply[] = [];
/** Ids of the flushes that succeeded this turn (all their writes and the header patch made). */
let flushedOut: number[] = [];
let queued = false;
function sendAnswers(): void {
  queued = false;
  const flushed = flushedOut.length > 0 ? Float64Array.from(flushedOut) : null;
  const answers: IoAnswers = { replies: out, flushed };
  out = [];
  flushedOut = [];
  port.postMessage(answers, flushed !== null ? [flushed.buffer] : []);
}
function answerSoon(): void {
  if (queued) return;
  queued = true;
  setImmediate(sendAnswers);
}
function answer(r: IoReply): void {
  out.push(r);
  answerSoon();
}

function failure(id: number, err: unknown, extra?: Partial<IoReply>): void {
  answer(errorReply(id, err, extra));
}

/**
 * Spare inodes. On ext4 creating a directory or a file costs ~0.25 ms of kernel CPU, and a
 * stream's start creates three (its call directory, the .partial, the sidecar): a burst of 500
 * starts spent ~400 ms of this thread's CPU on the loop's core. Renaming an empty directory or
 * linking an empty file into place costs a tenth of that, so each recordings root keeps empty
 * directories and files made ahead beside it, in `{dataDir}/.recording-spares-{host}-{pid}`: all
 * of them when the factory starts (the gateway listens after that), then again, slowly while
 * recordings are written and faster when the thread is idle (BUSY_REFILL_MS). A start takes them:
 *
 *   call directory: rename(spare dir, dir): a new directory, or ENOTEMPTY/EEXIST when it is there
 *   .partial:       link(spare file, partial): EEXIST when it exists, as the exclusive open was
 *   sidecar:        link(spare file, sidecar), opened as before
 *
 * Without a spare (pool empty, another file system) a start creates as before. A spare is a name
 * of an empty inode and nothing else: the pool's directory is removed and made anew when a pool
 * starts, so a name left behind by a crash between link and unlink is never handed out again.
 * A pool whose process died is removed by the next pool to start on the data directory: on the
 * same host when its pid is gone, from another host (a redeployed container has a new host name)
 * when its directory was not touched for SPARES_LEASE_MS; a live pool touches its own every
 * SPARES_TOUCH_MS.
 */
interface SparePool {
  /** `{dataDir}/.recording-spares-{host}-{pid}` */
  readonly dir: string;
  readonly target: number;
  readonly dirs: string[];
  readonly files: string[];
  seq: number;
  /** Holds its target of both kinds. */
  full: boolean;
}
/** Pools by recordings root. */
const pools = new Map<string, SparePool>();
/** No spare is made sooner than this after one was taken: a burst's starts keep the core. */
const QUIET_MS = 50;
/**
 * The remake's pace. While recordings are being written it is one inode (~0.25 ms) per
 * BUSY_REFILL_MS, ~0.25 % of the core: remaking a burst of 500 starts' spares quickly (eight per
 * 10 ms) put ~400 ms of this thread's CPU into the seconds after the burst, when the live
 * streams' media wanted the core (burst bench, steady phase: I/O thread 483-534 ms against
 * 113-148, ingest lag p99 11 ms against 7). Once no request has come for IDLE_MS the thread
 * has the time, and makes IDLE_PER_TURN every IDLE_REFILL_MS.
 */
const BUSY_REFILL_MS = 100;
const IDLE_MS = 1000;
const IDLE_REFILL_MS = 10;
const IDLE_PER_TURN = 8;
/** performance.now() of the last batch of requests from the event loop. */
let lastRequestAt = Number.NEGATIVE_INFINITY;
let lastTakenAt = Number.NEGATIVE_INFINITY;
let refillTimer: NodeJS.Timeout | null = null;
const SPARES_PREFIX = '.recording-spares-';
const SPARES_TOUCH_MS = 60_000;
const SPARES_LEASE_MS = 10 * SPARES_TOUCH_MS;
let touchTimer: NodeJS.Timeout | null = null;

function startSpares(root: string, under: string, count: number): void {
  const old = pools.get(root);
  if (old !== undefined) {
    pools.delete(root);
    rmSync(old.dir, { recursive: true, force: true });
  }
  if (count <= 0) return;
  const prefix = `${SPARES_PREFIX}${hostname()}-`;
  const dir = `${under}${sep}${prefix}${process.pid}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // Spares a process left when it died are removed too (see "Spare inodes" above).
  for (const name of readdirSync(under)) {
    if (!name.startsWith(SPARES_PREFIX) || `${under}${sep}${name}` === dir) continue;
    if (name.startsWith(prefix) ? !alive(Number(name.slice(prefix.length))) : leaseExpired(`${under}${sep}${name}`)) {
      rmSync(`${under}${sep}${name}`, { recursive: true, force: true });
    }
  }
  const pool: SparePool = { dir, target: count, dirs: [], files: [], seq: 0, full: false };
  pools.set(root, pool);
  if (touchTimer === null) {
    touchTimer = setInterval(touchPools, SPARES_TOUCH_MS);
    touchTimer.unref();
  }
  // All of them now, before any stream: the pool is made while the gateway starts, not in a burst.
  refillPool(root, pool, Number.POSITIVE_INFINITY);
}

/** Renews the lease of this thread's pools (their directories' mtime). */
function touchPools(): void {
  if (pools.size === 0) {
    clearInterval(touchTimer!);
    touchTimer = null;
    return;
  }
  const now = new Date();
  for (const pool of pools.values()) {
    try {
      utimesSync(pool.dir, now, now);
    } catch {
      // Removed under us: its starts create their inodes as before.
    }
  }
}

function leaseExpired(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > SPARES_LEASE_MS;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function scheduleRefill(): void {
  if (refillTimer !== null) return;
  refillTimer = setTimeout(refill, performance.now() - lastRequestAt >= IDLE_MS ? IDLE_REFILL_MS : BUSY_REFILL_MS);
  refillTimer.unref();
}

function refill(): void {
  refillTimer = null;
  const now = performance.now();
  if (now - lastTakenAt < QUIET_MS) return scheduleRefill();
  const budget = now - lastRequestAt >= IDLE_MS ? IDLE_PER_TURN : 1;
  let more = false;
  for (const [root, pool] of pools) {
    if (pool.full) continue;
    refillPool(root, pool, budget);
    if (pools.has(root) && !pool.full) more = true;
  }
  if (more) scheduleRefill();
}

/** Makes up to `budget` spares for `pool` (and says whether it is full); drops the pool on an error. */
function refillPool(root: string, pool: SparePool, budget: number): void {
  try {
    while (budget-- > 0) {
      const dirs = pool.dirs.length < pool.target;
      if (!dirs && pool.files.length >= 2 * pool.target) break;
      const name = `${pool.dir}${sep}${pool.seq++}`;
      if (dirs && pool.dirs.length * 2 <= pool.files.length) {
        mkdirSync(name);
        pool.dirs.push(name);
      } else {
        closeSync(openSync(name, 'wx'));
        pool.files.push(name);
      }
    }
  } catch {
    // The root was removed, the disk is full: starts create their inodes as before, and the
    // spares made so far go now (shutdown no longer knows the pool).
    pools.delete(root);
    try {
      rmSync(pool.dir, { recursive: true, force: true });
    } catch {
      // Left for the next pool to start on this data directory.
    }
    return;
  }
  pool.full = pool.dirs.length >= pool.target && pool.files.length >= 2 * pool.target;
}

/** The pool of the recordings root `{root}/{AccountSid}/{CallSid}` lies under, if it has one. */
function poolOf(callDir: string): SparePool | undefined {
  if (pools.size === 0) return undefined;
  const end = callDir.lastIndexOf(sep, callDir.lastIndexOf(sep) - 1);
  return pools.get(callDir.slice(0, end));
}

function took(pool: SparePool): void {
  pool.full = false;
  lastTakenAt = performance.now();
  scheduleRefill();
}

/** Makes the call directory; true when it was not there before (so it holds no .wav). */
function makeCallDir(dir: string, pool: SparePool | undefined): boolean {
  const spare = pool?.dirs.pop();
  if (spare !== undefined) {
    took(pool!);
    try {
      renameSync(spare, dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') pool!.dirs.push(spare); // the directory is there: the spare stays one
      else if (code === 'ENOENT' && existsSync(spare)) {
        // No account directory yet.
        mkdirSync(dir.slice(0, dir.lastIndexOf(sep)), { recursive: true });
        try {
          renameSync(spare, dir);
          return true;
        } catch {
          pool!.dirs.push(spare);
        }
      }
    }
  }
  return mkdirSync(dir, { recursive: true }) !== undefined;
}

/**
 * Opens `path` read-write, created empty: exclusively (EEXIST if it exists, as `wx+`), or else
 * truncating an existing file (as `w`). From a spare file when the pool has one.
 */
function createFile(path: string, pool: SparePool | undefined, exclusive: boolean): number {
  const spare = pool?.files.pop();
  if (spare !== undefined) {
    took(pool!);
    try {
      linkSync(spare, path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EEXIST, a missing directory, another file system: the spare stays one (if it is there).
      if (code !== 'ENOENT' || existsSync(spare)) pool!.files.push(spare);
      return openSync(path, exclusive ? 'wx+' : 'w');
    }
    try {
      unlinkSync(spare);
    } catch {
      // Left in the pool's directory, removed with it.
    }
    return openSync(path, 'r+');
  }
  return openSync(path, exclusive ? 'wx+' : 'w');
}

/**
 * A stream's start: its directory, the .partial created exclusively (a live stream's SID reused
 * fails here), the header. The sidecar follows with the first media ({@link writeSidecar}), so
 * a start costs two file creations (directory, .partial) instead of four (the sidecar was also
 * created here and again, through a temp file, once the first media timestamp was known); both
 * come from the spare inodes when there are some.
 */
function openFile(m: Op<'open'>): void {
  let fd: number | null = null;
  try {
    const pool = poolOf(m.dir);
    // A directory made just now holds no .wav to refuse.
    if (!makeCallDir(m.dir, pool) && existsSync(m.wav)) {
      throw new Error(`${m.wav} already exists; refusing to overwrite it`);
    }
    fd = createFile(m.partial, pool, true);
    files.set(m.file, { fd, ring: null, header: Buffer.from(m.header), layout: wavLayout(m.format, m.channels) });
    writeFullySync(fd, m.header, 0, m.header.length, 0);
    answer({ id: m.id });
  } catch (err) {
    failure(m.id, err, { opened: fd !== null });
  }
}

/**
 * The sidecar, written once, in place: no temp file, no rename, no fsync. What a crash can lose:
 * a kill -9 keeps the page cache, so a sidecar whose write returned is there for recovery; one
 * killed inside this call leaves an empty or cut file, which recover.ts reads as no sidecar (its
 * JSON does not parse), as it reads a stream killed before its first media (no sidecar yet), and
 * takes format and channels from the WAV header, losing only the metadata (conference, custom
 * parameters, wall start, media start). The .partial's audio is not fsynced before the finish
 * either, so after a power loss the sidecar is no less durable than the audio it describes.
 */
function writeSidecar(m: Op<'sidecar'>): void {
  const bytes = Buffer.from(m.json);
  let fd: number;
  try {
    fd = createFile(m.path, poolOf(m.dir), false);
  } catch (err) {
    // The directory was removed under a live stream (an operator cleaning up): make it again.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(m.dir, { recursive: true });
    fd = openSync(m.path, 'w');
  }
  try {
    writeFullySync(fd, bytes, 0, bytes.length, 0);
  } finally {
    closeSync(fd);
  }
  answer({ id: m.id });
}

/**
 * A drain's writes in order (each run of writes that continue each other in the file, such as
 * the two halves of a ring wrap, as one pwritev), then the header patch. On an error the answer
 * says how many writes reached the file before it.
 */
function flush(id: number, file: number, ring: SharedArrayBuffer | undefined, w: Float64Array, dataBytes: number): void {
  const f = files.get(file);
  // The sink flushes only between its open's answer and its finish; a flush for a file the
  // thread does not hold fails alone instead of throwing the thread (and every recording) away.
  if (f === undefined) {
    failure(id, new Error(`recording file ${file} is not open`), { written: 0 });
    return;
  }
  if (ring !== undefined) f.ring = new Uint8Array(ring);
  let written = 0;
  try {
    for (let i = 0; i < w.length; ) {
      const pos = w[i + 2]!;
      let end = pos;
      let j = i;
      while (j < w.length && w[j + 2] === end && runViews.length < MAX_RUN) {
        const off = w[j]!;
        const len = w[j + 1]!;
        runViews.push(off < 0 ? SILENCE[f.layout.format].subarray(0, len) : f.ring!.subarray(off, off + len));
        end += len;
        j += 3;
      }
      if (runViews.length === 1) writeFullySync(f.fd, runViews[0]!, 0, runViews[0]!.length, pos);
      else writevFullySync(f.fd, runViews, pos);
      runViews.length = 0;
      written = j / 3;
      i = j;
    }
    if (dataBytes >= 0) {
      const n = writeWavHeader(f.header, f.layout, dataBytes);
      writeFullySync(f.fd, f.header, 0, n, 0);
    }
    flushedOut.push(id);
    answerSoon();
  } catch (err) {
    runViews.length = 0;
    failure(id, err, { written });
  }
}

/** The flushes of a batch, decoded (IoBatch.flushes). */
function flushAll(fl: Float64Array, rings: readonly (number | SharedArrayBuffer)[]): void {
  let r = 0;
  for (let i = 0; i < fl.length; ) {
    const id = fl[i]!;
    const n = fl[i + 3]! * 3;
    let ring: SharedArrayBuffer | undefined;
    if (r < rings.length && rings[r] === id) {
      ring = rings[r + 1] as SharedArrayBuffer;
      r += 2;
    }
    flush(id, fl[i + 1]!, ring, fl.subarray(i + 4, i + 4 + n), fl[i + 2]!);
    i += 4 + n;
  }
}

/**
 * The finish thread (finisher.ts), started with the first finish: a finish hands it the file's
 * descriptor and its answer comes back through here. Every finish it was given and has not
 * answered fails if it dies (the .partial stays, and recover.ts repairs it at the next start);
 * the next finish starts a new one.
 */
let finisher: Worker | null = null;
/** Ids of the finishes with the finish thread. */
const finishing = new Set<number>();

function queueFinish(m: Op<'finish'>): void {
  const f = files.get(m.file);
  if (f === undefined) return failure(m.id, new Error(`recording file ${m.file} is not open`));
  files.delete(m.file);
  finishing.add(m.id);
  const w = (finisher ??= startFinisher());
  w.ref();
  w.postMessage({ m, fd: f.fd } satisfies FinishJob);
}

function startFinisher(): Worker {
  const w = spawnModuleThread(import.meta.url, 'finisher', FINISH_THREAD);
  w.on('message', (r: IoReply) => {
    finishing.delete(r.id);
    answer(r);
    if (finishing.size === 0) w.unref();
  });
  const lost = (err: Error): void => {
    if (finisher === w) finisher = null;
    for (const id of finishing) failure(id, err);
    finishing.clear();
  };
  w.on('error', lost);
  w.on('exit', (code) => lost(new Error(`recording finish thread exited with code ${code}`)));
  return w;
}

function close(m: Op<'close'>): void {
  const fd = files.get(m.file)?.fd;
  files.delete(m.file);
  if (fd !== undefined) {
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
  }
  answer({ id: m.id });
}

function run(m: IoMessage): Promise<void> | void {
  switch (m.op) {
    case 'open':
      return openFile(m);
    case 'sidecar':
      return writeSidecar(m);
    case 'finish':
      return queueFinish(m);
    case 'close':
      return close(m);
    case 'hash':
      return sha256OfFile(m.path).then((sha256) => answer({ id: m.id, sha256 }));
    case 'spares':
      startSpares(m.root, m.under, m.count);
      return answer({ id: m.id });
  }
}

port.on('message', (batch: IoBatch) => {
  if (pools.size > 0) lastRequestAt = performance.now();
  // A stream's open is answered before its first flush is sent, and its finish is sent after
  // its last flush is answered, so requests and flushes of one batch never concern one file in
  // an order that matters; requests go first all the same.
  for (const m of batch.requests) {
    try {
      const r = run(m);
      if (r !== undefined) r.catch((err: unknown) => failure(m.id, err));
    } catch (err) {
      failure(m.id, err);
    }
  }
  if (batch.flushes !== null) flushAll(batch.flushes, batch.rings);
});
