import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'streamgate-io-priority-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('recording I/O thread priority', () => {
  // Linux gives each thread its own nice value; the I/O thread lowers its own so a burst of
  // file opens or finishes on the gateway's core yields to the event loop (io-worker.ts).
  it.runIf(process.platform === 'linux')('runs 5 nicer than the event loop once it has answered a request', async () => {
    const p = join(dir, 'f');
    writeFileSync(p, 'streamgate');
    // A fresh process, so no I/O thread exists before: the nice value of every thread, before
    // the first request and after its answer (the thread lowers itself before it reads any).
    const src = `import { readdirSync, readFileSync } from 'node:fs';
import { sha256FileOffThread } from ${JSON.stringify(new URL('../../../src/sinks/recording/file-hasher.ts', import.meta.url).href)};
const nices = () => readdirSync('/proc/self/task').map((t) => ({ tid: Number(t), nice: Number(readFileSync('/proc/self/task/' + t + '/stat', 'utf8').split(') ')[1].split(' ')[16]) }));
const before = nices();
const sha = await sha256FileOffThread(${JSON.stringify(p)});
console.log(JSON.stringify({ pid: process.pid, before, after: nices(), sha }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], { timeout: 20_000 });
    const r = JSON.parse(stdout) as { pid: number; before: { tid: number; nice: number }[]; after: { tid: number; nice: number }[]; sha: string };
    expect(r.sha).toMatch(/^[0-9a-f]{64}$/);
    const main = r.after.find((t) => t.tid === r.pid)!.nice;
    const lowered = Math.min(19, main + 5);
    expect(r.before.filter((t) => t.nice === lowered)).toEqual([]);
    expect(r.after.filter((t) => t.nice === lowered)).toHaveLength(1);
  });
});
