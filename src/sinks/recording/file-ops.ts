/** File operations the sink and recovery share; all async, none on the hot path. */
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { sha256FileOffThread } from './file-hasher.js';

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

/**
 * Writes `value` as JSON to `path` so that a reader (or a crash) sees the old file or the new
 * one, never half of it: temp file beside it, fsync, rename.
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp`;
  let fh: FileHandle;
  try {
    fh = await open(tmp, 'w');
  } catch (err) {
    // The directory was removed under a live stream (an operator cleaning up): make it again.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(dirname(path), { recursive: true });
    fh = await open(tmp, 'w');
  }
  try {
    await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** SHA-256 (hex) of a file's bytes; read and digested on a worker thread (file-hasher.ts). */
export function sha256File(path: string): Promise<string> {
  return sha256FileOffThread(path);
}

/** Makes a rename inside `dir` durable. Best effort: not every platform can fsync a directory. */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // EISDIR/EPERM/EINVAL on some platforms; the rename itself already happened.
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
