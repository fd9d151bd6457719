/**
 * A speech engine backed by a remote streaming service (deepgram, vosk): one WebSocket per
 * transcribed track (both_tracks = two connections, each the track's own audio; the services'
 * multichannel modes are not used, so a track's reconnection never disturbs the other).
 * One ticker per engine moves audio held back by backpressure, sends KeepAlives and detects
 * stalled services, for all sessions: no timer per stream.
 */
import type { EngineSession, EngineSessionOptions, SpeechEngine } from '../engine.js';
import type { RemoteProtocol } from './protocol.js';
import { RemoteSession, type RemoteSessionSettings } from './remote-session.js';
import { createRemoteAsrStats, type RemoteAsrStats } from './stats.js';

export const DEFAULT_REMOTE_SETTINGS: RemoteSessionSettings = {
  replaySeconds: 10,
  stallMs: 10_000,
  endTimeoutMs: 5000,
  backoffBaseMs: 250,
  backoffMaxMs: 5000,
  keepAliveMs: 3000,
};

const TICK_MS = 100;

/** A speech engine that also exposes its per-engine counters (`streamgate_asr_*{engine}`). */
export interface RemoteSpeechEngine extends SpeechEngine {
  readonly asrStats: RemoteAsrStats;
}

class RemoteEngine implements RemoteSpeechEngine {
  readonly name: string;
  readonly asrStats = createRemoteAsrStats();
  readonly #protocol: RemoteProtocol;
  readonly #settings: RemoteSessionSettings;
  readonly #sessions = new Set<RemoteSession>();
  #ticker: NodeJS.Timeout | null = null;
  #shutdown = false;

  constructor(protocol: RemoteProtocol, settings: Partial<RemoteSessionSettings>) {
    this.name = protocol.engine;
    this.#protocol = protocol;
    this.#settings = { ...DEFAULT_REMOTE_SETTINGS, ...settings };
  }

  open(opts: EngineSessionOptions): EngineSession {
    const session = new RemoteSession(opts, this.#protocol, this.asrStats, this.#settings, (s) => {
      this.#sessions.delete(s);
      if (this.#sessions.size === 0 && this.#ticker !== null) {
        clearInterval(this.#ticker);
        this.#ticker = null;
      }
    });
    this.#sessions.add(session);
    if (this.#ticker === null && !this.#shutdown) {
      this.#ticker = setInterval(() => {
        const now = performance.now();
        for (const s of this.#sessions) if (s.needsTick) s.tick(now);
      }, TICK_MS);
      this.#ticker.unref();
    }
    return session;
  }

  async shutdown(): Promise<void> {
    if (this.#shutdown) return;
    this.#shutdown = true;
    await Promise.all(Array.from(this.#sessions, (s) => s.kill()));
    this.#sessions.clear();
    if (this.#ticker !== null) clearInterval(this.#ticker);
    this.#ticker = null;
  }
}

export function createRemoteEngine(protocol: RemoteProtocol, settings: Partial<RemoteSessionSettings> = {}): RemoteSpeechEngine {
  return new RemoteEngine(protocol, settings);
}
