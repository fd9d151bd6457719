/**
 * SHA-256 of finished files, computed on a worker thread.
 *
 * Hashing a closed recording reads and digests the whole WAV (an hour of pcm16 is 57.6 MB,
 * ~100-200 ms of CPU). Done on the main thread it stalls every live stream's frames while a
 * burst of calls ends; on one worker the event loop only posts a path and gets a hex string back.
 * The worker is started on first use, is unref'd while idle (it never keeps the process alive)
 * and ref'd while a hash is outstanding (so an awaited hash is not cut short by the process
 * finding nothing else to do). Its code is a plain string passed with `eval` and no execArgv, and
 * takes its modules with process.getBuiltinModule, so it runs the same from dist/, from source
 * under tsx or vitest, and under `--input-type=module`.
 */
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const { createHash } = process.getBuiltinModule('node:crypto');
const { openSync, readSync, closeSync } = process.getBuiltinModule('node:fs');
const chunk = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', ({ id, path }) => {
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    const hash = createHash('sha256');
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0; ) hash.update(chunk.subarray(0, n));
    parentPort.postMessage({ id, hex: hash.digest('hex') });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err), code: err && err.code });
  } finally {
    if (fd >= 0) closeSync(fd);
  }
});
`;

interface Reply {
  id: number;
  hex?: string;
  error?: string;
  code?: string;
}

interface Pending {
  resolve(hex: string): void;
  reject(err: Error): void;
}

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
}

function start(): Worker {
  const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], name: 'streamgate-file-hasher' });
  w.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (p === undefined) return;
    pending.delete(m.id);
    if (pending.size === 0) w.unref();
    if (m.hex !== undefined) p.resolve(m.hex);
    else p.reject(Object.assign(new Error(m.error ?? 'hash failed'), { code: m.code }));
  });
  // A worker that dies takes its outstanding hashes with it; the next call starts a new one.
  w.on('error', (err) => {
    if (worker === w) worker = null;
    failAll(err);
  });
  w.on('exit', (code) => {
    if (worker === w) worker = null;
    failAll(new Error(`file hasher exited with code ${code}`));
  });
  w.unref();
  return w;
}

/** SHA-256 (hex) of a file's bytes, read and digested off the event loop. */
export function sha256FileOffThread(path: string): Promise<string> {
  const w = (worker ??= start());
  const id = nextId++;
  return new Promise<string>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    w.postMessage({ id, path });
  });
}
