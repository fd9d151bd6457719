/**
 * Run in a child process by crash.test.ts (through vite's runnerImport, so it stays TypeScript):
 * records the hello-world frames in real time, one 20 ms frame per 20 ms, looping the capture,
 * and prints how many frames it has handed to the sink, until it is killed.
 */
import { pino } from 'pino';
import { createRecordingSinkFactory } from '../../../src/sinks/recording/factory.js';
import { Feeder, loadCapture } from './helpers.js';

export function main(dataDir: string): void {
  const capture = loadCapture();
  const factory = createRecordingSinkFactory({ dataDir });
  const sink = factory.open(capture.info, { log: pino({ level: 'silent' }), stats: { dropped: 0, errors: 0, queued: 0 } });
  if (sink === null) throw new Error('sink refused the capture');
  const feeder = new Feeder(sink);
  const t0 = performance.now();
  let fed = 0;
  setInterval(() => {
    const due = Math.floor((performance.now() - t0) / 20) + 1;
    while (fed < due) {
      feeder.feed('inbound', 99 + fed * 20, capture.frames[fed % capture.frames.length]!.mulaw);
      fed++;
    }
    process.stdout.write(`${fed}\n`);
  }, 20);
}
