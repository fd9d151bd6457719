/**
 * The Media Streams client: one per stream, dialling the gateway as Twilio does
 * (twilio-protocol.md §1, §2): upgrade with X-Twilio-Signature, then `connected`, `start`,
 * `media` every 20 ms of media time (interleaved per track), and `stop` before closing.
 *
 *   connecting ──open──► open ──(handshake delay) connected (start delay) start──► streaming
 *       │                  │                                                      │
 *       └──error/non-101───┴──────────────── stop() / fault / server close ───────┴──► ended
 *
 * Paced streams are pumped by the Sim's shared Pacer; unpaced streams drive themselves in
 * batches, yielding to the event loop and backing off while the socket buffer is full.
 */
import WebSocket from 'ws';
import { isSilent } from './audio-source.js';
import { FaultPipeline, Rechunker, type OutboxItem } from './frame-faults.js';
import { connectedMessage, mediaMessage, startMessage, stopMessage } from './messages.js';
import type { Paced, Pacer } from './pacer.js';
import type { FrameOut, StreamAudio } from './stream-audio.js';
import type { MediaTrack, SimLogger, StreamFaults } from './types.js';

export const StreamerState = { connecting: 0, open: 1, streaming: 2, ended: 3 } as const;
type State = (typeof StreamerState)[keyof typeof StreamerState];

/** Twilio's Media Streams error codes (twilio-protocol.md §11). */
export const STREAM_ERRORS = {
  unknown: { code: 31900, name: 'Stream - Unknown Error' },
  timeout: { code: 31901, name: 'Stream - WebSocket - Connection Timeout' },
  refused: { code: 31902, name: 'Stream - WebSocket - Connection Refused' },
  brokenPipe: { code: 31903, name: 'Stream - WebSocket - Connection Broken Pipe' },
  unreachable: { code: 31904, name: 'Stream - WebSocket - Host Unreachable' },
  tls: { code: 31910, name: 'Stream - WebSocket - SSL Protocol Error' },
  handshake: { code: 31920, name: 'Stream - WebSocket - Handshake Error' },
  closed: { code: 31921, name: 'Stream - WebSocket - Close Error' },
  scheme: { code: 31922, name: 'Stream - WebSocket - URL Schema Not Supported' },
  malformedUrl: { code: 31923, name: 'Stream - WebSocket - Malformed URL' },
} as const;

export interface StreamError {
  code: number;
  message: string;
}

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
  /** `start` went out. */
  onStarted(): void;
  /** The call's audio ran out at this stream's position (the call hangs up). */
  onAudioEnd(): void;
  /** The stream ended, once, for any reason. */
  onEnded(end: StreamEnd): void;
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
}

/** Unpaced streams produce this many ticks before yielding to the event loop. */
const UNPACED_BATCH = 50;
/** Unpaced streams wait while more than this many bytes sit in the socket buffer. */
const UNPACED_HIGH_WATER = 512 * 1024;
const MEDIA_PREFIX_LENGTH = '{"event":"media","sequenceNumber":"'.length;

export class MediaStreamer implements Paced {
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
  };
  /** Resolves when the socket is closed (or was never opened). */
  readonly closed: Promise<void>;

  readonly #cfg: StreamerConfig;
  readonly #audio: StreamAudio;
  readonly #hooks: StreamerHooks;
  readonly #pipeline: FaultPipeline | null;
  readonly #rechunker: Rechunker | null;
  readonly #silenceGaps: boolean;
  readonly #closeAfter: number;
  readonly #frame: FrameOut = { bytes: new Uint8Array(0), payload: '' };
  readonly #outbox: OutboxItem[] = [];
  #head = 0;
  #state: State = StreamerState.connecting;
  #ws: WebSocket | null = null;
  #resolveClosed!: () => void;
  #timers = new Set<NodeJS.Timeout>();
  #immediate: NodeJS.Immediate | null = null;
  #seq = 0;
  #chunk = { inbound: 0, outbound: 0 };
  #chunkShared = 0;
  #ordinal = 0;
  #mediaSentTotal = 0;
  #tick = 0;
  #t0 = 0;
  #nextDue = 0;
  #tsBase = 0;
  #stalled = false;
  #stallUntil = 0;
  #finishTimer: NodeJS.Timeout | null = null;
  #audioEnded = false;
  #pendingError: StreamError | null = null;

  constructor(cfg: StreamerConfig, audio: StreamAudio, hooks: StreamerHooks) {
    this.#cfg = cfg;
    this.#audio = audio;
    this.#hooks = hooks;
    const f = cfg.faults;
    this.#pipeline = f !== null && (f.drop || f.duplicate || f.reorder || f.delay) ? new FaultPipeline(f) : null;
    this.#rechunker = f?.chunkSizes !== undefined && f.chunkSizes.length > 0 ? new Rechunker(f.chunkSizes) : null;
    this.#silenceGaps = f?.silenceGaps === true;
    this.#closeAfter = f?.closeAfterFrames ?? Infinity;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  get state(): State {
    return this.#state;
  }

  /** Live counters (the object is reused; copy what you keep). */
  get stats(): StreamerStats {
    const p = this.#pipeline;
    if (p !== null) {
      this.#stats.dropped = p.dropped;
      this.#stats.duplicated = p.duplicated;
      this.#stats.reordered = p.reordered;
    }
    return this.#stats;
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
    ws.on('message', () => this.#stats.messagesReceived++);
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

  /** Sends what is left, then `stop` (when `start` went out), then closes normally. */
  #finishWire(sendStop: boolean): void {
    this.#finishTimer = null;
    const ws = this.#ws;
    if (ws !== null && ws.readyState === WebSocket.OPEN) {
      if (sendStop) {
        this.#rechunker?.flush(this.#emitChunk);
        this.#pipeline?.flush(this.#outbox);
        this.#flushOutbox(true);
        this.#seq++;
        this.#send(stopMessage(this.#seq, this.#cfg.accountSid, this.#cfg.callSid, this.#cfg.streamSid));
        this.#stats.stopSent = true;
      }
      ws.close(1000);
    } else if (ws !== null) {
      ws.terminate();
    } else {
      this.#resolveClosed();
    }
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
      if (!this.#produceTick()) break;
      this.#nextDue = this.#t0 + this.#audio.offsetMs(this.#tick) / this.#cfg.speed;
    }
    this.#flushOutbox(false);
  }

  #onOpen(): void {
    if (this.#state !== StreamerState.connecting) return;
    this.#state = StreamerState.open;
    this.#stats.connected = true;
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
    this.#seq = 1;
    this.#send(
      startMessage(1, {
        accountSid: c.accountSid,
        streamSid: c.streamSid,
        callSid: c.callSid,
        tracks: c.tracks,
        customParameters: c.customParameters,
      }),
    );
    this.#state = StreamerState.streaming;
    this.#audio.begin();
    this.#tsBase = this.#audio.firstTimestampMs ?? c.timestampOffsetMs;
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
      if (!this.#produceTick()) break;
    }
    this.#flushOutbox(false);
    if (this.#state === StreamerState.streaming && !this.#audioEnded && !this.#stalled) {
      this.#immediate = setImmediate(this.#runUnpaced);
    }
  };

  /** Generates one tick (every track); false when the call's audio has ended. */
  #produceTick(): boolean {
    const k = this.#tick;
    if (this.#audio.ended(k)) {
      if (!this.#audioEnded) {
        this.#audioEnded = true;
        this.#hooks.onAudioEnd();
      }
      return false;
    }
    const ts = this.#tsBase + this.#audio.offsetMs(k);
    const frame = this.#frame;
    const tracks = this.#cfg.tracks;
    for (let i = 0; i < tracks.length; i++) {
      const track = tracks[i]!;
      this.#audio.frame(track, k, frame);
      if (this.#rechunker !== null) this.#rechunker.push(track, frame.bytes, ts, this.#emitChunk);
      else this.#emitFrame(track, frame.bytes, frame.payload, ts);
    }
    this.#tick = k + 1;
    return true;
  }

  readonly #emitChunk = (track: MediaTrack, chunk: Uint8Array, timestamp: number): void => {
    this.#emitFrame(track, chunk, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length).toString('base64'), timestamp);
  };

  #emitFrame(track: MediaTrack, bytes: Uint8Array, payload: string, timestamp: number): void {
    if (this.#silenceGaps && isSilent(bytes)) {
      this.#stats.suppressed++;
      return;
    }
    const seq = ++this.#seq;
    const chunk = this.#cfg.chunkCounting === 'shared' ? ++this.#chunkShared : ++this.#chunk[track];
    const text = mediaMessage(seq, track, chunk, timestamp, payload, this.#cfg.streamSid);
    const ordinal = ++this.#ordinal;
    if (this.#pipeline !== null) this.#pipeline.push(text, ordinal, this.#outbox);
    else this.#outbox.push(text);
  }

  /** Sends queued messages; a stall marker pauses sending unless `ignoreStalls`. */
  #flushOutbox(ignoreStalls: boolean): void {
    const box = this.#outbox;
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
    this.#hooks.onEnded({
      reason: 'fault',
      error: { code: STREAM_ERRORS.brokenPipe.code, message: `${STREAM_ERRORS.brokenPipe.name} (injected after ${this.#mediaSentTotal} frames)` },
    });
  }

  #onSocketError(err: NodeJS.ErrnoException): void {
    if (this.#state === StreamerState.ended) return;
    if (this.#state !== StreamerState.connecting) {
      // Mid-stream errors are followed by 'close'; remember the cause for it.
      this.#pendingError = { code: STREAM_ERRORS.brokenPipe.code, message: `${STREAM_ERRORS.brokenPipe.name}: ${err.message}` };
      return;
    }
    const code = err.code ?? '';
    const kind =
      code === 'ECONNREFUSED'
        ? STREAM_ERRORS.refused
        : /handshake has timed out/i.test(err.message) || code === 'ETIMEDOUT'
          ? STREAM_ERRORS.timeout
          : code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
            ? STREAM_ERRORS.unreachable
            : /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code + ' ' + err.message)
              ? STREAM_ERRORS.tls
              : STREAM_ERRORS.unknown;
    this.#fail(kind, err.message);
  }

  #onClose(code: number): void {
    this.#stats.closeCode = code;
    this.#resolveClosed();
    if (this.#state === StreamerState.ended) return;
    // The gateway closed the socket (or the connection broke) before Twilio stopped the stream.
    const error = this.#pendingError ?? { code: STREAM_ERRORS.closed.code, message: `${STREAM_ERRORS.closed.name}: server closed the socket (code ${code})` };
    this.#end();
    this.#hooks.onEnded({ reason: 'server-closed', error });
  }

  #fail(kind: { code: number; name: string }, detail: string): void {
    if (this.#state === StreamerState.ended) return;
    this.#end();
    this.#ws?.terminate();
    this.#resolveClosed();
    this.#cfg.logger.warn({ streamSid: this.#cfg.streamSid, url: this.#cfg.url, code: kind.code, detail }, 'stream connection failed');
    this.#hooks.onEnded({ reason: 'error', error: { code: kind.code, message: `${kind.name}: ${detail}` } });
  }

  /** Leaves every state for `ended`: timers cleared, pacer left. */
  #end(): void {
    this.#state = StreamerState.ended;
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
