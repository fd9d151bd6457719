import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256FileOffThread } from '../../../src/sinks/recording/file-hasher.js';

const dir = mkdtempSync(join(tmpdir(), 'streamgate-hasher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sha256FileOffThread', () => {
  it('hashes files of every size like createHash does, many at once', async () => {
    // 0 bytes, less than one read, exactly four reads (1 MiB), and several reads plus a tail.
    const sizes = [0, 1, 4095, 1 << 20, 3 * (1 << 20) + 17];
    const files = sizes.map((n, i) => {
      const p = join(dir, `f${i}`);
      const bytes = randomBytes(n);
      writeFileSync(p, bytes);
      return { p, want: createHash('sha256').update(bytes).digest('hex') };
    });
    const got = await Promise.all(files.map((f) => sha256FileOffThread(f.p)));
    expect(got).toEqual(files.map((f) => f.want));
  });

  it('rejects with the file system error code for a missing file, and keeps serving', async () => {
    await expect(sha256FileOffThread(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    const p = join(dir, 'after');
    writeFileSync(p, 'x');
    expect(await sha256FileOffThread(p)).toBe(createHash('sha256').update('x').digest('hex'));
  });

  it('never keeps a process alive once its hashes are answered', async () => {
    // The child prints the hash and then has nothing left to do: it must exit by itself.
    const p = join(dir, 'exit');
    writeFileSync(p, 'streamgate');
    const src = `import { sha256FileOffThread } from ${JSON.stringify(new URL('../../../src/sinks/recording/file-hasher.ts', import.meta.url).href)};
console.log(await sha256FileOffThread(${JSON.stringify(p)}));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], { timeout: 20_000 });
    expect(stdout.trim()).toBe(createHash('sha256').update('streamgate').digest('hex'));
  });
});
