/**
 * One transcribed track on a remote speech service (Deepgram, Vosk server) over a WebSocket.
 *
 *   write(mu-law) ─► MulawRing (≤ ASR_REPLAY_SECONDS) ─► socket (while its buffer is small)
 *                        │ committed: covered by a final        │ ConnectionClock: conn pos → ring pos, media ms
 *                        ▼                                      ▼
 *                   replayed after a reconnect          results ─► onResult (media-clock times)
 *
 * States:
 *
 *   CONNECTING ──open──► OPEN ──drop / error / stall──► WAITING ──backoff (full jitter)──► CONNECTING
 *       │ 401/403, other 4xx: FAILED (one log line, counted; audio discarded, the call is still recorded)
 *   end(): send what is left, then the close message; the service answers its last finals and
 *   closes ─► ENDED. Bounded by endTimeoutMs; whatever is not final by then is a hole.
 *
 * Replay: after a reconnection the audio since the last final is sent again (at most what the
 * ring keeps), and the new connection's clock starts at that audio, so word times go on without
 * a jump. Audio older than the ring when the service came back is a hole: reported (onHole) and
 * counted. Backpressure: while the socket holds more than MAX_BUFFERED_SECONDS unsent, audio
 * waits in the ring; when the ring is full the oldest unsent audio is dropped and counted.
 */
import WebSocket from 'ws';
import { encodeMulaw } from '../../../../twilio/mulaw.js';
import type { TranscriptResult, TranscriptWord } from '../../../../core/transcript.js';
import type { EngineSession, EngineSessionOptions } from '../engine.js';
import { ConnectionClock, MulawRing } from './mulaw-ring.js';
import type { RemoteProtocol } from './protocol.js';
import type { RemoteAsrStats } from './stats.js';

const enum State {
  Connecting,
  Open,
  Waiting,
  Failed,
  Ended,
}

export interface RemoteSessionSettings {
  /** Audio kept for replay and backlog, seconds (ASR_REPLAY_SECONDS). */
  replaySeconds: number;
  /** A service that answers nothing this long while audio flows is reconnected, ms. */
  stallMs: number;
  /** end(): how long to wait for the last finals, ms. */
  endTimeoutMs: number;
  /** Reconnect backoff: first ceiling and cap, ms. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** KeepAlive after this long without audio, ms. */
  keepAliveMs: number;
}

/** Audio the socket may hold unsent before the session stops handing it more. */
const MAX_BUFFERED_SECONDS = 2;
/** Largest audio message (replays are sent in pieces this big). */
const MAX_CHUNK_SAMPLES = 8000;
/** Largest message accepted from the service. */
export const MAX_REPLY_BYTES = 256 * 1024;
/** Replies a per-message service may owe before the session treats it as stalled. */
const MAX_PENDING_REPLIES = 4096;
/** Seconds a service may report beyond the audio it was sent (rounding, padding). */
const TIME_SLACK_SEC = 1;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * A reply that settles "everything it answers" (Vosk's empty partial or result) is trusted only
 * up to this long before the audio it answers: a word just begun may not show in a partial yet.
 */
const ANSWERED_LOOKBACK_SAMPLES = 8000;

export class RemoteSession implements EngineSession {
  readonly #opts: EngineSessionOptions;
  readonly #protocol: RemoteProtocol;
  readonly #stats: RemoteAsrStats;
  readonly #settings: RemoteSessionSettings;
  readonly #onEnded: (s: RemoteSession) => void;
  readonly #ring: MulawRing;
  #state = State.Connecting;
  #ws: WebSocket | null = null;
  #clock: ConnectionClock | null = null;
  /** Ring position covered by finals. */
  #committed = 0;
  /** Ring position the current connection continues from (everything before was sent or dropped). */
  #sent = 0;
  /** Connections opened so far (a later one is a reconnection). */
  #opened = 0;
  /** Failed attempts in a row (backoff exponent). */
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  /** Connection-clock ends of audio messages not yet answered (per-message services). */
  #pending: number[] = [];
  #lastHeardAt = 0;
  #lastAudioAt = 0;
  #lastSentAt = 0;
  #openedAt = 0;
  /** The last partial's text, so identical partials are not repeated. */
  #lastPartial = '';
  /** Unsent audio dropped and not yet reported (ring positions), while it goes on. */
  #pendingHole: [number, number] | null = null;
  /** Hole ranges already reported (ring positions), merged, oldest first. */
  readonly #holes: [number, number][] = [];
  #ending = false;
  #closeSent = false;
  #endPromise: Promise<void> | null = null;
  #resolveEnd: (() => void) | null = null;
  #endTimer: NodeJS.Timeout | null = null;
  #mulawScratch = new Uint8Array(160);
  readonly #chunk = new Uint8Array(MAX_CHUNK_SAMPLES);
  #finished = false;
  /** Logged once per outage, not per attempt. */
  #warnedOutage = false;

  constructor(opts: EngineSessionOptions, protocol: RemoteProtocol, stats: RemoteAsrStats, settings: RemoteSessionSettings, onEnded: (s: RemoteSession) => void) {
    this.#opts = opts;
    this.#protocol = protocol;
    this.#stats = stats;
    this.#settings = settings;
    this.#onEnded = onEnded;
    this.#ring = new MulawRing(settings.replaySeconds * 8000);
    this.#connect();
  }

  write(pcm8k: Int16Array, samples: number, mediaTimestampMs: number, mulaw?: Uint8Array): void {
    if (this.#ending || this.#state === State.Failed || this.#state === State.Ended || samples <= 0) return;
    let bytes = mulaw;
    if (bytes === undefined) {
      if (this.#mulawScratch.length < samples) this.#mulawScratch = new Uint8Array(samples);
      bytes = encodeMulaw(pcm8k.subarray(0, samples), this.#mulawScratch);
    }
    const ring = this.#ring;
    ring.push(bytes, samples, mediaTimestampMs);
    if (ring.tail > this.#sent) {
      // The service is not taking audio as fast as it comes (or is away): the oldest unsent
      // audio is gone. It will never be recognised; reported as one hole when sending resumes.
      const dropped = ring.tail - this.#sent;
      const hole = this.#pendingHole;
      if (hole !== null && hole[1] === this.#sent) hole[1] = ring.tail;
      else {
        this.#reportPendingHole();
        this.#pendingHole = [this.#sent, ring.tail];
      }
      this.#opts.onDrop(Math.ceil(dropped / 160));
      this.#sent = ring.tail;
    }
    if (this.#state === State.Open) this.#flush(false);
  }

  end(): Promise<void> {
    if (this.#endPromise !== null) return this.#endPromise;
    this.#ending = true;
    this.#endPromise = new Promise<void>((resolve) => (this.#resolveEnd = resolve));
    if (this.#state === State.Failed || this.#state === State.Ended) {
      this.#finish();
      return this.#endPromise;
    }
    this.#endTimer = setTimeout(() => this.#endTimedOut(), this.#settings.endTimeoutMs);
    this.#endTimer.unref();
    if (this.#state === State.Open) this.#sendCloseIfDone();
    return this.#endPromise;
  }

  /** Gateway shutdown: closes now, without waiting for the service. */
  kill(): Promise<void> {
    this.#ending = true;
    this.#endPromise ??= Promise.resolve();
    this.#ws?.terminate();
    this.#finish();
    return this.#endPromise;
  }

  /** Called by the engine's ticker: moves audio held back by backpressure, keeps alive, detects a stall. */
  tick(now: number): void {
    if (this.#state !== State.Open) return;
    const ws = this.#ws!;
    if (this.#sent < this.#ring.writePos) this.#flush(false);
    if (this.#ending) this.#sendCloseIfDone();
    const s = this.#settings;
    if (!this.#closeSent && this.#protocol.keepAliveMessage !== null && now - this.#lastSentAt >= s.keepAliveMs) {
      ws.send(this.#protocol.keepAliveMessage);
      this.#lastSentAt = now;
    }
    // Audio kept flowing but nothing came back: the connection is dead in a way TCP has not told us.
    const heard = Math.max(this.#lastHeardAt, this.#openedAt);
    if (this.#lastAudioAt > heard && now - heard > s.stallMs) {
      this.#stats.stalls++;
      this.#opts.log.warn({ engine: this.#protocol.engine, silentMs: Math.round(now - heard) }, 'speech service stopped answering; reconnecting');
      this.#dropConnection();
    }
  }

  /** True when `tick` has something to do for this session. */
  get needsTick(): boolean {
    return this.#state === State.Open;
  }

  // ── connection ──────────────────────────────────────────────────────────────────────────

  #connect(): void {
    this.#state = State.Connecting;
    const p = this.#protocol;
    const ws = new WebSocket(p.url, { headers: { ...p.headers }, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, maxPayload: MAX_REPLY_BYTES, perMessageDeflate: false });
    this.#ws = ws;
    ws.on('unexpected-response', (req, res) => {
      // The handshake was refused with an HTTP status: read a bounded reason, then decide.
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < 300) body += d;
      });
      const decide = () => {
        req.destroy();
        if (this.#ws !== ws) return;
        this.#ws = null;
        this.#refused(res.statusCode ?? 0, body.slice(0, 300));
      };
      res.on('end', decide);
      res.on('error', decide);
      res.on('aborted', decide);
    });
    ws.on('open', () => this.#onOpen(ws));
    ws.on('message', (data, isBinary) => this.#onMessage(ws, data, isBinary));
    ws.on('error', (err) => {
      if (this.#ws === ws && !this.#warnedOutage) this.#opts.log.debug({ err: err.message, engine: p.engine }, 'speech service socket error');
    });
    ws.on('close', (code, reason) => this.#onClose(ws, code, reason.toString('utf8').slice(0, 200)));
  }

  #onOpen(ws: WebSocket): void {
    if (this.#ws !== ws) return;
    const now = performance.now();
    this.#state = State.Open;
    this.#openedAt = now;
    this.#lastSentAt = now;
    this.#lastHeardAt = 0;
    this.#lastAudioAt = 0;
    this.#pending = [];
    this.#lastPartial = '';
    this.#closeSent = false;
    this.#stats.connections++;
    this.#opened++;
    this.#clock = new ConnectionClock();
    const ring = this.#ring;
    if (this.#opened > 1) {
      this.#stats.reconnects++;
      // Resend what no final covers yet, as far back as the ring reaches; older audio is a hole.
      const from = Math.max(this.#committed, ring.tail);
      // One hole for the whole outage: what no final covered, up to where the replay starts.
      const holeFrom = Math.min(this.#committed, this.#pendingHole?.[0] ?? this.#committed);
      this.#pendingHole = null;
      if (from > holeFrom) this.#reportHole(holeFrom, from);
      this.#committed = from;
      const replay = Math.max(0, this.#sent - from);
      this.#stats.replayedSamples += replay;
      this.#sent = from;
      this.#opts.log.info(
        { engine: this.#protocol.engine, replayMs: replay / 8, fromMs: Math.round(ring.mediaMsAt(from)), reconnects: this.#opened - 1 },
        'speech service reconnected; replaying audio not yet final',
      );
    }
    this.#warnedOutage = false;
    for (const m of this.#protocol.opening) ws.send(m);
    this.#flush(this.#ending);
    if (this.#ending) this.#sendCloseIfDone();
  }

  /** The handshake got an HTTP status instead of 101. */
  #refused(status: number, body: string): void {
    const engine = this.#protocol.engine;
    if (status === 401 || status === 403) {
      this.#stats.authFailures++;
      this.#fail(`${engine} refused the credentials (HTTP ${status}); check ${engine === 'deepgram' ? 'DEEPGRAM_API_KEY' : 'the service'}. This stream is recorded but not transcribed`, status, body);
      return;
    }
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      this.#stats.configFailures++;
      this.#fail(`${engine} refused the request (HTTP ${status}): bad configuration (${engine === 'deepgram' ? 'DEEPGRAM_URL, DEEPGRAM_PARAMS' : 'VOSK_URL'}). This stream is recorded but not transcribed`, status, body);
      return;
    }
    this.#retryLater(`HTTP ${status}`);
  }

  #fail(message: string, status: number, body: string): void {
    this.#state = State.Failed;
    this.#opts.log.error({ engine: this.#protocol.engine, status, reason: body }, message);
    this.#opts.onError?.(new Error(message));
    if (this.#ending) this.#finish();
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (this.#ws !== ws) return;
    this.#ws = null;
    this.#clock = null;
    if (this.#state === State.Ended || this.#state === State.Failed) return;
    if (this.#closeSent) {
      // The service closed after our close message: it has said all it will say.
      this.#finish();
      return;
    }
    this.#retryLater(`closed ${code}${reason === '' ? '' : ` ${reason}`}`);
  }

  /** Closes the current connection for a reconnection (stall, protocol trouble). */
  #dropConnection(): void {
    const ws = this.#ws;
    if (ws === null) return;
    this.#ws = null;
    this.#clock = null;
    ws.terminate();
    this.#retryLater('dropped by the gateway');
  }

  #retryLater(why: string): void {
    this.#state = State.Waiting;
    if (!this.#warnedOutage) {
      this.#warnedOutage = true;
      this.#opts.log.warn({ engine: this.#protocol.engine, why }, 'speech service connection lost; reconnecting');
    }
    const s = this.#settings;
    const ceiling = Math.min(s.backoffMaxMs, s.backoffBaseMs * 2 ** Math.min(this.#attempt, 16));
    this.#attempt++;
    // Full jitter: many streams losing the same service do not come back in step.
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#state === State.Waiting) this.#connect();
    }, Math.random() * ceiling);
    this.#retryTimer.unref();
  }

  // ── audio out ───────────────────────────────────────────────────────────────────────────

  /** Sends unsent audio while the socket's own buffer is small (all of it when `all`). */
  #flush(all: boolean): void {
    const ws = this.#ws!;
    const clock = this.#clock!;
    const ring = this.#ring;
    const p = this.#protocol;
    const limit = MAX_BUFFERED_SECONDS * 8000 * p.bytesPerSample;
    if (this.#pendingHole !== null && (all || ws.bufferedAmount < limit)) this.#reportPendingHole();
    while (this.#sent < ring.writePos && (all || ws.bufferedAmount < limit)) {
      const from = this.#sent;
      const to = Math.min(ring.runEnd(from), from + MAX_CHUNK_SAMPLES);
      const n = to - from;
      ring.copy(from, to, this.#chunk);
      clock.append(from, ring.mediaMsAt(from), n);
      ws.send(p.encode(this.#chunk, n));
      if (p.repliesPerMessage) {
        if (this.#pending.length >= MAX_PENDING_REPLIES) this.#pending.shift();
        this.#pending.push(clock.sent);
      }
      this.#sent = to;
      this.#lastSentAt = this.#lastAudioAt = performance.now();
    }
  }

  #sendCloseIfDone(): void {
    if (this.#closeSent || this.#state !== State.Open) return;
    this.#flush(true);
    this.#ws!.send(this.#protocol.closeMessage);
    this.#closeSent = true;
    this.#lastSentAt = performance.now();
  }

  // ── results in ──────────────────────────────────────────────────────────────────────────

  #onMessage(ws: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (this.#ws !== ws || this.#clock === null) return;
    const clock = this.#clock;
    this.#lastHeardAt = performance.now();
    const answered = this.#protocol.repliesPerMessage ? (this.#pending.shift() ?? clock.sent) : clock.sent;
    if (isBinary) {
      this.#malformed('binary message');
      return;
    }
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
    const msg = this.#protocol.parse(text, clock.sent / 8000 + TIME_SLACK_SEC);
    if (msg.kind === 'malformed') {
      this.#malformed(msg.reason);
      return;
    }
    if (msg.kind === 'info') return;
    // A result of substance shows the service works: the next outage starts its backoff afresh.
    this.#attempt = 0;
    const words: TranscriptWord[] = msg.words.map((w) => ({
      word: w.word,
      startMs: round(clock.mediaMsAt(w.startSec * 8000)),
      endMs: round(clock.mediaMsAt(w.endSec * 8000)),
      confidence: w.confidence,
    }));
    const settled = msg.settledSec === 'answered' ? answered - ANSWERED_LOOKBACK_SAMPLES : msg.settledSec === null ? null : Math.round(msg.settledSec * 8000);
    if (msg.text !== '') {
      if (msg.isFinal || msg.text !== this.#lastPartial) {
        const result: TranscriptResult = {
          text: msg.text,
          isFinal: msg.isFinal,
          words,
          startMs: words.length > 0 ? words[0]!.startMs : round(this.#ring.mediaMsAt(this.#committed)),
          endMs: words.length > 0 ? words[words.length - 1]!.endMs : round(clock.mediaMsAt(answered)),
        };
        this.#lastPartial = msg.isFinal ? '' : msg.text;
        this.#opts.onResult(result);
      }
    } else if (msg.isFinal) {
      this.#lastPartial = '';
    }
    if (settled !== null) this.#commit(clock, settled);
  }

  #commit(clock: ConnectionClock, connPos: number): void {
    const pos = Math.min(clock.ringPosAt(connPos), this.#sent);
    if (pos <= this.#committed) return;
    this.#committed = pos;
    clock.pruneBefore(connPos);
    this.#ring.pruneBefore(Math.min(pos, this.#ring.tail));
  }

  #malformed(reason: string): void {
    this.#stats.protocolErrors++;
    this.#opts.log.warn({ engine: this.#protocol.engine, reason }, 'malformed message from the speech service; ignored');
  }

  // ── holes and the end ───────────────────────────────────────────────────────────────────

  #reportPendingHole(): void {
    const hole = this.#pendingHole;
    this.#pendingHole = null;
    if (hole !== null) this.#reportHole(hole[0], hole[1]);
  }

  /** Reports ring positions [from, to) as never recognised, skipping what was reported before. */
  #reportHole(from: number, to: number): void {
    for (const [a, b] of this.#holes) {
      if (a <= from && from < b) from = b;
      if (a < to && to <= b) to = a;
    }
    if (to <= from) return;
    this.#stats.droppedSamples += to - from;
    const last = this.#holes[this.#holes.length - 1];
    if (last !== undefined && last[1] === from) last[1] = to;
    else {
      this.#holes.push([from, to]);
      if (this.#holes.length > 32) this.#holes.shift();
    }
    this.#opts.onHole?.(round(this.#ring.mediaMsAt(from)), round(this.#ring.mediaMsAt(to)));
  }

  #endTimedOut(): void {
    this.#endTimer = null;
    if (this.#state === State.Ended) return;
    const committed = this.#committed;
    const write = this.#ring.writePos;
    this.#opts.log.warn({ engine: this.#protocol.engine, pendingMs: (write - committed) / 8 }, 'speech service did not finish in time; the rest of the stream is not transcribed');
    this.#reportPendingHole();
    if (write > committed) this.#reportHole(Math.max(committed, this.#ring.tail), write);
    this.#ws?.terminate();
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#state = State.Ended;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    if (this.#endTimer !== null) clearTimeout(this.#endTimer);
    this.#retryTimer = this.#endTimer = null;
    const ws = this.#ws;
    this.#ws = null;
    if (ws !== null && ws.readyState !== WebSocket.CLOSED) ws.terminate();
    this.#resolveEnd?.();
    this.#resolveEnd = null;
    this.#onEnded(this);
  }
}

function round(ms: number): number {
  return Math.round(ms);
}
