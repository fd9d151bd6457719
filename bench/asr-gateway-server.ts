/**
 * streamgate under the speech-engine bench (bench/asr.bench.ts): the production composition
 * (`createAppGateway`: recording, level meter, transcription) with the engine named by
 * BENCH_TRANSCRIPTION, pointed at the bench's service peer for `deepgram` / `vosk`, plus the
 * bench lag sink. Run as a pinned child process through bench/lib/server-harness.ts.
 */
import { createAppGateway } from '../src/gateway/app.js';
import { loadConfig } from '../src/gateway/config.js';
import { createLagSinkFactory } from './lag-sink.js';
import type { LagRecorder } from './lib/lag.js';
import { runServerChild } from './lib/server-harness.js';

runServerChild(async (lag: LagRecorder) => {
  const env = process.env;
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    STREAMGATE_DATA_DIR: env.BENCH_DATA_DIR ?? './data/bench',
    TRANSCRIPTION: env.BENCH_TRANSCRIPTION ?? 'none',
    TRANSCRIPTION_MAX_STREAMS: env.BENCH_STREAMS ?? '10',
    DEEPGRAM_API_KEY: 'bench-key',
    DEEPGRAM_URL: env.BENCH_SERVICE_URL === undefined ? undefined : `${env.BENCH_SERVICE_URL}/v1/listen`,
    VOSK_URL: env.BENCH_SERVICE_URL,
    MAX_EVENT_LOOP_DELAY_MS: '60000',
  });
  const gw = await createAppGateway(config);
  const lagSink = createLagSinkFactory(lag);
  gw.sinkFactories.push(lagSink);
  await gw.listen(0, '127.0.0.1');
  return {
    server: { port: gw.port, frames: () => lagSink.frames, close: () => gw.close() },
    info: { sinks: gw.sinkFactories.map((f) => f.name).join(' + '), transcription: config.transcription ?? 'default' },
  };
});
