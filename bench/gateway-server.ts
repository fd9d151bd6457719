/**
 * streamgate under test: the production composition (`createAppGateway`, default config, the
 * recording sink as app.ts wires it), transcription off, LOG_LEVEL=warn, plus the bench-only lag
 * sink after the production sinks. Run by bench/ingest.bench.ts as a pinned child process.
 *
 * If app.ts does not wire the recording sink yet but the module exists, this entry adds it with
 * the same configuration values app.ts would use, so the bench measures the gateway as shipped
 * as closely as the tree allows; the report says which sinks ran.
 */
import { loadConfig } from '../src/gateway/config.js';
import { createAppGateway } from '../src/gateway/app.js';
import { createLogger } from '../src/gateway/logger.js';
import { warmUp } from '../src/warm-up.js';
import type { SinkFactory } from '../src/sinks/sink.js';
import { createLagSinkFactory } from './lag-sink.js';
import type { LagRecorder } from './lib/lag.js';
import { runServerChild } from './lib/server-harness.js';

type RecordingModule = { createRecordingSinkFactory?: (opts: { dataDir: string; format?: string; bufferMs?: number; flushIntervalMs?: number }) => SinkFactory };

async function recordingFactory(dataDir: string, format: string, bufferMs: number, flushIntervalMs?: number): Promise<SinkFactory | null> {
  // A computed specifier: the bench must build and run whether or not the module exists yet.
  const spec = new URL(import.meta.url.endsWith('.ts') ? '../src/sinks/recording/index.ts' : '../src/sinks/recording/index.js', import.meta.url).href;
  try {
    const mod = (await import(spec)) as RecordingModule;
    return mod.createRecordingSinkFactory?.({ dataDir, format, bufferMs, ...(flushIntervalMs ? { flushIntervalMs } : {}) }) ?? null;
  } catch {
    return null;
  }
}

runServerChild(async (lag: LagRecorder) => {
  const dataDir = process.env.BENCH_DATA_DIR ?? './data/bench';
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    TRANSCRIPTION: 'none',
    STREAMGATE_DATA_DIR: dataDir,
    ...(process.env.BENCH_RECORDING_FORMAT ? { RECORDING_FORMAT: process.env.BENCH_RECORDING_FORMAT } : {}),
    // What-if runs: another number of warm-up streams (0: a cold process).
    ...(process.env.BENCH_WARMUP_STREAMS ? { WARMUP_STREAMS: process.env.BENCH_WARMUP_STREAMS } : {}),
  });
  // As `streamgate start` does before it listens (src/warm-up.ts).
  const log = createLogger(config.logLevel);
  await warmUp(config, log);
  const gw = await createAppGateway(config, { log });
  let recordingAddedByBench = false;
  const flushMs = Number(process.env.BENCH_RECORDING_FLUSH_MS ?? 0);
  if (flushMs > 0) {
    // Experiment: the production recording sink with a different flush interval (what-if runs).
    const i = gw.sinkFactories.findIndex((f) => f.name === 'recording');
    const rec = await recordingFactory(dataDir, config.recordingFormat, config.recordingBufferMs, flushMs);
    if (i >= 0 && rec !== null) gw.sinkFactories[i] = rec;
  }
  if (process.env.BENCH_NO_RECORDING === '1') {
    for (let i = gw.sinkFactories.length - 1; i >= 0; i--) if (gw.sinkFactories[i]!.name === 'recording') gw.sinkFactories.splice(i, 1);
  } else if (!gw.sinkFactories.some((f) => f.name === 'recording')) {
    const rec = await recordingFactory(dataDir, config.recordingFormat, config.recordingBufferMs);
    if (rec !== null) {
      gw.sinkFactories.unshift(rec);
      recordingAddedByBench = true;
    }
  }
  // The media endpoint reads this same array when each stream starts.
  const lagSink = createLagSinkFactory(lag);
  gw.sinkFactories.push(lagSink);
  await gw.listen(0, '127.0.0.1');
  const rec = gw.metrics.sinkStats('recording');
  return {
    server: {
      port: gw.port,
      frames: () => lagSink.frames,
      close: () => gw.close(),
      extra: () => ({
        hotFramesInbound: gw.metrics.hot.framesInbound,
        hotFramesOutbound: gw.metrics.hot.framesOutbound,
        hotFramesLost: gw.metrics.hot.framesLost,
        recordingDropped: rec.dropped,
        recordingErrors: rec.errors,
        recordingQueued: rec.queued,
      }),
    },
    info: {
      sinks: gw.sinkFactories.map((f) => f.name).join(' + '),
      recordingAddedByBench,
      recordingFormat: config.recordingFormat,
      recordingBufferMs: config.recordingBufferMs,
      recordingFlushMs: flushMs > 0 ? flushMs : 'default',
    },
  };
});
