/**
 * Warm-up: before a new gateway process listens, a throwaway gateway on a loopback port carries
 * a few paced streams end to end (upgrade, `start`, media, recording, `stop`, finish), so V8 has
 * compiled the media path before the first real call arrives.
 *
 * Why: a fresh process compiles its hot functions (TurboFan, on V8's helper threads) during its
 * first burst of streams, on the core the event loop needs: ~170 ms of compiling in 760 ms of a
 * 500-stream start on the bench's pinned core, and loop stalls of 60-140 ms. A process that has
 * carried 50 streams for a few seconds first meets the same burst with stalls of 13-23 ms
 * (bench/RESULTS.md, "Warm-up"). A redeploy starts processes exactly when calls are live.
 *
 * The throwaway gateway is built by the same createAppGateway, from the process's configuration
 * with everything that reaches outside taken away: no Twilio credentials (no REST calls, no
 * signatures), no Redis, no rules, no webhook, no transcription engine, its own metrics registry
 * and a silent logger, recordings in a temporary directory removed afterwards. Compiled code
 * belongs to the functions, not to the gateway instance, so the real gateway built next runs it.
 * The recording's I/O thread is one per process and is warmed with it.
 *
 * A warm-up that fails is logged and skipped: it never stops the gateway from starting.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { FRAME_MS, SILENCE_PAYLOAD, toneSource } from './emulator/audio-source.js';
import { connectedMessage, mediaMessage, startMessage, stopMessage } from './emulator/messages.js';
import { createAppGateway } from './gateway/app.js';
import type { GatewayConfig } from './gateway/config.js';
import { createLogger } from './gateway/logger.js';
import { newSid } from './twilio/sids.js';

/** Media per warm-up stream: enough calls of every per-frame function for TurboFan, and several recording flushes. */
export const WARM_UP_FRAMES = 125;
/** A warm-up that has not ended by then is cut short (its sockets terminated). */
const WARM_UP_DEADLINE_MS = 15_000;

export interface WarmUpResult {
  streams: number;
  /** Media messages the streams sent. */
  frames: number;
  ms: number;
}

/**
 * Runs `streams` paced streams of {@link WARM_UP_FRAMES} frames each through a throwaway gateway
 * and closes it. Resolves to what ran, or null when it was off (0 streams) or failed (logged).
 */
export async function warmUp(config: GatewayConfig, log: Logger, streams = config.warmUpStreams, frames = WARM_UP_FRAMES): Promise<WarmUpResult | null> {
  if (streams <= 0) return null;
  const t0 = performance.now();
  let dir: string | null = null;
  try {
    dir = mkdtempSync(join(tmpdir(), 'streamgate-warmup-'));
    const gateway = await createAppGateway(isolated(config, dir), { log: createLogger('silent'), defaultMetrics: false, spareStreams: streams });
    try {
      // Exclusive: in a cluster worker a shared port 0 would be one port for every worker's
      // warm-up, and the primary would hand one worker's streams to another.
      await gateway.app.listen({ port: 0, host: '127.0.0.1', exclusive: true });
      const sent = await driveStreams(`ws://127.0.0.1:${gateway.port}/media`, streams, frames);
      const result = { streams, frames: sent, ms: Math.round(performance.now() - t0) };
      log.info(result, 'warmed up');
      return result;
    } finally {
      await gateway.close();
    }
  } catch (err) {
    log.warn({ err }, 'warm-up failed; starting without it');
    return null;
  } finally {
    if (dir !== null) removeQuietly(dir, log);
  }
}

/** The warm-up's directory goes; a failure to remove it is logged, never thrown into start-up. */
function removeQuietly(dir: string, log: Logger): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    log.warn({ err, dir }, 'warm-up directory not removed');
  }
}

/** The process's configuration with every way out of the process removed (see the file comment). */
function isolated(config: GatewayConfig, dataDir: string): GatewayConfig {
  return {
    ...config,
    host: '127.0.0.1',
    port: 0,
    publicUrl: 'http://127.0.0.1',
    twilioAccountSid: undefined,
    twilioAuthToken: undefined,
    twilioApiKeySid: undefined,
    twilioApiKeySecret: undefined,
    dataDir,
    transcription: 'none',
    deepgramApiKey: undefined,
    rulesFile: undefined,
    transcriptWebhookUrl: undefined,
    adminToken: undefined,
    streamTokenRequired: false,
    maxStreams: undefined,
    dataDirMinFreeMb: 0,
    // Start-up itself delays the loop; the warm-up's streams must not be refused as overload.
    maxEventLoopDelayMs: Number.MAX_SAFE_INTEGER,
    autoStreamTrack: 'off',
    redisUrl: undefined,
    workers: 1,
    warmUpStreams: 0,
  };
}

/** Opens every stream at once (a burst, as a conference start is) and paces their media from one 20 ms timer. */
function driveStreams(url: string, streams: number, frames: number): Promise<number> {
  // Half a second of a 440 Hz tone, then half a second of silence, so the level meter sees both.
  const tone = toneSource(440, FRAME_MS, 0.25).payload(0);
  const accountSid = newSid('account');
  return new Promise((resolve) => {
    let sent = 0;
    let ended = 0;
    const live: { ws: WebSocket; streamSid: string; callSid: string; chunk: number }[] = [];
    const end = (): void => {
      if (++ended === streams) finish();
    };
    const ticker = setInterval(() => {
      for (const s of live) {
        if (s.chunk >= frames) continue;
        if (s.ws.readyState !== WebSocket.OPEN) {
          s.chunk = frames; // the gateway closed it
          continue;
        }
        // Twilio's numbering: `start` is 1, media from 2 with chunks from 1, `stop` after the last.
        const n = s.chunk++;
        s.ws.send(mediaMessage(n + 2, 'inbound', n + 1, n * FRAME_MS, Math.floor(n / 25) % 2 === 0 ? tone : SILENCE_PAYLOAD, s.streamSid));
        sent++;
        if (s.chunk === frames) {
          s.ws.send(stopMessage(n + 3, accountSid, s.callSid, s.streamSid));
          s.ws.close(1000);
        }
      }
    }, FRAME_MS);
    const deadline = setTimeout(() => {
      for (const s of live) s.ws.terminate();
      finish();
    }, WARM_UP_DEADLINE_MS);
    let done = false;
    function finish(): void {
      if (done) return;
      done = true;
      clearInterval(ticker);
      clearTimeout(deadline);
      resolve(sent);
    }
    for (let i = 0; i < streams; i++) {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      const s = { ws, streamSid: newSid('stream'), callSid: newSid('call'), chunk: 0 };
      ws.on('open', () => {
        ws.send(connectedMessage());
        ws.send(startMessage(1, { accountSid, streamSid: s.streamSid, callSid: s.callSid, tracks: ['inbound'], customParameters: {} }));
        live.push(s);
      });
      ws.on('error', () => undefined); // its close follows
      ws.on('close', end);
    }
  });
}
