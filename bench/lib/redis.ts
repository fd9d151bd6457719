/** A loopback port and a throwaway `redis-server` (no persistence) for the shared-state benches. */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import pino from 'pino';
import { RedisConnection } from '../../src/state/redis-connection.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

export async function startRedisServer(dir: string): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}/0`;
  const probe = new RedisConnection({ url, log: pino({ level: 'silent' }) });
  if (!(await probe.connect(10_000))) throw new Error('redis-server did not start');
  await probe.close();
  return { url, stop: () => child.kill('SIGTERM') };
}
