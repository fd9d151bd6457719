/**
 * The Media Streams client: one per stream, dialling the gateway as Twilio does
 * (docs/twilio-protocol.md §1, §2): upgrade with X-Twilio-Signature, then `connected`, `start`,
 * `media` every 20 ms of media time (frame-producer.ts), and `stop` before closing.
 *
 *   connecting ──open──► open ──(handshake delay) connected (start delay) start──► streaming
 *       │                  │                                                      │
 *       └──error/non-101───┴──────────────── stop() / fault / server close ───────┴──► ended
 *
 * Paced streams are pumped by the Sim's shared Pacer; unpaced streams drive themselves in
 * batches, yielding to the event loop and backing off while the socket buffer is full.
 */
import WebSocket from 'ws';
import { FrameProducer } from './frame-producer.js';
import { connectedMessage, dtmfMessage, markMessage, startMessage, stopMessage } from './messages.js';
import type { Paced, Pacer } from './pacer.js';
import { Playback, type PlaybackStats, type PlaybackWarning } from './playback.js';
import type { StreamAudio } from './stream-audio.js';
import { classifyConnectError, STREAM_ERRORS, streamError, type StreamError, type StreamErrorKind } from './stream-errors.js';
import type { MediaTrack, SimLogger, StreamFaults } from './types.js';

export const StreamerState = { connecting: 0, open: 1, streaming: 2, ended: 3 } as const;
type State = (typeof StreamerState)[keyof typeof StreamerState];

export type { StreamError } from './stream-errors.js';

export interface StreamEnd {
  reason: string;
  error: StreamError | null;
}

export interface StreamerConfig {
  url: string;
  signature: string;
  accountSid: string;
  callSid: string;
  streamSid: string;
  tracks: readonly MediaTrack[];
  customParameters: Readonly<Record<string, string>>;
  /** A `<Connect><Stream>`: the server may send media, mark and clear back; dtmf is delivered. */
  bidirectional: boolean;
  /** Null: unpaced. */
  pacer: Pacer | null;
  speed: number;
  faults: StreamFaults | null;
  chunkCounting: 'per-track' | 'shared';
  timestampOffsetMs: number;
  connectTimeoutMs: number;
  requireWss: boolean;
  tlsRejectUnauthorized: boolean;
  logger: SimLogger;
}

export interface StreamerHooks {
  /** The WebSocket opened (101). */
  onConnected(): void;
  /** `start` went out. */
  onStarted(): void;
  /** The call's audio ran out at this stream's position (the call hangs up). */
  onAudioEnd(): void;
  /** The stream ended, once, for any reason. */
  onEnded(end: StreamEnd): void;
  /** A two-way stream's server sent something Twilio warns about (logged by the caller once per code). */
  onWarning(code: number, message: string): void;
  /** A two-way stream's playback exists (at `start`) or is gone (at the end). */
  onPlayback(playback: Playback | null): void;
}

export interface StreamerStats {
  connected: boolean;
  handshakeStatus: number | null;
  messagesSent: number;
  messagesReceived: number;
  mediaSent: { inbound: number; outbound: number };
  lastSequenceNumber: number;
  stopSent: boolean;
  closeCode: number | null;
  dropped: number;
  duplicated: number;
  reordered: number;
  suppressed: number;
  dtmfSent: number;
  /** Two-way streams only: what the server sent back and what became of it. */
  playback: PlaybackStats | null;
}

/** Largest message a two-way stream's server may send (bounded memory; Twilio documents none). */
export const MAX_SERVER_MESSAGE_BYTES = 1024 * 1024;

/** Unpaced streams produce this many ticks before yielding to the event loop. */
const UNPACED_BATCH = 50;
/** Unpaced streams wait while more than this many bytes sit in the socket buffer. */
const UNPACED_HIGH_WATER = 512 * 1024;
const MEDIA_PREFIX_LENGTH = '{"event":"media","sequenceNumber":"'.length;

export class MediaStreamer implements Paced {
  /** Resolves when the socket is closed (or was never opened). */
  readonly closed: Promise<void>;
  readonly #stats: StreamerStats = {
    connected: false,
    handshakeStatus: null,
    messagesSent: 0,
    messagesReceived: 0,
    mediaSent: { inbound: 0, outbound: 0 },
    lastSequenceNumber: 0,
    stopSent: false,
    closeCode: null,
    dropped: 0,
    duplicated: 0,
    reordered: 0,
    suppressed: 0,
    dtmfSent: 0,
    playback: null,
  };
  readonly #cfg: StreamerConfig;
  readonly #audio: StreamAudio;
  #playback: Playback | null = null;
  readonly #hooks: StreamerHooks;
  readonly #producer: FrameProducer;
  readonly #closeAfter: number;
  #head = 0;
  #state: State = StreamerState.connecting;
  #ws: WebSocket | null = null;
  #resolveClosed!: () => void;
  #timers = new Set<NodeJS.Timeout>();
  #immediate: NodeJS.Immediate | null = null;
  #finishTimer: NodeJS.Timeout | null = null;
  #mediaSentTotal = 0;
  #t0 = 0;
  #nextDue = 0;
  #stalled = false;
  #stallUntil = 0;
  #audioEnded = false;
  #pendingError: StreamError | null = null;
  #ticking = false;

  constructor(cfg: StreamerConfig, audio: StreamAudio, hooks: StreamerHooks) {
    this.#cfg = cfg;
    this.#hooks = hooks;
    this.#audio = audio;
    this.#producer = new FrameProducer(
      { streamSid: cfg.streamSid, tracks: cfg.tracks, chunkCounting: cfg.chunkCounting, faults: cfg.faults },
      audio,
    );
    this.#closeAfter = cfg.faults?.closeAfterFrames ?? Infinity;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  get state(): State {
    return this.#state;
  }

  /** Live counters (the object is reused; copy what you keep). */
  get stats(): StreamerStats {
    const p = this.#producer;
    this.#stats.dropped = p.dropped;
    this.#stats.duplicated = p.duplicated;
    this.#stats.reordered = p.reordered;
    this.#stats.suppressed = p.suppressed;
    this.#stats.playback = this.#playback?.stats ?? this.#stats.playback;
    return this.#stats;
  }

  /**
   * Sends a `dtmf` event for one key pressed on the call (two-way streams only, as with
   * Twilio). False when the stream cannot carry it (one-way, not started, ended).
   */
  sendDtmf(digit: string): boolean {
    if (!this.#cfg.bidirectional || this.#state !== StreamerState.streaming) return false;
    this.#producer.outbox.push(dtmfMessage(this.#producer.nextSequence(), this.#cfg.streamSid, digit));
    this.#stats.dtmfSent++;
    this.#flushOutbox(false);
    return true;
  }

  /** Dials the stream URL. Failures end the stream with a 319xx error. */
  connect(): void {
    const { url } = this.#cfg;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return this.#fail(STREAM_ERRORS.malformedUrl, url);
    }
    if ((parsed.protocol !== 'wss:' && parsed.protocol !== 'ws:') || (this.#cfg.requireWss && parsed.protocol === 'ws:')) {
      return this.#fail(STREAM_ERRORS.scheme, parsed.protocol);
    }
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, {
        headers: { 'X-Twilio-Signature': this.#cfg.signature, 'User-Agent': 'Twilio.TmeWs/1.0' },
        handshakeTimeout: this.#cfg.connectTimeoutMs,
        rejectUnauthorized: this.#cfg.tlsRejectUnauthorized,
        perMessageDeflate: false,
        followRedirects: false,
        maxPayload: MAX_SERVER_MESSAGE_BYTES,
      });
    } catch (err) {
      return this.#fail(STREAM_ERRORS.malformedUrl, (err as Error).message);
    }
    this.#ws = ws;
    ws.on('open', () => this.#onOpen());
    ws.on('unexpected-response', (req, res) => {
      this.#stats.handshakeStatus = res.statusCode ?? null;
      res.resume();
      req.destroy();
      this.#fail(STREAM_ERRORS.handshake, `server answered HTTP ${res.statusCode} instead of 101`);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.#stats.messagesReceived++;
      // One-way streams accept nothing from the server (docs/twilio-protocol.md §3): counted only.
      if (this.#playback !== null) this.#playback.receive(data, isBinary);
    });
    ws.on('error', (err: NodeJS.ErrnoException) => this.#onSocketError(err));
    ws.on('close', (code: number) => this.#onClose(code));
  }

  /**
   * Stops the stream: pending messages, `stop`, then a normal close. Idempotent. The stream
   * counts as ended at once; on the wire, a stall in progress (delay fault) still holds the
   * backlog and the `stop` behind it, as a congested connection would.
   */
  stop(reason: string): void {
    if (this.#state === StreamerState.ended) return;
    const wasStreaming = this.#state === StreamerState.streaming;
    this.#end();
    const stallLeft = this.#stalled ? this.#stallUntil - performance.now() : 0;
    if (wasStreaming && stallLeft > 0) {
      this.#finishTimer = setTimeout(() => this.#finishWire(true), stallLeft);
    } else {
      this.#finishWire(wasStreaming);
    }
    this.#hooks.onEnded({ reason, error: null });
  }

  /** Destroys the socket at once (Sim shutdown after the grace period). */
  terminate(): void {
    if (this.#finishTimer !== null) clearTimeout(this.#finishTimer);
    this.#finishTimer = null;
    this.#ws?.terminate();
    this.#resolveClosed();
  }

  pump(now: number): void {
    if (this.#state !== StreamerState.streaming) return;
    while (!this.#audioEnded && now >= this.#nextDue) {
      if (!this.#produce()) break;
      this.#nextDue = this.#t0 + this.#producer.nextOffsetMs() / this.#cfg.speed;
    }
    this.#flushOutbox(false);
  }

  #onOpen(): void {
    if (this.#state !== StreamerState.connecting) return;
    this.#state = StreamerState.open;
    this.#stats.connected = true;
    this.#hooks.onConnected();
    if (this.#state !== StreamerState.open) return;
    const f = this.#cfg.faults;
    this.#later(f?.handshakeDelayMs ?? 0, () => {
      if (this.#state !== StreamerState.open) return;
      this.#send(connectedMessage());
      this.#later(f?.startDelayMs ?? 0, () => this.#sendStart());
    });
  }

  #sendStart(): void {
    if (this.#state !== StreamerState.open) return;
    const c = this.#cfg;
    const seq = this.#producer.nextSequence();
    this.#send(startMessage(seq, { accountSid: c.accountSid, streamSid: c.streamSid, callSid: c.callSid, tracks: c.tracks, customParameters: c.customParameters }));
    this.#state = StreamerState.streaming;
    this.#producer.begin(c.timestampOffsetMs);
    if (c.bidirectional) this.#startPlayback();
    this.#hooks.onStarted();
    if (this.#state !== StreamerState.streaming) return;
    if (c.pacer !== null) {
      this.#t0 = performance.now();
      this.#nextDue = this.#t0;
      c.pacer.add(this);
      this.pump(this.#t0);
    } else {
      this.#immediate = setImmediate(this.#runUnpaced);
    }
  }

  readonly #runUnpaced = (): void => {
    this.#immediate = null;
    if (this.#state !== StreamerState.streaming || this.#stalled) return;
    if (this.#ws !== null && this.#ws.bufferedAmount > UNPACED_HIGH_WATER) {
      this.#later(1, this.#runUnpaced);
      return;
    }
    for (let i = 0; i < UNPACED_BATCH && !this.#audioEnded; i++) {
      if (!this.#produce()) break;
    }
    this.#flushOutbox(false);
    if (this.#state === StreamerState.streaming && !this.#audioEnded && !this.#stalled) {
      this.#immediate = setImmediate(this.#runUnpaced);
    }
  };

  #startPlayback(): void {
    const playback = new Playback(this.#cfg.streamSid, {
      echoMark: (name) => {
        this.#producer.outbox.push(markMessage(this.#producer.nextSequence(), this.#cfg.streamSid, name));
        // Echoes outside a tick (nothing buffered, clear) go out at once.
        if (!this.#ticking) this.#flushOutbox(false);
      },
      warn: (kind: PlaybackWarning, detail) => this.#hooks.onWarning(kind.code, `${kind.name}: ${detail}`),
    });
    playback.begin(this.#audio.callFrame(this.#producer.ticks));
    this.#playback = playback;
    this.#hooks.onPlayback(playback);
  }

  /** One tick; at the end of the call's audio, tells the hooks once and produces no more. */
  #produce(): boolean {
    const k = this.#producer.ticks;
    if (this.#producer.produce()) {
      if (this.#playback !== null) {
        this.#ticking = true;
        this.#playback.tick(this.#audio.callFrame(k));
        this.#ticking = false;
      }
      return true;
    }
    if (!this.#audioEnded) {
      this.#audioEnded = true;
      this.#hooks.onAudioEnd();
    }
    return false;
  }

  /** Sends queued messages; a stall marker pauses sending unless `ignoreStalls`. */
  #flushOutbox(ignoreStalls: boolean): void {
    const box = this.#producer.outbox;
    while (this.#head < box.length) {
      if (this.#stalled && !ignoreStalls) return;
      const item = box[this.#head++]!;
      if (typeof item !== 'string') {
        if (!ignoreStalls) this.#stall(item.stallMs);
        continue;
      }
      this.#sendMedia(item);
      // An injected abrupt close ends the stream mid-flush.
      if (this.#state === StreamerState.ended && !ignoreStalls) break;
    }
    if (this.#head >= box.length) {
      box.length = 0;
      this.#head = 0;
    }
  }

  /** Sends what is left, then `stop` (when `start` went out), then closes normally. */
  #finishWire(sendStop: boolean): void {
    this.#finishTimer = null;
    const ws = this.#ws;
    if (ws !== null && ws.readyState === WebSocket.OPEN) {
      if (sendStop) {
        this.#producer.finish();
        this.#flushOutbox(true);
        const c = this.#cfg;
        this.#send(stopMessage(this.#producer.nextSequence(), c.accountSid, c.callSid, c.streamSid));
        this.#stats.stopSent = true;
      }
      ws.close(1000);
    } else if (ws !== null) {
      ws.terminate();
    } else {
      this.#resolveClosed();
    }
  }

  #sendMedia(text: string): void {
    this.#send(text);
    const at = text.indexOf('"track":"', MEDIA_PREFIX_LENGTH);
    if (text.charCodeAt(at + 9) === 105 /* i */) this.#stats.mediaSent.inbound++;
    else this.#stats.mediaSent.outbound++;
    if (++this.#mediaSentTotal >= this.#closeAfter && this.#state === StreamerState.streaming) this.#abrupt();
  }

  #send(text: string): void {
    const ws = this.#ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
    this.#stats.messagesSent++;
    const seqAt = text.indexOf('"sequenceNumber":"');
    if (seqAt >= 0) this.#stats.lastSequenceNumber = parseInt(text.slice(seqAt + 18, seqAt + 30), 10);
  }

  #stall(ms: number): void {
    this.#stalled = true;
    this.#stallUntil = performance.now() + ms;
    this.#later(ms, () => {
      this.#stalled = false;
      if (this.#state !== StreamerState.streaming) return;
      this.#flushOutbox(false);
      if (this.#cfg.pacer === null && this.#immediate === null) this.#immediate = setImmediate(this.#runUnpaced);
    });
  }

  /** The injected network drop: the socket dies without `stop`. */
  #abrupt(): void {
    this.#end();
    this.#ws?.terminate();
    this.#hooks.onEnded({ reason: 'fault', error: streamError(STREAM_ERRORS.brokenPipe, `injected after ${this.#mediaSentTotal} frames`) });
  }

  #onSocketError(err: NodeJS.ErrnoException): void {
    if (this.#state === StreamerState.ended) return;
    if (this.#state !== StreamerState.connecting) {
      // Mid-stream errors are followed by 'close'; remember the cause for it.
      this.#pendingError = streamError(STREAM_ERRORS.brokenPipe, err.message);
      return;
    }
    this.#fail(classifyConnectError(err), err.message);
  }

  #onClose(code: number): void {
    this.#stats.closeCode = code;
    this.#resolveClosed();
    if (this.#state === StreamerState.ended) return;
    // The gateway closed the socket (or the connection broke) before Twilio stopped the stream.
    // A two-way stream ends that way by design (docs/twilio-protocol.md §3): a clean close is no error.
    const clean = this.#cfg.bidirectional && (code === 1000 || code === 1005) && this.#pendingError === null;
    const error = clean ? null : (this.#pendingError ?? streamError(STREAM_ERRORS.closed, `server closed the socket (code ${code})`));
    this.#end();
    this.#hooks.onEnded({ reason: 'server-closed', error });
  }

  #fail(kind: StreamErrorKind, detail: string): void {
    if (this.#state === StreamerState.ended) return;
    this.#end();
    this.#ws?.terminate();
    this.#resolveClosed();
    this.#hooks.onEnded({ reason: 'error', error: streamError(kind, detail) });
  }

  /** Leaves every state for `ended`: timers cleared, pacer left, playback dropped. */
  #end(): void {
    this.#state = StreamerState.ended;
    if (this.#playback !== null) {
      this.#stats.playback = this.#playback.stats;
      this.#playback.close();
      this.#playback = null;
      this.#hooks.onPlayback(null);
    }
    this.#cfg.pacer?.remove(this);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    this.#immediate = null;
  }

  #later(ms: number, fn: () => void): void {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }
}
