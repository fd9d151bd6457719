/**
 * The recording's finish thread (started by io-worker.ts): makes finished recordings durable,
 * one at a time, in the order they ended. The I/O thread hands each finish over with the file's
 * descriptor (io-messages.ts FinishJob) and relays the answer; from then on the file is this
 * thread's, which closes it.
 *
 * Why a thread of its own, below the event loop's priority: a burst of 500 stops finishes 500
 * recordings at once (hash, three fsyncs, renames, a manifest each). On the I/O thread, with the
 * fsyncs on libuv's pool, that work was five runnable threads beside the event loop on its core,
 * each woken by its disk I/O and first in line for the core, and the loop waited 40-120 ms for
 * it (bench/RESULTS.md, "finishes on a thread of their own"). Here every call is synchronous, so
 * the whole of it is one thread's, and that thread asks the kernel for a lower priority
 * (FINISH_NICE): it runs when the event loop and the I/O thread do not need the core. It can
 * only fall behind in manifests, never in audio: the live streams' writes stay on the I/O
 * thread, which no fsync of a finish holds up.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readlinkSync, readSync, renameSync, unlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { fsyncDir, jsonFileText, sha256OfFdHere, writeFullySync, writeTextSyncedHere } from './file-ops.js';
import { errorReply, type FinishJob, type IoReply } from './io-messages.js';

/** Nice value of this thread (Linux: per thread): the event loop and the I/O thread keep 0. */
export const FINISH_NICE = 10;
/** The thread's name and workerData (module-thread.ts): this module serves finishes only in it. */
export const FINISH_THREAD = 'streamgate-recording-finish';

const PAD = Buffer.alloc(1);

/** This thread's own priority, lowered (Linux: /proc/thread-self names the thread; elsewhere it keeps the process's). */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, FINISH_NICE);
  } catch {
    // no /proc, or the priority cannot be changed: the finishes run at the process's priority
  }
}

/** Copies an open file's bytes back to `partial` (its directory was removed while it was written). */
function restorePartial(fd: number, partial: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const outFd = openSync(partial, 'wx');
  try {
    const size = fstatSync(fd).size;
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; pos < size; ) {
      const bytesRead = readSync(fd, chunk, 0, Math.min(chunk.length, size - pos), pos);
      if (bytesRead === 0) throw new Error(`${partial}: could not read back byte ${pos} of ${size}`);
      writeFullySync(outFd, chunk, 0, bytesRead, pos);
      pos += bytesRead;
    }
    fsyncSync(outFd);
  } finally {
    closeSync(outFd);
  }
}

/**
 * The manifest's text written over the stream's sidecar and fsynced; returns the sidecar's path,
 * which the finish renames to the manifest's. Rewriting a file that exists costs ~0.1 ms of CPU
 * against ~0.5 ms for creating and syncing a new temp file on an ext4 VM disk (bench/RESULTS.md,
 * "The burst's stop phase, part 2"). A stream without a sidecar (no media, or its directory was removed
 * meanwhile) gets the temp file ({@link writeTextSyncedHere}) instead. The manifest holds every field
 * of the sidecar with the same meaning, so recovery reads either (recover.ts readSidecar); a write
 * cut short by a crash leaves JSON that does not parse, which recovery already takes for no sidecar.
 */
function writeManifestOverSidecar(m: FinishJob['m'], text: string): string {
  let fd: number;
  try {
    fd = openSync(m.sidecar, 'r+');
  } catch {
    return writeTextSyncedHere(m.manifest, text);
  }
  try {
    const bytes = Buffer.from(text);
    writeFullySync(fd, bytes, 0, bytes.length, 0);
    ftruncateSync(fd, bytes.length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return m.sidecar;
}

/**
 * A stream's end: the final sizes and header, the hash (read back while the file is open and in
 * the page cache), the file's fsync, the manifest written over the sidecar and fsynced, then both
 * renames under one directory fsync. The order keeps every state a power loss can leave one that
 * recover.ts already knows: the .wav and the manifest's bytes are durable before either rename;
 * the renames are journaled in the order made, so there is never a manifest without its .wav; a
 * .wav without a manifest (the second rename lost) is finished again from the sidecar, which then
 * holds the manifest's fields; neither rename made is a .partial repaired the same way; a
 * leftover temp file (a stream without a sidecar) is removed.
 */
export function finish({ m, fd }: FinishJob): IoReply {
  let closed = false;
  try {
    ftruncateSync(fd, m.size);
    if (m.pad) writeFullySync(fd, PAD, 0, 1, m.size);
    writeFullySync(fd, m.header, 0, m.header.length, 0);
    const size = fstatSync(fd).size;
    const hex = sha256OfFdHere(fd);
    fsyncSync(fd);
    let restored = false;
    if (!existsSync(m.partial)) {
      restorePartial(fd, m.partial, m.dir);
      restored = true;
    }
    closed = true;
    closeSync(fd);
    const manifest = JSON.parse(m.manifestJson) as Record<string, unknown>;
    manifest.bytes = size;
    manifest.sha256 = hex;
    const written = writeManifestOverSidecar(m, jsonFileText(manifest));
    renameSync(m.partial, m.wav);
    renameSync(written, m.manifest);
    if (written !== m.sidecar) {
      try {
        unlinkSync(m.sidecar);
      } catch {
        // none was written
      }
    }
    fsyncDir(m.dir);
    return { id: m.id, bytes: size, sha256: hex, restored };
  } catch (err) {
    if (!closed) {
      try {
        closeSync(fd);
      } catch {
        // closed already
      }
    }
    return errorReply(m.id, err);
  }
}

// Imported elsewhere (the I/O thread reads FINISH_THREAD; a test FINISH_NICE) it does nothing.
if (parentPort !== null && workerData === FINISH_THREAD) {
  const port = parentPort;
  lowerPriority();
  port.on('message', (job: FinishJob) => port.postMessage(finish(job)));
}
