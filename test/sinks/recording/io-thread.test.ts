import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ioFlush, ioRequest, IoError, newIoFile } from '../../../src/sinks/recording/io-thread.js';

const dir = mkdtempSync(join(tmpdir(), 'streamgate-io-thread-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('recording I/O thread', () => {
  it('fails a flush for a file it does not hold on its own, and keeps serving the other requests of the batch', async () => {
    const p = join(dir, 'f');
    writeFileSync(p, 'streamgate');
    // Same tick, so one batch: the stray flush (160 samples of silence at byte 44, header patch)
    // and a hash request. A thread that threw on the flush would fail both.
    const flush = ioFlush(newIoFile(), undefined, [-1, 320, 44], 320).then(
      () => null,
      (err: unknown) => err,
    );
    const hash = ioRequest({ op: 'hash', path: p });
    const err = await flush;
    expect(err).toBeInstanceOf(IoError);
    expect((err as IoError).message).toMatch(/is not open/);
    expect((err as IoError).written).toBe(0);
    expect((await hash).sha256).toBe(createHash('sha256').update('streamgate').digest('hex'));
  });
});
