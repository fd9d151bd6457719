/**
 * Recordings made in a child process, for the tests that need a process to die or to hit an OS
 * limit (child-process.test.ts). Loaded through vite's runnerImport so it stays TypeScript;
 * `node … recording-child.ts <dataDir> <scenario>` runs one scenario.
 */
import { pino } from 'pino';
import { createRecordingSinkFactory } from '../../../src/sinks/recording/factory.js';
import type { SinkContext } from '../../../src/sinks/sink.js';
import { Feeder, loadCapture } from './helpers.js';

/**
 * Records the hello-world frames in real time, one 20 ms frame per 20 ms, looping the capture,
 * and prints how many frames it has handed to the sink, until it is killed.
 */
export function live(dataDir: string): void {
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

/**
 * Opens a stereo mu-law recording and, once its open is done (the .partial and its header are on
 * disk), prints `opened` and waits, with no media: no sidecar is written before the first media
 * timestamp, so a kill now is the window between the open and the sidecar.
 */
export async function opened(dataDir: string): Promise<void> {
  const capture = loadCapture();
  const factory = createRecordingSinkFactory({ dataDir, format: 'mulaw' });
  const sink = factory.open({ ...capture.info, tracks: ['inbound', 'outbound'] }, { log: pino({ level: 'silent' }), stats: { dropped: 0, errors: 0, queued: 0 } });
  if (sink === null) throw new Error('sink refused the capture');
  await sink.flush(); // waits for the open; with no media it writes nothing
  process.stdout.write('opened\n');
  setInterval(() => undefined, 1000);
}

/**
 * Records the whole capture as fast as the writer drains, closes, and prints one JSON line: the
 * stats and the error log lines. Run under `ulimit -f` to make writes fail part-way.
 */
export async function whole(dataDir: string): Promise<void> {
  const capture = loadCapture();
  const errors: unknown[] = [];
  const log = pino({ level: 'error' }, { write: (s: string) => void errors.push(JSON.parse(s)) });
  const ctx: SinkContext = { log, stats: { dropped: 0, errors: 0, queued: 0 } };
  const factory = createRecordingSinkFactory({ dataDir });
  const sink = factory.open(capture.info, ctx);
  if (sink === null) throw new Error('sink refused the capture');
  const feeder = new Feeder(sink);
  for (let i = 0; i < capture.frames.length; i++) {
    const f = capture.frames[i]!;
    feeder.feed(f.track, f.timestampMs, f.mulaw);
    if (i % 50 === 49) await sink.flush();
  }
  await sink.close('stopped');
  await factory.shutdown();
  process.stdout.write(`${JSON.stringify({ stats: ctx.stats, errors })}\n`);
}
