/**
 * One Twilio Media Stream = one WebSocket = one StreamSession.
 *
 * Its states and what each event does in each are the table in stream-state.ts; every state
 * change goes through `#transition(event)`, which looks the event up there, refuses it (a
 * protocol error) or moves the state. Entering CLOSED always goes on to `#end`, which finalises
 * the sinks once. A payload is base64-decoded into the session's own small buffer, copied into
 * the process-wide decode scratch (twilio/mulaw-simd.ts) and mu-law-decoded there: a message
 * is handled synchronously and sinks copy what they keep, so one PCM buffer serves every
 * session and the media path allocates nothing per frame. The fast path (readMediaFast) decodes
 * straight into the scratch instead (ARCHITECTURE.md "Hot path" has why).
 *
 * What a media message touches per frame is kept to few objects: with 1,000 streams each
 * stream's objects are cold (999 other streams' frames passed through the caches in between),
 * and in the profile the first read of each cold object, not the arithmetic, is where the time
 * goes. So the fast path reads the message into one process-wide ParsedMessage and fills one
 * process-wide MediaFrame (both only ever used within one synchronous call), and the session
 * keeps in its own fields what the per-frame path needs (counters, the announced tracks as bits,
 * the streamSid, each track's state) rather than reaching it through `deps` or `info`.
 */
import type { Logger } from 'pino';
// Imported, not the global: the global `performance` is a lazy getter, read twice per frame.
import { performance } from 'node:perf_hooks';
import { isUtf8 } from 'node:buffer';
import { decodeScratch } from '../../twilio/mulaw-simd.js';
import { decodeBase64Into } from '../../twilio/base64.js';
import { readMediaFast } from '../../twilio/media-fast-path.js';
import { EVENT, ParsedMessage, type StartFields } from '../../twilio/protocol.js';
import { isSid } from '../../twilio/sids.js';
import { type MediaFrame, type SinkContext, type SinkFactory, type SinkStats } from '../../sinks/sink.js';
import { TRACK_INDEX, type CloseReason, type StreamInfo, type Track } from '../../core/stream.js';
import type { EventBus } from '../../core/events.js';
import { FanOut } from './fan-out.js';
import { IGNORED, SESSION_EVENT as EV, STATE, TRANSITIONS, type SessionEvent, type SessionState } from './stream-state.js';
import type { GatewayMetrics, HotCounters } from '../metrics.js';
import type { FastHistogram } from '../fast-histogram.js';


/** WebSocket close codes we use (RFC 6455 §7.4.1). */
export const CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  INVALID_PAYLOAD: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
} as const;

export interface SessionDeps {
  log: Logger;
  metrics: GatewayMetrics;
  bus: EventBus;
  sinkFactories: readonly SinkFactory[];
  /** Largest mu-law payload (bytes) one media message may carry. */
  maxFrameBytes: number;
  /** Vets a `start` (per-call token); returns a rejection reason, or null to accept. */
  checkStart: ((start: StartFields) => string | null) | null;
  /**
   * Media-clock bounds (issue 13). A media timestamp more than `maxGapMs` past the stream's
   * furthest end is counted as protocol_errors_total{reason="timestamp_jump"} (the recording
   * keeps it as a discontinuity, not silence); one more than `maxClockLeadMs` ahead of the wall
   * clock since `start` closes the stream (1008, timestamp_ahead_of_clock). Unset: no checks.
   */
  maxGapMs?: number;
  maxClockLeadMs?: number;
  /**
   * Whether the stream may act on the conference its `conferenceSid` parameter names (verified
   * membership, twilio-wiring.ts); false files it as a stream of its own. Null trusts all.
   */
  trustConference?: ((start: StartFields) => boolean) | null;
  /** Reserves the streamSid for this session; false when a live stream already holds it. */
  claimStreamSid?: (streamSid: string, session: StreamSession) => boolean;
  /** Asks the transport to close the socket. */
  closeSocket: (code: number, reason: string) => void;
  onStarted: (session: StreamSession) => void;
  /** The stream stopped taking audio (stop, abort, error): it no longer counts as active. */
  onStopped: (session: StreamSession) => void;
  /** Its sinks have finalised: the session is gone. */
  onEnded: (session: StreamSession) => void;
}

class TrackState {
  frames = 0;
  bytes = 0;
  /** Media-clock end of the furthest frame (timestamp + duration), -1 before the first. */
  endMs = -1;
  /** Media time Twilio skipped (timestamp jumps), ms. */
  gapMs = 0;
  gaps = 0;
}

export interface SessionSummary {
  frames: number;
  lost: number;
  duplicate: number;
  late: number;
  gapMs: number;
  bytes: number;
}

const SEQ_WINDOW = 32;

/**
 * The fast path's message and the frame handed to the sinks: one of each for the process. A
 * media message is read, decoded and fanned out in one synchronous call that nothing re-enters
 * (sinks must not keep the frame: sink.ts), so they are never in use twice at once, and they
 * stay in cache where a per-session pair would be two cold objects per frame.
 */
const FAST_MSG = new ParsedMessage();
const FRAME: MediaFrame = {
  track: 'inbound',
  trackIndex: 0,
  timestampMs: 0,
  chunk: 0,
  sequenceNumber: 0,
  samples: 0,
  pcm: decodeScratch.pcm160,
  mulaw: decodeScratch.raw160,
  energy: 0,
  receivedAt: 0,
  late: false,
};

export class StreamSession {
  state: SessionState = STATE.OPEN;
  /** True once the stream reached STARTED (it then counts as a live stream until it ends). */
  started = false;
  info: StreamInfo | null = null;
  /** `performance.now()` of the last message, for stall detection. */
  lastMessageAt: number;
  readonly openedAt: number;
  closeReason: CloseReason | null = null;

  readonly #deps: SessionDeps;
  /** The stream's child logger (streamSid, callSid), made on first use: see {@link log}. */
  #streamLog: Logger | null = null;
  /** What the strict parser reads into (every message the fast path does not take). */
  readonly #msg = new ParsedMessage();
  /** Where the strict path base64-decodes: 160 bytes (Twilio's frame), grown up to maxFrameBytes on demand. */
  #raw = Buffer.allocUnsafe(160);
  readonly #track0 = new TrackState();
  readonly #track1 = new TrackState();
  /** Bit 1 << TRACK_INDEX of each track `start` announced (0 before). */
  #trackMask = 0;
  /** info.streamSid once started (what the fast path matches). */
  #streamSid = '';
  readonly #maxFrameBytes: number;
  readonly #hot: HotCounters;
  readonly #ingestLag: FastHistogram;
  #fanOut: FanOut | null = null;
  // Sequence accounting over the stream-wide sequenceNumber (docs/twilio-protocol.md §2.4).
  #maxSeq = 0;
  #seqWindow = 0;
  #lost = 0;
  #duplicate = 0;
  #late = 0;
  #ending: Promise<void> | null = null;
  /** performance.now() of the `start` message: media time may not run far ahead of it. */
  #startedAt = 0;
  /** Media-clock end of the furthest frame of any track (ms), -1 before the first. */
  #mediaEndMs = -1;
  readonly #maxGapMs: number;
  readonly #maxClockLeadMs: number;

  constructor(deps: SessionDeps) {
    this.#deps = deps;
    this.#maxGapMs = deps.maxGapMs ?? Number.POSITIVE_INFINITY;
    this.#maxClockLeadMs = deps.maxClockLeadMs ?? Number.POSITIVE_INFINITY;
    this.#maxFrameBytes = deps.maxFrameBytes;
    this.#hot = deps.metrics.hot;
    this.#ingestLag = deps.metrics.ingestLag;
    this.openedAt = this.lastMessageAt = performance.now();
  }

  /**
   * The session's logger: the gateway's before `start`, then a child carrying streamSid and
   * callSid, made when something first logs. A pino child costs 20-90 µs (its bindings are
   * redacted and serialised), which 500 streams starting at once paid up front even when no
   * line was ever written; the start and end lines go through the parent with the same fields.
   */
  get log(): Logger {
    const info = this.info;
    if (info === null) return this.#deps.log;
    return (this.#streamLog ??= this.#deps.log.child({ streamSid: info.streamSid, callSid: info.callSid }));
  }

  /** An info line with the stream's fields, without making the child logger for it. */
  #info(fields: Record<string, unknown>, msg: string): void {
    if (this.#streamLog !== null) return this.#streamLog.info(fields, msg);
    const log = this.#deps.log;
    if (log.isLevelEnabled('info')) log.info({ streamSid: this.info!.streamSid, callSid: this.info!.callSid, ...fields }, msg);
  }

  /** Once CLOSED: resolves when the sinks have finalised. Null while the session is open. */
  get ending(): Promise<void> | null {
    return this.#ending;
  }

  summary(): SessionSummary {
    const a = this.#track0;
    const b = this.#track1;
    return {
      frames: a.frames + b.frames,
      lost: this.#lost,
      duplicate: this.#duplicate,
      late: this.#late,
      gapMs: a.gapMs + b.gapMs,
      bytes: a.bytes + b.bytes,
    };
  }

  /** Per track, the media-clock end (ms) of its furthest frame so far; absent before its first frame. Read off the hot path (directory heartbeat). */
  mediaPosition(): Partial<Record<'inbound' | 'outbound', number>> {
    const a = this.#track0;
    const b = this.#track1;
    const out: Partial<Record<'inbound' | 'outbound', number>> = {};
    if (a.endMs >= 0) out.inbound = a.endMs;
    if (b.endMs >= 0) out.outbound = b.endMs;
    return out;
  }

  /**
   * One text message as ws delivers it (UTF-8 bytes). On a started stream, a media message of
   * Twilio's usual shape takes readMediaFast (src/twilio/media-fast-path.ts): no string copy, no JSON.parse.
   * Anything else, and anything the fast path declines, goes through onText and the strict
   * parser exactly as before (test/twilio/protocol-fast-path.test.ts; the saving is measured in
   * bench/mulaw-decode.bench.ts and bench/ingest.bench.ts). The message is bytes[start, end):
   * the socket's frame reader (frame-reader.ts) passes a range of the chunk it read.
   */
  onTextBytes(bytes: Buffer, receivedAt: number, start = 0, end = bytes.length): void {
    if (this.state === STATE.STARTED) {
      const msg = FAST_MSG;
      // Decoded straight into the decode scratch. A payload larger than the scratch, or than
      // maxFrameBytes, is declined here and decided by the strict path (#onMedia) as before.
      const n = readMediaFast(msg, bytes, this.#streamSid, decodeScratch.raw, start, end);
      if (n >= 0 && n <= this.#maxFrameBytes) {
        this.lastMessageAt = receivedAt;
        if (!this.#transition(EV.MEDIA)) return;
        // Same check, same order of outcomes as #onMedia (the payload was valid base64 anyway).
        if ((this.#trackMask & (1 << TRACK_INDEX[msg.track])) === 0) return this.fail('unannounced_track', CLOSE.PROTOCOL_ERROR, 'media.track');
        return this.#onMediaDecoded(msg, n, receivedAt, true);
      }
    }
    // ws does not validate UTF-8 (media-socket.ts): a message the fast path did not take is
    // checked here, and refused with 1007 as ws would have.
    const text = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
    if (!isUtf8(text)) return this.fail('invalid_utf8', CLOSE.INVALID_PAYLOAD);
    this.onText(text.toString(), receivedAt);
  }

  /** One text message from the socket. */
  onText(text: string, receivedAt: number): void {
    if (this.state === STATE.CLOSED) {
      // Twilio closes right after `stop`; anything later is not audio we can place.
      if (this.closeReason === 'stopped') this.#deps.metrics.protocolErrors.labels('message_after_stop').inc();
      return;
    }
    this.lastMessageAt = receivedAt;
    const msg = this.#msg;
    switch (msg.read(text)) {
      case EVENT.MEDIA:
        return this.#onMedia(msg, receivedAt);
      case EVENT.START:
        if (!this.#transition(EV.START)) return;
        return this.#onStart(msg.start!);
      case EVENT.CONNECTED:
        this.#transition(EV.CONNECTED);
        return;
      case EVENT.STOP:
        if (!this.#transition(this.#ours(EV.STOP, msg.streamSid))) return;
        this.#sequence(msg.sequenceNumber);
        void this.#end('stopped');
        return;
      case EVENT.DTMF:
        if (!this.#transition(this.#ours(EV.DTMF, msg.streamSid))) return;
        this.#sequence(msg.sequenceNumber);
        this.#deps.bus.emit('dtmf', this.info!, msg.digit, Math.max(0, this.#track0.endMs));
        return;
      case EVENT.MARK:
        if (!this.#transition(this.#ours(EV.MARK, msg.streamSid))) return;
        this.#sequence(msg.sequenceNumber);
        return;
      case EVENT.UNKNOWN:
        if (!this.#transition(EV.UNKNOWN)) return;
        this.#deps.metrics.unknownEvents.inc();
        this.log.debug({ event: msg.eventName.slice(0, 40) }, 'unknown event ignored');
        return;
      default:
        return this.fail(msg.reason ?? 'invalid_message', CLOSE.INVALID_PAYLOAD, msg.field);
    }
  }

  /** A binary frame: Twilio never sends one (docs/twilio-protocol.md §1), so the stream is broken. */
  onBinary(): void {
    this.fail('binary_frame', CLOSE.UNSUPPORTED_DATA);
  }

  /** The socket closed (by either side). Without a `stop` first, the stream was aborted. */
  onSocketClose(code: number): void {
    const wasStarted = this.state === STATE.STARTED;
    if (!this.#transition(EV.SOCKET_CLOSED)) return;
    if (wasStarted) this.log.warn({ code }, 'socket closed without stop; stream aborted');
    void this.#end('aborted');
  }

  /** Counts a protocol error, logs it, closes the socket and ends the stream. */
  fail(reason: string, code: number, field?: string | null): void {
    if (!this.#transition(EV.ERROR)) return;
    this.#deps.metrics.protocolErrors.labels(reason).inc();
    this.log.warn({ reason, field: field ?? undefined, code }, 'closing stream: protocol error');
    this.#deps.closeSocket(code, reason);
    void this.#end('protocol-error');
  }

  /** Gateway shutdown: finalise the sinks first, then close the socket with 1001 (going away). */
  async shutdown(): Promise<void> {
    if (this.#transition(EV.SHUTDOWN)) void this.#end('shutdown');
    await this.#ending;
    this.#deps.closeSocket(CLOSE.GOING_AWAY, 'shutdown');
  }

  /** No message for too long on a started stream: close it as stalled. */
  stall(): void {
    if (!this.#transition(EV.STALLED)) return;
    this.#deps.closeSocket(CLOSE.POLICY, 'stalled');
    void this.#end('stalled');
  }

  /**
   * Looks `event` up in the state table (stream-state.ts) and applies it: the next state, or a
   * refusal (a protocol error, which closes the session), or nothing. Returns true when the
   * event was accepted, so the caller does its work; false when it was refused or ignored.
   */
  #transition(event: SessionEvent): boolean {
    const next = TRANSITIONS[this.state]![event]!;
    if (typeof next === 'number') {
      this.state = next;
      return true;
    }
    if (next !== IGNORED) this.fail(next.reason, CLOSE.PROTOCOL_ERROR, next.field);
    return false;
  }

  /** `event` as it applies to this session: on a started stream, a message naming another stream is FOREIGN_STREAM. */
  #ours(event: SessionEvent, streamSid: string): SessionEvent {
    return this.state === STATE.STARTED && streamSid !== this.info!.streamSid ? EV.FOREIGN_STREAM : event;
  }

  /**
   * The entry action of CLOSED, run once right after the transition into it: closes every sink
   * (they finalise their files), counts the outcome and logs one summary line. Resolves when
   * the sinks are closed.
   */
  #end(reason: CloseReason): Promise<void> {
    if (this.#ending !== null) return this.#ending;
    const wasStarted = this.started;
    this.closeReason = reason;
    const fanOut = this.#fanOut;
    // Active means taking audio; finalising 500 long recordings (hash, fsync) can take seconds.
    if (wasStarted) this.#deps.onStopped(this);
    this.#ending = (async () => {
      if (fanOut !== null) await fanOut.close(reason, this.summary());
      if (wasStarted) {
        const m = this.#deps.metrics;
        m.streamsTotal.labels(reason).inc();
        this.#info({ outcome: reason, ...this.summary() }, 'stream ended');
        this.#deps.bus.emit('stream-end', this.info!, reason);
      }
      this.#deps.onEnded(this);
    })();
    return this.#ending;
  }

  /** The table already moved the session to STARTED; a refused start closes it again at once. */
  #onStart(start: StartFields): void {
    const deps = this.#deps;
    const conferenceSid = start.customParameters.conferenceSid;
    let info: StreamInfo = {
      accountSid: start.accountSid,
      callSid: start.callSid,
      streamSid: start.streamSid,
      tracks: start.tracks,
      customParameters: start.customParameters,
      conferenceSid: isSid('conference', conferenceSid) ? conferenceSid : null,
      startedAtMs: Date.now(),
    };
    this.info = info;
    const rejection = deps.checkStart?.(start) ?? null;
    if (rejection !== null) {
      deps.metrics.streamsTotal.labels('rejected').inc();
      this.fail(rejection, CLOSE.POLICY);
      return;
    }
    // Before any sink opens: a reused SID would open (and could clobber) the live stream's files.
    if (deps.claimStreamSid !== undefined && !deps.claimStreamSid(info.streamSid, this)) {
      deps.metrics.streamsTotal.labels('rejected').inc();
      this.fail('stream_sid_in_use', CLOSE.POLICY, 'start.streamSid');
      return;
    }
    if (info.conferenceSid !== null && deps.trustConference?.(start) === false) {
      // Recorded as a stream of its own: its DTMF, silence or words never reach that conference's rules.
      deps.metrics.unverifiedStreams.inc();
      this.log.warn({ claimedConferenceSid: info.conferenceSid }, 'stream is not a verified member of the conference it names; kept out of its rules');
      info = { ...info, conferenceSid: null };
      this.info = info;
    }
    this.#sequence(this.#msg.sequenceNumber);
    this.#streamSid = info.streamSid;
    for (const t of info.tracks) this.#trackMask |= 1 << TRACK_INDEX[t];
    this.#startedAt = this.lastMessageAt;
    this.started = true;
    this.#fanOut = new FanOut(this.#openSinks(info), () => this.log);
    this.#info({ tracks: info.tracks, conferenceSid: info.conferenceSid, sinks: this.#fanOut.size }, 'stream started');
    deps.onStarted(this);
    deps.bus.emit('stream-start', info);
  }

  #openSinks(info: StreamInfo) {
    const opened = [];
    for (const factory of this.#deps.sinkFactories) {
      const stats = this.#deps.metrics.sinkStats(factory.name);
      try {
        const sink = factory.open(info, sinkContext(this, stats));
        if (sink !== null) opened.push({ sink, stats });
      } catch (err) {
        stats.errors++;
        this.log.error({ err, sink: factory.name }, 'sink failed to open; stream goes on without it');
      }
    }
    return opened;
  }

  /**
   * Accounts one stream-wide sequence number. Returns 0 for a new message, 1 for a duplicate,
   * 2 for a late one (a number skipped earlier, now filled in).
   */
  #sequence(seq: number): 0 | 1 | 2 {
    const max = this.#maxSeq;
    if (seq > max) {
      const skipped = seq - max - 1;
      if (skipped > 0 && max > 0) {
        this.#lost += skipped;
        this.#hot.framesLost += skipped;
      }
      const shift = seq - max;
      this.#seqWindow = shift >= SEQ_WINDOW ? 1 : ((this.#seqWindow << shift) | 1) >>> 0;
      this.#maxSeq = seq;
      return 0;
    }
    const back = max - seq;
    if (back < SEQ_WINDOW && ((this.#seqWindow >>> back) & 1) === 1) {
      this.#duplicate++;
      this.#hot.framesDuplicate++;
      return 1;
    }
    if (back < SEQ_WINDOW) this.#seqWindow = (this.#seqWindow | (1 << back)) >>> 0;
    this.#late++;
    this.#hot.framesLate++;
    if (this.#lost > 0) {
      this.#lost--;
      this.#hot.framesLost--;
    }
    return 2;
  }

  #onMedia(msg: ParsedMessage, receivedAt: number): void {
    if (!this.#transition(this.#ours(EV.MEDIA, msg.streamSid))) return;
    if (!this.info!.tracks.includes(msg.track)) return this.fail('unannounced_track', CLOSE.PROTOCOL_ERROR, 'media.track');
    const need = (msg.payload.length >> 2) * 3;
    if (need > this.#raw.length) this.#grow(need);
    const n = decodeBase64Into(msg.payload, this.#raw);
    if (n < 0) return this.fail('invalid_base64', CLOSE.INVALID_PAYLOAD, 'media.payload');
    this.#onMediaDecoded(msg, n, receivedAt, false);
  }

  /**
   * Makes #raw hold `need` bytes, capped at maxFrameBytes (rare: Twilio sends 160). A payload
   * that decodes to more than maxFrameBytes then fails decodeBase64Into, as it always has.
   */
  #grow(need: number): void {
    const size = Math.min(this.#deps.maxFrameBytes, need);
    if (size > this.#raw.length) this.#raw = Buffer.allocUnsafe(size);
  }

  /** Rare: counted and logged; the recording sink makes the same call and keeps it as a discontinuity. */
  #timestampJump(ts: number): void {
    this.#deps.metrics.protocolErrors.labels('timestamp_jump').inc();
    this.log.info({ fromMs: this.#mediaEndMs, toMs: ts }, 'media timestamp jumped past MAX_GAP_MS; recorded as a discontinuity, not silence');
  }

  /**
   * A checked media message whose `n` payload bytes are in the decode scratch's input region
   * (`inScratch`: the fast path) or in #raw (the strict path).
   */
  #onMediaDecoded(msg: ParsedMessage, n: number, receivedAt: number, inScratch: boolean): void {
    const track: Track = msg.track;
    const trackIndex = TRACK_INDEX[track];
    const order = this.#sequence(msg.sequenceNumber);
    if (order === 1) return; // a duplicate carries nothing new
    if (n === 0) return;
    const ts = msg.timestamp;
    // Plain comparisons per frame. Media time cannot run ahead of real time: a stream that claims
    // it does would make every later stretch cost disk (or hours at once).
    if (ts > receivedAt - this.#startedAt + this.#maxClockLeadMs) return this.fail('timestamp_ahead_of_clock', CLOSE.POLICY, 'media.timestamp');
    if (this.#mediaEndMs >= 0 && ts - this.#mediaEndMs > this.#maxGapMs) this.#timestampJump(ts);

    const hot = this.#hot;
    if (trackIndex === 0) hot.framesInbound++;
    else hot.framesOutbound++;
    hot.mediaBytes += n;
    const t = trackIndex === 0 ? this.#track0 : this.#track1;
    t.frames++;
    t.bytes += n;
    const end = ts + (n >> 3); // 8 samples per ms
    if (t.endMs >= 0 && ts > t.endMs) {
      t.gapMs += ts - t.endMs;
      t.gaps++;
    }
    if (end > t.endMs) t.endMs = end;
    if (end > this.#mediaEndMs) this.#mediaEndMs = end;

    if (!inScratch) {
      // Into the scratch (grown first, rarely: growing replaces its views, so they are read after).
      if (n > decodeScratch.capacity) decodeScratch.reserve(n);
      this.#raw.copy(decodeScratch.raw, 0, 0, n);
    }
    const frame = FRAME;
    if (n === 160) {
      frame.pcm = decodeScratch.pcm160;
      frame.mulaw = decodeScratch.raw160;
    } else {
      frame.pcm = decodeScratch.pcm.subarray(0, n);
      frame.mulaw = new Uint8Array(decodeScratch.raw.buffer, decodeScratch.raw.byteOffset, n);
    }
    frame.energy = decodeScratch.decode(n);
    frame.track = track;
    frame.trackIndex = trackIndex;
    frame.timestampMs = ts;
    frame.chunk = msg.chunk;
    frame.sequenceNumber = msg.sequenceNumber;
    frame.samples = n;
    frame.receivedAt = receivedAt;
    frame.late = order === 2;
    this.#fanOut!.accept(frame);
    this.#ingestLag.observe((performance.now() - receivedAt) / 1000);
  }
}

/** A sink's context whose `log` is read when the sink logs, so the stream's child logger is made only then. */
function sinkContext(session: StreamSession, stats: SinkStats): SinkContext {
  return {
    get log() {
      return session.log;
    },
    stats,
  };
}
