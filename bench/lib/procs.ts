/**
 * Child processes for the ingest bench: each pinned to one core with `taskset -c` (all of its
 * threads inherit the mask, so libuv's pool and V8's helpers stay on that core too), talking
 * over an IPC channel. Every child is killed when the bench exits, however it exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

let tasksetOk: boolean | null = null;
export function canPin(): boolean {
  if (tasksetOk === null) {
    const r = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    tasksetOk = r.status === 0;
  }
  return tasksetOk;
}

export interface PinnedChild {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Sends a message; resolves with the first message of `replyType` after it. */
  request<T extends { type: string }>(msg: object, replyType: string, timeoutMs?: number): Promise<T>;
  /** Resolves with the next message of `type`. */
  next<T extends { type: string }>(type: string, timeoutMs?: number): Promise<T>;
  send(msg: object): void;
  onMessage(fn: (m: { type: string }) => void): void;
  /** Waits for exit up to `ms`, then SIGKILLs. */
  stop(ms: number): Promise<void>;
}

export function spawnPinned(script: string, core: number | null, opts: { env?: Record<string, string>; nodeArgs?: string[]; logFile?: string } = {}): PinnedChild {
  hookExit();
  const nodeArgv = [...(opts.nodeArgs ?? []), script];
  const pin = core !== null && canPin();
  const cmd = pin ? 'taskset' : process.execPath;
  const args = pin ? ['-c', String(core), process.execPath, ...nodeArgv] : nodeArgv;
  const logFd = opts.logFile ? openSync(opts.logFile, 'a') : 'ignore';
  const proc = spawn(cmd, args, {
    stdio: ['ignore', logFd, logFd, 'ipc'],
    env: { ...process.env, ...opts.env },
  });
  if (typeof logFd === 'number') closeSync(logFd);
  live.add(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.once('exit', () => live.delete(proc));
  const listeners: ((m: { type: string }) => void)[] = [];
  proc.on('message', (m: { type: string }) => {
    for (const l of listeners.slice()) l(m);
  });
  const next = <T extends { type: string }>(type: string, timeoutMs = 60_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(new Error(`${script}: no '${type}' message within ${timeoutMs} ms`));
      }, timeoutMs);
      const onExit = (code: number | null) => {
        remove();
        reject(new Error(`${script} exited (${code}) before sending '${type}'`));
      };
      const l = (m: { type: string }) => {
        if (m.type !== type) return;
        remove();
        resolve(m as T);
      };
      const remove = () => {
        clearTimeout(timer);
        proc.off('exit', onExit);
        const i = listeners.indexOf(l);
        if (i >= 0) listeners.splice(i, 1);
      };
      listeners.push(l);
      proc.once('exit', onExit);
    });
  return {
    proc,
    pid: proc.pid ?? -1,
    next,
    request(msg, replyType, timeoutMs) {
      const p = next(replyType, timeoutMs);
      proc.send(msg);
      return p as never;
    },
    send(msg) {
      if (proc.connected) proc.send(msg);
    },
    onMessage(fn) {
      listeners.push(fn);
    },
    async stop(ms) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
      await exited;
      clearTimeout(timer);
    },
  };
}
