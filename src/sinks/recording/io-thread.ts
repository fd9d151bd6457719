/**
 * The recording I/O thread: one worker thread owns every recording file, so the event loop that
 * carries the media never calls fs. A sink posts small requests; requests made in the same tick
 * (a flush bucket's writes, a burst of opens) travel in one postMessage, and their answers come
 * back batched the same way:
 *
 *   main thread                                      I/O thread
 *   sink.#drain ── write {ring (shared), slots, at} ──► pwrite from the ring, header patch at 0
 *               ◄── done ───────────────────────────── (sync: page-cache writes are short)
 *   sink.open   ── open {paths, header, sidecar} ────► mkdir, exclusive open, sidecar, header
 *   sink.close  ── finish {sizes, header, manifest} ─► truncate, fsync, rename, hash, manifest,
 *               ◄── {bytes, sha256} ──────────────── sidecar removed (async: fsyncs and the
 *                                                     hash read run on libuv's pool in parallel)
 *
 * The ring is a SharedArrayBuffer (sample-ring.ts), handed to the thread once (and again after a
 * resize): a write names slots the sink will not touch until the answer, so no byte is copied to
 * cross threads. Writes go to the page cache as they
 * did from the main thread, and the header is patched in the same request as the data it
 * describes, so the crash-safety contract (a killed process loses at most the last flush
 * interval; recover.ts repairs the rest) is unchanged.
 *
 * The hash is still a read of the finished file, now on this thread: a whole-file SHA-256
 * starts with the header, whose sizes are known only at the end, so it cannot be folded in
 * while the audio is written.
 *
 * Its code is a plain string run with `eval` and no execArgv, taking its modules through
 * process.getBuiltinModule, so it runs the same from dist/, from source under tsx or vitest,
 * and under `--input-type=module`. The thread starts on first use, is unref'd while nothing is
 * outstanding (it never keeps the process alive) and ref'd while a request is.
 */
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = String.raw`
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const fs = process.getBuiltinModule('node:fs');
const fsp = fs.promises;
const { createHash } = process.getBuiltinModule('node:crypto');
const { dirname } = process.getBuiltinModule('node:path');
const SILENCE = { pcm16: Buffer.alloc(65536, 0), mulaw: Buffer.alloc(65536, 0xff) };
const files = new Map();
/** Each file's ring, as its latest write that carried one sent it. */
const rings = new Map();
let out = [];
let queued = false;
function answer(r) {
  out.push(r);
  if (!queued) { queued = true; setImmediate(() => { queued = false; const o = out; out = []; parentPort.postMessage(o); }); }
}
function failure(id, err) {
  answer({ id, error: String((err && err.message) || err), code: err && err.code });
}
function writeFullySync(fd, buf, off, len, pos) {
  while (len > 0) {
    const n = fs.writeSync(fd, buf, off, len, pos);
    if (n <= 0) throw new Error('write made no progress at file offset ' + pos);
    off += n; len -= n; pos += n;
  }
}
async function writeFully(fh, buf, off, len, pos) {
  while (len > 0) {
    const { bytesWritten } = await fh.write(buf, off, len, pos);
    if (bytesWritten <= 0) throw new Error('write made no progress at file offset ' + pos);
    off += bytesWritten; len -= bytesWritten; pos += bytesWritten;
  }
}
async function exists(p) {
  try { await fsp.stat(p); return true; } catch { return false; }
}
async function writeJsonAtomic(path, text) {
  const tmp = path + '.tmp';
  let fh;
  try { fh = await fsp.open(tmp, 'w'); } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    await fsp.mkdir(dirname(path), { recursive: true });
    fh = await fsp.open(tmp, 'w');
  }
  try { await fh.writeFile(text); await fh.sync(); } finally { await fh.close(); }
  await fsp.rename(tmp, path);
}
async function fsyncDir(dir) {
  try { const fh = await fsp.open(dir, 'r'); try { await fh.sync(); } finally { await fh.close(); } } catch {}
}
async function sha256(path) {
  const fh = await fsp.open(path, 'r');
  try {
    const hash = createHash('sha256');
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      hash.update(chunk.subarray(0, bytesRead));
    }
    return hash.digest('hex');
  } finally { await fh.close(); }
}
async function restorePartial(fh, partial, dir) {
  await fsp.mkdir(dir, { recursive: true });
  const outFh = await fsp.open(partial, 'wx');
  try {
    const size = (await fh.stat()).size;
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; pos < size; ) {
      const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, size - pos), pos);
      if (bytesRead === 0) throw new Error(partial + ': could not read back byte ' + pos + ' of ' + size);
      await writeFully(outFh, chunk, 0, bytesRead, pos);
      pos += bytesRead;
    }
    await outFh.sync();
  } finally { await outFh.close(); }
}
const ops = {
  async open(m) {
    let fh = null;
    try {
      await fsp.mkdir(m.dir, { recursive: true });
      if (await exists(m.wav)) throw new Error(m.wav + ' already exists; refusing to overwrite it');
      fh = await fsp.open(m.partial, 'wx+');
      files.set(m.file, fh);
      await writeJsonAtomic(m.sidecar, m.sidecarJson);
      writeFullySync(fh.fd, m.header, 0, m.header.length, 0);
      answer({ id: m.id });
    } catch (err) {
      answer({ id: m.id, error: String(err.message || err), code: err.code, opened: fh !== null });
    }
  },
  write(m) {
    const fh = files.get(m.file);
    const fd = fh.fd;
    if (m.ring !== undefined) rings.set(m.file, new Uint8Array(m.ring));
    if (m.len > 0) {
      const src = m.silence === undefined ? rings.get(m.file) : SILENCE[m.silence];
      writeFullySync(fd, src, m.off, m.len, m.pos);
    }
    if (m.header !== undefined) writeFullySync(fd, m.header, 0, m.header.length, 0);
    answer({ id: m.id });
  },
  async sidecar(m) {
    await writeJsonAtomic(m.path, m.json);
    answer({ id: m.id });
  },
  async finish(m) {
    const fh = files.get(m.file);
    let closed = false;
    try {
      await fh.truncate(m.size);
      if (m.pad) writeFullySync(fh.fd, SILENCE.pcm16, 0, 1, m.size);
      writeFullySync(fh.fd, m.header, 0, m.header.length, 0);
      await fh.sync();
      let restored = false;
      if (!(await exists(m.partial))) { await restorePartial(fh, m.partial, m.dir); restored = true; }
      files.delete(m.file);
      rings.delete(m.file);
      closed = true;
      await fh.close();
      await fsp.rename(m.partial, m.wav);
      await fsyncDir(m.dir);
      const [st, hex] = await Promise.all([fsp.stat(m.wav), sha256(m.wav)]);
      const manifest = JSON.parse(m.manifestJson);
      manifest.bytes = st.size;
      manifest.sha256 = hex;
      await writeJsonAtomic(m.manifest, JSON.stringify(manifest, null, 2) + '\n');
      await fsp.unlink(m.sidecar).catch(() => undefined);
      await fsyncDir(m.dir);
      answer({ id: m.id, bytes: st.size, sha256: hex, restored });
    } catch (err) {
      if (!closed) { files.delete(m.file); rings.delete(m.file); await fh.close().catch(() => undefined); }
      failure(m.id, err);
    }
  },
  async close(m) {
    const fh = files.get(m.file);
    files.delete(m.file);
    rings.delete(m.file);
    if (fh !== undefined) await fh.close().catch(() => undefined);
    answer({ id: m.id });
  },
  async hash(m) {
    answer({ id: m.id, sha256: await sha256(m.path) });
  },
};
parentPort.on('message', (batch) => {
  for (const m of batch) {
    try {
      const r = ops[m.op](m);
      if (r !== undefined) r.catch((err) => failure(m.id, err));
    } catch (err) {
      failure(m.id, err);
    }
  }
});
`;

/** What the I/O thread answers. */
export interface IoReply {
  id: number;
  error?: string;
  code?: string;
  /** open: the file was created before the failure (close() must still finish it). */
  opened?: boolean;
  bytes?: number;
  sha256?: string;
  restored?: boolean;
}

/**
 * One pwrite of `len` bytes at `pos`: from the file's shared ring at `off`, or of silence of the
 * format; then, if given, the header at 0. `ring` is sent only when the ring changed (the first
 * write, a resize): passing a SharedArrayBuffer costs a cross-thread registration per message.
 */
export interface IoWrite {
  op: 'write';
  file: number;
  ring?: SharedArrayBuffer;
  silence?: 'pcm16' | 'mulaw';
  off: number;
  len: number;
  pos: number;
  header?: Uint8Array;
}

export type IoRequest =
  | { op: 'open'; file: number; dir: string; wav: string; partial: string; sidecar: string; sidecarJson: string; header: Uint8Array }
  | IoWrite
  | { op: 'sidecar'; path: string; json: string }
  | {
      op: 'finish';
      file: number;
      /** Header + data bytes: the file is truncated here. */
      size: number;
      /** One pad byte after `size` (an odd data chunk). */
      pad: boolean;
      header: Uint8Array;
      dir: string;
      partial: string;
      wav: string;
      sidecar: string;
      manifest: string;
      /** The manifest with `bytes` and `sha256` still to fill in (same key order). */
      manifestJson: string;
    }
  | { op: 'close'; file: number }
  | { op: 'hash'; path: string };

/** An error from the I/O thread, with the file system's code (EFBIG, ENOENT, …) kept. */
export class IoError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.name = 'IoError';
    this.code = code;
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
let outbox: (IoRequest & { id: number })[] = [];
let posting = false;

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
}

function start(): Worker {
  const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], name: 'streamgate-recording-io' });
  w.on('message', (replies: IoReply[]) => {
    for (const m of replies) {
      const p = pending.get(m.id);
      if (p === undefined) continue;
      pending.delete(m.id);
      if (m.error !== undefined) p.reject(Object.assign(new IoError(m.error, m.code), { opened: m.opened === true }));
      else p.resolve(m);
    }
    if (pending.size === 0) w.unref();
  });
  // A thread that dies takes its open files and outstanding requests with it: those streams
  // degrade (their sinks see the error); the next request starts a new thread.
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
  const batch = outbox;
  outbox = [];
  const w = (worker ??= start());
  w.ref();
  w.postMessage(batch);
}

/** Sends one request; requests made in the same tick go in one message. */
export function ioRequest(req: IoRequest): Promise<IoReply> {
  const id = nextId++;
  return new Promise<IoReply>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    outbox.push({ ...req, id });
    if (!posting) {
      posting = true;
      queueMicrotask(post);
    }
  });
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
