import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FINISH_NICE } from '../../../src/sinks/recording/finisher.js';
import { ioFlush, ioRequest, IoError, newIoFile } from '../../../src/sinks/recording/io-thread.js';
import { wavLayout, writeWavHeader } from '../../../src/sinks/recording/wav-header.js';

/** The nice value of each of this process's threads (Linux /proc: the 19th field of a task's stat). */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((t) => {
    const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

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

  it('finishes a recording on a thread of its own, nicer than the event loop, with the hash of the finished file', async () => {
    const file = newIoFile();
    const base = join(dir, 'MZ00000000000000000000000000000001');
    const header = Buffer.alloc(44);
    writeWavHeader(header, wavLayout('pcm16', 1), 0, false);
    await ioRequest({ op: 'open', file, format: 'pcm16', channels: 1, dir, wav: `${base}.wav`, partial: `${base}.wav.partial`, header: header.slice() });
    // 160 samples of silence written, then finished with the final header.
    await ioFlush(file, undefined, [-1, 320, 44], 320);
    writeWavHeader(header, wavLayout('pcm16', 1), 320, true);
    const done = await ioRequest({
      op: 'finish',
      file,
      size: 44 + 320,
      pad: false,
      header,
      dir,
      partial: `${base}.wav.partial`,
      wav: `${base}.wav`,
      sidecar: `${base}.partial.json`,
      manifest: `${base}.json`,
      manifestJson: JSON.stringify({ streamSid: 'MZ00000000000000000000000000000001' }),
    });
    const wav = readFileSync(`${base}.wav`);
    expect(wav.length).toBe(364);
    expect(done.sha256).toBe(createHash('sha256').update(wav).digest('hex'));
    expect(existsSync(`${base}.wav.partial`)).toBe(false);
    expect(JSON.parse(readFileSync(`${base}.json`, 'utf8'))).toEqual({ streamSid: 'MZ00000000000000000000000000000001', bytes: 364, sha256: done.sha256 });
    expect(threadNices().filter((n) => n === FINISH_NICE)).toHaveLength(1);
    expect(threadNices()).toContain(0);
  });
});
