/**
 * The emulator's core: calls, their streams and the shared media clock. REST routes, the
 * control API and the programmatic API all act through this one object, so every path to a
 * state change runs the same rules (a hangup always stops the call's streams, always lets the
 * conference react, always sends the same callbacks).
 */
import { computeSignature } from '../twilio/signature.js';
import { newSid } from '../twilio/sids.js';
import { AudioCache } from './audio-cache.js';
import { CallMedia } from './call-media.js';
import { CallRunner } from './call-runner.js';
import type { CallbackSender } from './callbacks.js';
import { ConferenceEngine, parseEvents } from './conference-engine.js';
import { iso8601Nanos, rfc2822Callback } from './dates.js';
import type { SimEventBus } from './events.js';
import type { FaultController } from './faults.js';
import { MediaStreamer, type StreamEnd } from './media-streamer.js';
import { Pacer } from './pacer.js';
import { callSnapshot, streamSnapshot, type CallRecord, type StreamRecord, type StreamRequest } from './records.js';
import type { TwimlSource } from './twiml.js';
import { StreamAudio, type MixContext } from './stream-audio.js';
import type { CreateCallOptions, MediaTrack, SimLogger, StreamTrack } from './types.js';

/** Resolved Sim options the engine runs on. */
export interface EngineOptions {
  accountSid: string;
  authToken: string;
  /** 0: unpaced. */
  speed: number;
  requireWss: boolean;
  connectTimeoutMs: number;
  chunkCounting: 'per-track' | 'shared';
  timestampOffsetMs: number;
  tlsRejectUnauthorized: boolean;
  /** Timeout of TwiML and `<Play>` requests, ms. */
  callbackTimeoutMs: number;
  logger: SimLogger;
}

/** Why a call ended; decides the stream end reason and the participant-leave reason. */
export type HangupReason = 'api' | 'control' | 'audio-ended' | 'conference-ended' | 'sim-closed' | 'twiml' | 'twiml-error';

const TRACKS_OF: Record<StreamTrack, readonly MediaTrack[]> = {
  inbound_track: ['inbound'],
  outbound_track: ['outbound'],
  both_tracks: ['inbound', 'outbound'],
};

/** Unidirectional streams: at most 4 tracks per call at once (docs/twilio-protocol.md §4.3). */
export const MAX_TRACKS_PER_CALL = 4;

/** Grace for gateways to answer the close handshake when the Sim shuts down. */
const CLOSE_GRACE_MS = 1000;

export class SimEngine implements MixContext {
  readonly calls = new Map<string, CallRecord>();
  readonly streams = new Map<string, StreamRecord>();
  readonly conferences: ConferenceEngine;
  readonly opts: EngineOptions;
  readonly #bus: SimEventBus;
  readonly #callbacks: CallbackSender;
  readonly #faults: FaultController;
  readonly #pacer: Pacer | null;
  readonly #epoch = performance.now();
  readonly #pendingHangups = new Set<string>();
  readonly #audio = new AudioCache();
  #closed = false;

  constructor(opts: EngineOptions, bus: SimEventBus, callbacks: CallbackSender, faults: FaultController) {
    this.opts = opts;
    this.#bus = bus;
    this.#callbacks = callbacks;
    this.#faults = faults;
    this.#pacer = opts.speed > 0 ? new Pacer(opts.speed) : null;
    this.conferences = new ConferenceEngine(this, callbacks, bus);
  }

  /** The media clock: real time scaled by the speed (real time when unpaced), ms. */
  mediaNow(): number {
    return (performance.now() - this.#epoch) * (this.opts.speed > 0 ? this.opts.speed : 1);
  }

  heardBy(callSid: string): ReturnType<MixContext['heardBy']> {
    return this.conferences.heardBy(callSid);
  }

  readPastEnd(media: CallMedia): void {
    const call = this.calls.get(media.callSid);
    // A call with its own streams ends when they reach the end (so they send every frame first).
    if (call !== undefined && media.hangupOnAudioEnd && this.liveStreams(call).length === 0) {
      this.#scheduleHangup(call, 'audio-ended');
    }
  }

  async createCall(opts: CreateCallOptions = {}, direction: CallRecord['direction'] = 'inbound'): Promise<CallRecord> {
    const speaks = await this.#audio.load(opts.audio, opts.loop === true);
    const hears = await this.#audio.load(opts.hears);
    const sid = newSid('call');
    const now = new Date();
    const status = opts.status ?? 'in-progress';
    const call: CallRecord = {
      sid,
      accountSid: this.opts.accountSid,
      from: opts.from ?? '+15005550006',
      to: opts.to ?? '+15005550001',
      status,
      direction,
      dateCreated: now,
      dateUpdated: now,
      startTime: status === 'in-progress' ? now : null,
      endTime: null,
      media: new CallMedia(sid, speaks, hears, opts.hangupOnAudioEnd ?? true, () => this.#armEndTimer(sid)),
      conferenceSid: null,
      streamSids: [],
      streamFaults: opts.streamFaults,
      endTimer: null,
      runner: null,
      pendingTwiml: null,
      progress:
        opts.statusCallback === undefined
          ? null
          : {
              url: opts.statusCallback,
              method: opts.statusCallbackMethod ?? 'POST',
              events: opts.statusCallbackEvent === undefined ? new Set(['completed']) : parseEvents(opts.statusCallbackEvent),
              sequence: -1,
            },
    };
    this.calls.set(sid, call);
    if (opts.audioStartsAt === 'create') call.media.start(this.mediaNow());
    this.opts.logger.info({ callSid: sid, direction, from: call.from, to: call.to, status, audio: speaks.description }, 'call created');
    this.#bus.emit('call', callSnapshot(call));
    const source: TwimlSource | null =
      opts.twiml !== undefined ? { twiml: opts.twiml } : opts.url !== undefined ? { url: opts.url, method: opts.method ?? 'POST' } : null;
    if (source !== null) {
      call.runner = new CallRunner(this, call);
      // A call that is already answered runs its TwiML once the caller has its SID.
      if (status === 'in-progress') setImmediate(() => this.runTwiml(call, source));
      else call.pendingTwiml = source;
    }
    return call;
  }

  /**
   * An outbound call (CreateCall) goes through Twilio's progress: initiated, ringing, then
   * answered, when its TwiML starts. Called after the REST answer went out.
   */
  place(call: CallRecord): void {
    if (call.status !== 'queued') return;
    this.#progress(call, 'initiated');
    call.status = 'ringing';
    call.dateUpdated = new Date();
    this.#progress(call, 'ringing');
    this.#bus.emit('call', callSnapshot(call));
    setImmediate(() => this.answer(call));
  }

  /** Runs TwiML on a live call, replacing what it was doing (UpdateCall Url/Twiml). */
  runTwiml(call: CallRecord, source: TwimlSource): void {
    if (call.status !== 'in-progress' || this.#closed) return;
    call.runner ??= new CallRunner(this, call);
    call.runner.start(source);
  }

  /** Adds a listener for every Sim state change; returns the function that removes it. */
  onChange(listener: () => void): () => void {
    return this.#bus.on('change', listener);
  }

  /** The parameters of every request Twilio makes about a call (TwiML fetches, progress callbacks). */
  voiceParams(call: CallRecord): Record<string, string> {
    return {
      AccountSid: call.accountSid,
      ApiVersion: '2010-04-01',
      CallSid: call.sid,
      CallStatus: call.status,
      Called: call.to,
      Caller: call.from,
      Direction: call.direction,
      From: call.from,
      To: call.to,
    };
  }

  /** Moves a queued or ringing call to in-progress. */
  answer(call: CallRecord): void {
    if (call.status !== 'queued' && call.status !== 'ringing') return;
    call.status = 'in-progress';
    call.startTime = call.dateUpdated = new Date();
    this.opts.logger.info({ callSid: call.sid }, 'call answered');
    this.#progress(call, 'answered');
    this.#bus.emit('call', callSnapshot(call));
    const source = call.pendingTwiml;
    call.pendingTwiml = null;
    if (source !== null) this.runTwiml(call, source);
  }

  /** Ends a call: its streams stop (with `stop`), then its conference reacts. Idempotent. */
  hangup(call: CallRecord, reason: HangupReason): void {
    if (call.status !== 'in-progress' && call.status !== 'queued' && call.status !== 'ringing') return;
    call.status = call.status === 'in-progress' ? 'completed' : 'canceled';
    call.endTime = call.dateUpdated = new Date();
    if (call.endTimer !== null) clearTimeout(call.endTimer);
    call.endTimer = null;
    call.runner?.stop();
    call.pendingTwiml = null;
    const streamReason = reason === 'conference-ended' || reason === 'audio-ended' || reason === 'sim-closed' ? reason : 'hangup';
    for (const stream of this.liveStreams(call)) this.stopStream(stream, streamReason);
    this.opts.logger.info({ callSid: call.sid, status: call.status, reason }, 'call ended');
    this.conferences.onCallEnded(call);
    this.#progress(call, 'completed');
    this.#bus.emit('call', callSnapshot(call));
  }

  liveStreams(call: CallRecord): StreamRecord[] {
    const out: StreamRecord[] = [];
    for (const sid of call.streamSids) {
      const s = this.streams.get(sid);
      if (s !== undefined && s.status === 'in-progress') out.push(s);
    }
    return out;
  }

  /** Tracks the call's live streams use (both_tracks counts 2). */
  tracksInUse(call: CallRecord): number {
    let n = 0;
    for (const s of this.liveStreams(call)) n += TRACKS_OF[s.track].length;
    return n;
  }

  /** Creates a stream and dials its URL on the next turn of the event loop (after the REST answer). */
  createStream(call: CallRecord, req: StreamRequest): StreamRecord {
    const sid = newSid('stream');
    const now = new Date();
    const log = this.opts.logger;
    const warned = new Set<number>();
    const faults = this.#faults.forStream({ callSid: call.sid, name: req.name, track: req.track }, call.streamFaults);
    const audio = new StreamAudio(call.media, this);
    const signature = computeSignature(this.opts.authToken, req.url, {});
    // The record and its streamer refer to each other; the hooks read the record lazily.
    const record = {} as StreamRecord;
    const streamer = new MediaStreamer(
      {
        url: req.url,
        signature,
        accountSid: call.accountSid,
        callSid: call.sid,
        streamSid: sid,
        tracks: TRACKS_OF[req.track],
        customParameters: req.parameters,
        bidirectional: req.bidirectional === true,
        pacer: this.#pacer,
        speed: this.opts.speed,
        faults,
        chunkCounting: this.opts.chunkCounting,
        timestampOffsetMs: this.opts.timestampOffsetMs,
        connectTimeoutMs: this.opts.connectTimeoutMs,
        requireWss: this.opts.requireWss,
        tlsRejectUnauthorized: this.opts.tlsRejectUnauthorized,
        logger: this.opts.logger,
      },
      audio,
      {
        onConnected: () => {
          log.info({ streamSid: sid, callSid: call.sid }, 'stream connected');
          this.#bus.emit('stream', streamSnapshot(record));
        },
        onStarted: () => {
          log.info({ streamSid: sid, callSid: call.sid, tracks: TRACKS_OF[req.track] }, 'stream started');
          this.#streamCallback(record, 'stream-started');
          this.#bus.emit('stream', streamSnapshot(record));
        },
        onAudioEnd: () => {
          if (call.media.hangupOnAudioEnd) this.#scheduleHangup(call, 'audio-ended');
        },
        onEnded: (end) => this.#onStreamEnded(record, end),
        onWarning: (code, message) => {
          // Twilio logs each warning once per stream (docs/twilio-protocol.md §3).
          if (warned.has(code)) return;
          warned.add(code);
          log.warn({ streamSid: sid, callSid: call.sid, code }, message);
        },
        onPlayback: (playback) => {
          call.media.playback = playback;
        },
      },
    );

    Object.assign(record, {
      sid,
      accountSid: call.accountSid,
      callSid: call.sid,
      name: req.name,
      track: req.track,
      url: req.url,
      statusCallback: req.statusCallback,
      statusCallbackMethod: req.statusCallbackMethod,
      parameters: req.parameters,
      bidirectional: req.bidirectional === true,
      status: 'in-progress',
      dateCreated: now,
      dateUpdated: now,
      signature,
      error: null,
      endReason: null,
      faults,
      streamer,
    } satisfies StreamRecord);
    this.streams.set(sid, record);
    call.streamSids.push(sid);
    log.info({ streamSid: sid, callSid: call.sid, name: req.name, track: req.track, bidirectional: record.bidirectional, url: req.url }, 'stream created');
    setImmediate(() => {
      if (record.status === 'in-progress') streamer.connect();
    });
    this.#bus.emit('stream', streamSnapshot(record));
    return record;
  }

  /** Stops a live stream (`stop`, then close). */
  stopStream(stream: StreamRecord, reason: string): void {
    if (stream.status !== 'in-progress') return;
    stream.endReason = reason;
    stream.streamer.stop(reason);
  }

  /** Finds a call's stream by SID, or by name (the live one first, else the latest). */
  findStream(call: CallRecord, sidOrName: string): StreamRecord | undefined {
    const bySid = this.streams.get(sidOrName);
    if (bySid !== undefined) return bySid.callSid === call.sid ? bySid : undefined;
    let latest: StreamRecord | undefined;
    for (const sid of call.streamSids) {
      const s = this.streams.get(sid)!;
      if (s.name !== sidOrName) continue;
      if (s.status === 'in-progress') return s;
      latest = s;
    }
    return latest;
  }

  /** Stops every stream (sending `stop`), waits briefly for the close handshakes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const call of this.calls.values()) {
      if (call.endTimer !== null) clearTimeout(call.endTimer);
      call.endTimer = null;
    }
    const closing: Promise<void>[] = [];
    for (const stream of this.streams.values()) {
      this.stopStream(stream, 'sim-closed');
      closing.push(stream.streamer.closed);
    }
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closing), new Promise<void>((r) => (grace = setTimeout(r, CLOSE_GRACE_MS)))]);
    clearTimeout(grace);
    for (const stream of this.streams.values()) stream.streamer.terminate();
    this.#pacer?.close();
  }

  #onStreamEnded(stream: StreamRecord, end: StreamEnd): void {
    stream.status = 'stopped';
    stream.dateUpdated = new Date();
    stream.endReason ??= end.reason;
    stream.error = end.error;
    this.#logEnd(stream);
    if (end.error !== null) this.#streamCallback(stream, 'stream-error', end.error.message);
    else this.#streamCallback(stream, 'stream-stopped');
    this.#bus.emit('stream', streamSnapshot(stream));
  }

  /** The one line a stream's end gets: its counts, or its error code. */
  #logEnd(stream: StreamRecord): void {
    const st = stream.streamer.stats;
    const counts: Record<string, unknown> = {
      streamSid: stream.sid,
      callSid: stream.callSid,
      reason: stream.endReason,
      messagesSent: st.messagesSent,
      mediaSent: { ...st.mediaSent },
      messagesReceived: st.messagesReceived,
    };
    const pb = st.playback;
    if (pb !== null) Object.assign(counts, { mediaReceived: pb.mediaReceived, marksEchoed: pb.marksEchoed, clears: pb.clears, dtmfSent: st.dtmfSent });
    if (stream.error !== null) this.opts.logger.warn({ ...counts, code: stream.error.code }, `stream error ${stream.error.code}: ${stream.error.message}`);
    else this.opts.logger.info(counts, 'stream stopped');
  }

  /** Call progress callback (CreateCall StatusCallback / StatusCallbackEvent). */
  #progress(call: CallRecord, event: 'initiated' | 'ringing' | 'answered' | 'completed'): void {
    const p = call.progress;
    if (p === null || !p.events.has(event) || this.#closed) return;
    p.sequence++;
    const params: Record<string, string> = {
      ...this.voiceParams(call),
      CallbackSource: 'call-progress-events',
      SequenceNumber: String(p.sequence),
      Timestamp: rfc2822Callback(new Date()),
    };
    if (event === 'initiated') params.CallStatus = 'queued';
    if (event === 'completed' && call.startTime !== null && call.endTime !== null) {
      params.CallDuration = String(Math.round((call.endTime.getTime() - call.startTime.getTime()) / 1000));
    }
    this.#callbacks.send({ kind: 'call', subject: call.sid, event, url: p.url, method: p.method, params });
  }

  /** Stream status callback (docs/twilio-protocol.md §5). */
  #streamCallback(stream: StreamRecord, event: 'stream-started' | 'stream-stopped' | 'stream-error', error?: string): void {
    if (stream.statusCallback === null || this.#closed) return;
    const params: Record<string, string> = {
      AccountSid: stream.accountSid,
      CallSid: stream.callSid,
      StreamSid: stream.sid,
      StreamName: stream.name ?? stream.sid,
      StreamEvent: event,
      Timestamp: iso8601Nanos(new Date(), Number(process.hrtime.bigint() % 1_000_000n)),
    };
    if (error !== undefined) params.StreamError = error;
    this.#callbacks.send({
      kind: 'stream',
      subject: stream.sid,
      event,
      url: stream.statusCallback,
      method: stream.statusCallbackMethod,
      params,
    });
  }

  #scheduleHangup(call: CallRecord, reason: HangupReason): void {
    // Deferred: the reader is mid-frame, and a hangup stops streams and ends conferences.
    if (this.#pendingHangups.has(call.sid)) return;
    this.#pendingHangups.add(call.sid);
    setImmediate(() => {
      this.#pendingHangups.delete(call.sid);
      if (!this.#closed) this.hangup(call, reason);
    });
  }

  /**
   * Paced Sims end a call nobody streams when its audio runs out, on a timer. Calls with live
   * streams end when a stream reaches the end instead, so no frame is cut off.
   */
  #armEndTimer(callSid: string): void {
    const call = this.calls.get(callSid);
    if (call === undefined || this.opts.speed <= 0 || !call.media.hangupOnAudioEnd || this.#closed) return;
    const delay = Math.max(0, (call.media.endsAt - this.mediaNow()) / this.opts.speed);
    const check = (): void => {
      call.endTimer = null;
      if (this.liveStreams(call).length === 0) this.hangup(call, 'audio-ended');
      // Streams that stop early leave the call running: look again a frame later.
      else call.endTimer = setTimeout(check, 20 / this.opts.speed + 1);
    };
    call.endTimer = setTimeout(check, delay);
  }
}
