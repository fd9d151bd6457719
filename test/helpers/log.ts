/** A real pino logger whose JSON lines a test can read. */
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../../src/gateway/logger.js';

export interface CapturedLog {
  log: Logger;
  /** Raw lines, as written. */
  logs: string[];
  /** The lines parsed. */
  lines(): Record<string, unknown>[];
}

export function captureLog(level = 'debug'): CapturedLog {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line !== '') logs.push(line);
      cb();
    },
  });
  return { log: createLogger(level, sink), logs, lines: () => logs.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
