/**
 * File operations the recording's I/O thread (io-worker.ts), its finish thread (finisher.ts) and
 * recovery (recover.ts) share. Plain fs, no imports of our own: both threads load this module
 * too, so it stays free of anything that belongs to the main thread. None of it is on the hot path.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fsync, fsyncSync, mkdirSync, openSync, readSync, renameSync, writeSync, writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `length` bytes of `buf` from `offset` to file position `position`, looping on short
 * writes (FileHandle.write may write less than asked, e.g. on a full disk).
 */
export async function writeFully(
  fh: FileHandle,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<void> {
  while (length > 0) {
    const { bytesWritten } = await fh.write(buf, offset, length, position);
    if (bytesWritten <= 0) throw new Error(`write made no progress at file offset ${position}`);
    offset += bytesWritten;
    length -= bytesWritten;
    position += bytesWritten;
  }
}

/** {@link writeFully}, synchronous, on a descriptor (the I/O thread's page-cache writes). */
export function writeFullySync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): void {
  while (length > 0) {
    const n = writeSync(fd, buf, offset, length, position);
    if (n <= 0) throw new Error(`write made no progress at file offset ${position}`);
    offset += n;
    length -= n;
    position += n;
  }
}

/**
 * Writes `views` one after another from file `position` with pwritev, finishing a short write
 * view by view ({@link writeFullySync}).
 */
export function writevFullySync(fd: number, views: readonly Uint8Array[], position: number): void {
  let n = writevSync(fd, views as Uint8Array[], position);
  for (const v of views) {
    if (n >= v.length) {
      n -= v.length;
    } else {
      writeFullySync(fd, v, n, v.length - n, position + n);
      n = 0;
    }
    position += v.length;
  }
}

/** A JSON file's text as the recording files hold it (manifest, sidecar): indented, one trailing newline. */
export function jsonFileText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Writes `value` as {@link jsonFileText} with {@link writeTextAtomic}. */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeTextAtomic(path, jsonFileText(value));
}

/**
 * Writes `text` to `path` so that a reader (or a crash) sees the old file or the new one, never
 * half of it: temp file beside it, fsync, rename (start-up recovery, before any stream). The
 * metadata calls run synchronously on the calling thread and only the fsync waits on libuv's pool.
 */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  renameSync(await writeTextSynced(path, text), path);
}

/**
 * The first half of {@link writeTextAtomic}: `text` written to `${path}.tmp` and fsynced (on
 * libuv's pool); the caller renames it. Returns the temp file's path.
 */
async function writeTextSynced(path: string, text: string): Promise<string> {
  const fd = writeTemp(path, text);
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
  return `${path}.tmp`;
}

/** {@link writeTextSynced} with the fsync on the calling thread (the finish thread, finisher.ts). */
export function writeTextSyncedHere(path: string, text: string): string {
  const fd = writeTemp(path, text);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return `${path}.tmp`;
}

/** `text` written to `${path}.tmp` (made or truncated); returns the open descriptor. */
function writeTemp(path: string, text: string): number {
  const tmp = `${path}.tmp`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (err) {
    // The directory was removed under a live stream (an operator cleaning up): make it again.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(path), { recursive: true });
    fd = openSync(tmp, 'w');
  }
  try {
    const bytes = Buffer.from(text);
    writeFullySync(fd, bytes, 0, bytes.length, 0);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** fsync(fd) on libuv's pool: the wait for the disk is the pool's, not the caller's thread. */
function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err === null ? resolve() : reject(err))));
}

/**
 * Makes a rename inside `dir` durable, on the calling thread (the finish thread, or start-up
 * recovery before anything listens). Best effort: not every platform can fsync a directory.
 */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // EISDIR/EPERM/EINVAL on some platforms; the rename itself already happened.
  } finally {
    closeSync(fd);
  }
}

/** Bytes hashed between two yields of the calling thread's loop (~0.5 ms of SHA-256). */
const HASH_CHUNK = 256 * 1024;
/**
 * Hash chunks not in use, kept: a chunk per hash was 1 MiB of fresh external memory for each
 * finished stream, and a burst of 500 finishes ran the I/O thread's GC back to back ("external
 * memory pressure" in --trace-gc).
 */
const freeChunks: Buffer[] = [];

/**
 * SHA-256 (hex) of a file's bytes, read and digested on the calling thread: the I/O thread's
 * (file-hasher.ts asks it), never the event loop's.
 */
export async function sha256OfFile(path: string): Promise<string> {
  const fd = openSync(path, 'r');
  try {
    return await sha256OfFd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * SHA-256 (hex) of an open file's bytes from position 0 to its end: synchronous page-cache reads
 * of {@link HASH_CHUNK} bytes, each followed by a turn of the thread's loop, so an hour-long
 * recording (57.6 MB) lets the other streams' flushes in between its chunks.
 */
export async function sha256OfFd(fd: number): Promise<string> {
  const hash = createHash('sha256');
  const chunk = freeChunks.pop() ?? Buffer.allocUnsafe(HASH_CHUNK);
  try {
    for (let pos = 0, n = HASH_CHUNK; n === HASH_CHUNK; pos += n) {
      n = hashChunk(fd, hash, chunk, pos);
      if (n === HASH_CHUNK) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    freeChunks.push(chunk);
  }
  return hash.digest('hex');
}

/** {@link sha256OfFd} without the turns between chunks (the finish thread has nothing else to do). */
export function sha256OfFdHere(fd: number): string {
  const hash = createHash('sha256');
  const chunk = freeChunks.pop() ?? Buffer.allocUnsafe(HASH_CHUNK);
  try {
    for (let pos = 0, n = HASH_CHUNK; n === HASH_CHUNK; pos += n) n = hashChunk(fd, hash, chunk, pos);
  } finally {
    freeChunks.push(chunk);
  }
  return hash.digest('hex');
}

/** Reads up to one chunk at `pos` into `hash`; returns the bytes read (fewer than a chunk: the end). */
function hashChunk(fd: number, hash: Hash, chunk: Buffer, pos: number): number {
  const n = readSync(fd, chunk, 0, chunk.length, pos);
  if (n > 0) hash.update(chunk.subarray(0, n));
  return n;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
