/**
 * The recording I/O thread's code (started by io-thread.ts; the protocol is io-messages.ts). It
 * owns every recording file: requests arrive in batches, in order, and answers go back batched
 * per turn of this thread's loop. Writes are synchronous pwrites to the page cache (short);
 * opens and finishes (fsync, rename, hash, manifest) are async, so libuv's pool runs many at once.
 */
import { parentPort } from 'node:worker_threads';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { exists, fsyncDir, sha256OfFile, writeFully, writeFullySync, writeJsonAtomic, writeTextAtomic } from './file-ops.js';
import type { IoMessage, IoReply } from './io-messages.js';

type Op<K extends IoMessage['op']> = Extract<IoMessage, { op: K }>;

const port = parentPort!;
/** Silence blocks (16-bit zero or mu-law 0xFF): a silence write is at most one of these. */
const SILENCE = { pcm16: Buffer.alloc(65536, 0), mulaw: Buffer.alloc(65536, 0xff) };
const files = new Map<number, FileHandle>();
/** Each file's ring, as its latest write that carried one sent it. */
const rings = new Map<number, Uint8Array>();

let out: IoReply[] = [];
let queued = false;
function answer(r: IoReply): void {
  out.push(r);
  if (queued) return;
  queued = true;
  setImmediate(() => {
    queued = false;
    const o = out;
    out = [];
    port.postMessage(o);
  });
}

function failure(id: number, err: unknown, extra?: Partial<IoReply>): void {
  const e = err as NodeJS.ErrnoException;
  answer({ id, error: String(e?.message ?? err), code: e?.code, ...extra });
}

/** Copies an open file's bytes back to `partial` (its directory was removed while it was written). */
async function restorePartial(fh: FileHandle, partial: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const outFh = await open(partial, 'wx');
  try {
    const size = (await fh.stat()).size;
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; pos < size; ) {
      const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, size - pos), pos);
      if (bytesRead === 0) throw new Error(`${partial}: could not read back byte ${pos} of ${size}`);
      await writeFully(outFh, chunk, 0, bytesRead, pos);
      pos += bytesRead;
    }
    await outFh.sync();
  } finally {
    await outFh.close();
  }
}

async function openFile(m: Op<'open'>): Promise<void> {
  let fh: FileHandle | null = null;
  try {
    await mkdir(m.dir, { recursive: true });
    if (await exists(m.wav)) throw new Error(`${m.wav} already exists; refusing to overwrite it`);
    fh = await open(m.partial, 'wx+');
    files.set(m.file, fh);
    await writeTextAtomic(m.sidecar, m.sidecarJson);
    writeFullySync(fh.fd, m.header, 0, m.header.length, 0);
    answer({ id: m.id });
  } catch (err) {
    failure(m.id, err, { opened: fh !== null });
  }
}

function write(m: Op<'write'>): void {
  const fd = files.get(m.file)!.fd;
  if (m.ring !== undefined) rings.set(m.file, new Uint8Array(m.ring));
  if (m.len > 0) {
    const src = m.silence === undefined ? rings.get(m.file)! : SILENCE[m.silence];
    writeFullySync(fd, src, m.off, m.len, m.pos);
  }
  if (m.header !== undefined) writeFullySync(fd, m.header, 0, m.header.length, 0);
  answer({ id: m.id });
}

async function finish(m: Op<'finish'>): Promise<void> {
  const fh = files.get(m.file)!;
  let closed = false;
  try {
    await fh.truncate(m.size);
    if (m.pad) writeFullySync(fh.fd, SILENCE.pcm16, 0, 1, m.size);
    writeFullySync(fh.fd, m.header, 0, m.header.length, 0);
    await fh.sync();
    let restored = false;
    if (!(await exists(m.partial))) {
      await restorePartial(fh, m.partial, m.dir);
      restored = true;
    }
    files.delete(m.file);
    rings.delete(m.file);
    closed = true;
    await fh.close();
    await rename(m.partial, m.wav);
    await fsyncDir(m.dir);
    const [st, hex] = await Promise.all([stat(m.wav), sha256OfFile(m.wav)]);
    const manifest = JSON.parse(m.manifestJson) as Record<string, unknown>;
    manifest.bytes = st.size;
    manifest.sha256 = hex;
    await writeJsonAtomic(m.manifest, manifest);
    await unlink(m.sidecar).catch(() => undefined);
    await fsyncDir(m.dir);
    answer({ id: m.id, bytes: st.size, sha256: hex, restored });
  } catch (err) {
    if (!closed) {
      files.delete(m.file);
      rings.delete(m.file);
      await fh.close().catch(() => undefined);
    }
    failure(m.id, err);
  }
}

async function close(m: Op<'close'>): Promise<void> {
  const fh = files.get(m.file);
  files.delete(m.file);
  rings.delete(m.file);
  if (fh !== undefined) await fh.close().catch(() => undefined);
  answer({ id: m.id });
}

function run(m: IoMessage): Promise<void> | void {
  switch (m.op) {
    case 'open':
      return openFile(m);
    case 'write':
      return write(m);
    case 'sidecar':
      return writeTextAtomic(m.path, m.json).then(() => answer({ id: m.id }));
    case 'finish':
      return finish(m);
    case 'close':
      return close(m);
    case 'hash':
      return sha256OfFile(m.path).then((sha256) => answer({ id: m.id, sha256 }));
  }
}

port.on('message', (batch: IoMessage[]) => {
  for (const m of batch) {
    try {
      const r = run(m);
      if (r !== undefined) r.catch((err: unknown) => failure(m.id, err));
    } catch (err) {
      failure(m.id, err);
    }
  }
});
