/**
 * The live sessions of one gateway, and the one coarse ticker that enforces their timeouts
 * (undici's timers.js idea: one interval for many deadlines, not a timer per socket).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { GatewayMetrics } from '../metrics.js';
import { CLOSE, type StreamSession } from './stream-session.js';
import { STATE } from './stream-state.js';

export interface RegistryOptions {
  handshakeTimeoutMs: number;
  stallTimeoutMs: number;
  metrics: GatewayMetrics;
  tickMs?: number;
}

export class SessionRegistry {
  /** Every connected session, started or not. */
  readonly sessions = new Set<StreamSession>();
  /** streamSid → the session holding it, from its `start` until its sinks finalised. */
  readonly #liveSids = new Map<string, StreamSession>();
  #started = 0;
  readonly #opts: RegistryOptions;
  readonly #ticker: NodeJS.Timeout;
  readonly #loopDelay: IntervalHistogram;
  /** Event-loop delay p99 over the last tick window, ms. */
  loopDelayP99Ms = 0;
  #idle: (() => void)[] = [];

  constructor(opts: RegistryOptions) {
    this.#opts = opts;
    this.#loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.#loopDelay.enable();
    this.#ticker = setInterval(() => this.#tick(), opts.tickMs ?? 1000);
    this.#ticker.unref();
  }

  /** Streams that sent `start` and have not ended. */
  get startedCount(): number {
    return this.#started;
  }

  add(session: StreamSession): void {
    this.sessions.add(session);
  }

  /**
   * Reserves `streamSid` for `session`; false when another live session holds it. A second
   * connection reusing a live SID would otherwise open the same recording files.
   */
  claimStreamSid(streamSid: string, session: StreamSession): boolean {
    const holder = this.#liveSids.get(streamSid);
    if (holder !== undefined && holder !== session) return false;
    this.#liveSids.set(streamSid, session);
    return true;
  }

  markStarted(): void {
    this.#started++;
    this.#opts.metrics.activeStreams = this.#started;
  }

  markStopped(): void {
    this.#started--;
    this.#opts.metrics.activeStreams = this.#started;
  }

  /** The session ended and its sinks finalised (drain waits for this). */
  remove(session: StreamSession): void {
    if (!this.sessions.delete(session)) return;
    const sid = session.info?.streamSid;
    if (sid !== undefined && this.#liveSids.get(sid) === session) this.#liveSids.delete(sid);
    if (this.sessions.size === 0) {
      const waiters = this.#idle;
      this.#idle = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves when no session is left. */
  whenIdle(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #tick(): void {
    const now = performance.now();
    const { handshakeTimeoutMs, stallTimeoutMs } = this.#opts;
    for (const s of this.sessions) {
      if (s.state < STATE.STARTED && now - s.openedAt > handshakeTimeoutMs) {
        s.fail('handshake_timeout', CLOSE.POLICY);
      } else if (s.state === STATE.STARTED && now - s.lastMessageAt > stallTimeoutMs) {
        s.log.warn({ idleMs: Math.round(now - s.lastMessageAt) }, 'stream stalled; closing');
        s.stall();
      }
    }
    this.loopDelayP99Ms = this.#loopDelay.percentile(99) / 1e6;
    this.#loopDelay.reset();
  }

  close(): void {
    clearInterval(this.#ticker);
    this.#loopDelay.disable();
  }
}
