/**
 * Runs a call's TwiML as Twilio does: fetch the document (signed, with the call's parameters),
 * execute its verbs in order, follow `<Redirect>` and `action` URLs, hang up when the document
 * runs out. A new document (UpdateCall Url/Twiml) interrupts whatever the call is doing: the
 * current wait ends, a conference is left, a two-way stream is closed.
 *
 *   source ──fetch/parse──► verbs ──► Start/Stop (at once) · Say/Play/Pause (timed)
 *                                     Connect (until the socket closes) · Dial (until it leaves)
 *                                     Redirect/action ──► next source · end of verbs ──► hangup
 */
import { FRAME_MS, MulawSource } from './audio-source.js';
import type { CallRecord, ParticipantRecord, StreamRecord, StreamRequest, TwimlRunner } from './records.js';
import { fetchSigned, RetrievalError } from './twiml-fetch.js';
import { MAX_TWIML_BYTES, parseTwiml, streamTrack, TwimlError, type ConferenceNoun, type StreamNoun, type TwimlSource, type Verb } from './twiml.js';
import type { HttpMethod, SimLogger } from './types.js';
import { wavToMulaw } from './wav.js';

export type { TwimlSource } from './twiml.js';

/** `<Play>` audio larger than this is refused (bounded memory). */
const MAX_PLAY_BYTES = 16 * 1024 * 1024;
/** Documents one call may load; a Redirect loop ends there. */
const MAX_DOCUMENTS = 1000;
/** Spoken text runs at about 150 words a minute. */
const SAY_MS_PER_WORD = 400;
/** Unidirectional streams: at most 4 tracks per call (docs/twilio-protocol.md §4.3). */
const MAX_TRACKS = 4;
const TRACK_COST = { inbound_track: 1, outbound_track: 1, both_tracks: 2 } as const;

/** What a finished verb asks for next. */
type Next = { kind: 'continue' } | { kind: 'document'; source: TwimlSource } | { kind: 'stop' };
const CONTINUE: Next = { kind: 'continue' };

/** What a runner needs of the engine that owns the call (SimEngine; kept narrow so the two do not import each other). */
export interface RunnerHost {
  readonly opts: {
    readonly authToken: string;
    readonly speed: number;
    readonly callbackTimeoutMs: number;
    readonly tlsRejectUnauthorized: boolean;
    readonly logger: SimLogger;
  };
  readonly conferences: {
    dialIn(call: CallRecord, noun: ConferenceNoun): ParticipantRecord;
    leave(call: CallRecord, reason: 'participant_updated_via_api'): void;
  };
  mediaNow(): number;
  voiceParams(call: CallRecord): Record<string, string>;
  onChange(listener: () => void): () => void;
  hangup(call: CallRecord, reason: 'twiml' | 'twiml-error'): void;
  liveStreams(call: CallRecord): StreamRecord[];
  tracksInUse(call: CallRecord): number;
  createStream(call: CallRecord, req: StreamRequest): StreamRecord;
  stopStream(stream: StreamRecord, reason: string): void;
}

export class CallRunner implements TwimlRunner {
  readonly #engine: RunnerHost;
  readonly #call: CallRecord;
  #abort: AbortController | null = null;
  #documents = 0;

  constructor(engine: RunnerHost, call: CallRecord) {
    this.#engine = engine;
    this.#call = call;
  }

  /** Runs `source`, interrupting what the call was doing. */
  start(source: TwimlSource): void {
    this.stop();
    const abort = new AbortController();
    this.#abort = abort;
    void this.#run(source, abort.signal).catch((err: unknown) => {
      this.#engine.opts.logger.error({ err, callSid: this.#call.sid }, 'call runner failed');
      if (!abort.signal.aborted) this.#engine.hangup(this.#call, 'twiml');
    });
  }

  /** Ends the current document (the call hung up, or a new document replaces it). */
  stop(): void {
    this.#abort?.abort();
    this.#abort = null;
  }

  async #run(first: TwimlSource, signal: AbortSignal): Promise<void> {
    let source = first;
    for (;;) {
      if (++this.#documents > MAX_DOCUMENTS) return this.#fail(12200, `more than ${MAX_DOCUMENTS} documents (a Redirect loop?)`);
      let verbs: Verb[];
      try {
        verbs = await this.#load(source, signal);
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof TwimlError || err instanceof RetrievalError) return this.#fail(err.code, err.message);
        throw err;
      }
      let next: Next = CONTINUE;
      for (const v of verbs) {
        if (signal.aborted || !this.#live()) return;
        next = await this.#exec(v, signal);
        if (next.kind !== 'continue') break;
      }
      if (signal.aborted || !this.#live() || next.kind === 'stop') return;
      if (next.kind === 'continue') {
        // No verbs left: Twilio hangs up.
        this.#engine.hangup(this.#call, 'twiml');
        return;
      }
      source = next.source;
    }
  }

  async #load(source: TwimlSource, signal: AbortSignal): Promise<Verb[]> {
    if ('twiml' in source) return parseTwiml(source.twiml, null);
    const o = this.#engine.opts;
    const answer = await fetchSigned({
      url: source.url,
      method: source.method,
      params: { ...this.#engine.voiceParams(this.#call), ...source.params },
      authToken: o.authToken,
      timeoutMs: o.callbackTimeoutMs,
      maxBytes: MAX_TWIML_BYTES,
      tlsRejectUnauthorized: o.tlsRejectUnauthorized,
      signal,
    });
    if (!/xml|text\/plain|^$/i.test(answer.contentType)) throw new TwimlError(12300, `Invalid Content-Type ${answer.contentType} for TwiML`);
    const verbs = parseTwiml(answer.body.toString('utf8'), source.url);
    o.logger.info({ callSid: this.#call.sid, url: source.url, verbs: verbs.map((v) => v.verb) }, 'twiml fetched');
    return verbs;
  }

  async #exec(v: Verb, signal: AbortSignal): Promise<Next> {
    const log = this.#engine.opts.logger;
    const callSid = this.#call.sid;
    switch (v.verb) {
      case 'Start':
        this.#startStream(v.stream, false);
        return CONTINUE;
      case 'Stop':
        for (const s of this.#engine.liveStreams(this.#call)) {
          if (!s.bidirectional && (v.name === null || s.name === v.name)) this.#engine.stopStream(s, 'twiml');
        }
        return CONTINUE;
      case 'Connect': {
        const stream = this.#startStream(v.stream, true);
        if (stream === null) return CONTINUE;
        await this.#until(() => stream.status === 'stopped', signal);
        if (signal.aborted) {
          this.#engine.stopStream(stream, 'redirected');
          return { kind: 'stop' };
        }
        return v.action === null ? CONTINUE : { kind: 'document', source: { url: v.action, method: v.method } };
      }
      case 'Dial':
        return this.#dial(v.conference, v.action, v.method, signal);
      case 'Say':
        return this.#timed(v.loop === 0 ? Infinity : Math.max(1, v.text.split(/\s+/).filter(Boolean).length) * SAY_MS_PER_WORD * v.loop, signal);
      case 'Pause':
        return this.#timed(v.seconds * 1000, signal);
      case 'Play':
        return this.#play(v.url, v.loop, signal);
      case 'Hangup':
        this.#engine.hangup(this.#call, 'twiml');
        return { kind: 'stop' };
      case 'Redirect':
        return { kind: 'document', source: { url: v.url, method: v.method } };
      case 'Skipped':
        log.info({ callSid }, `twiml verb skipped: ${v.detail}`);
        return CONTINUE;
    }
  }

  /** `<Start><Stream>` / `<Connect><Stream>`; null when Twilio would refuse it (logged with its code). */
  #startStream(noun: StreamNoun, bidirectional: boolean): StreamRecord | null {
    const engine = this.#engine;
    const call = this.#call;
    const track = streamTrack(noun.track);
    const refuse = (code: number, why: string): null => {
      engine.opts.logger.warn({ callSid: call.sid, url: noun.url, code }, `stream refused: ${why}`);
      return null;
    };
    // <Connect> allows only inbound_track (31941), as does a bad value on <Start>.
    if (track === null || (bidirectional && track !== 'inbound_track')) return refuse(31941, `invalid track ${noun.track}`);
    const live = engine.liveStreams(call);
    if (bidirectional && live.some((s) => s.bidirectional)) return refuse(31941, 'a call has at most one two-way stream');
    if (!bidirectional && engine.tracksInUse(call) + TRACK_COST[track] > MAX_TRACKS) {
      return refuse(31900, `at most ${MAX_TRACKS} one-way tracks per call`);
    }
    if (noun.name !== null && live.some((s) => s.name === noun.name)) return refuse(31900, `a stream named ${noun.name} is already running`);
    return engine.createStream(call, {
      url: noun.url,
      name: noun.name,
      track,
      statusCallback: noun.statusCallback,
      statusCallbackMethod: noun.statusCallbackMethod,
      parameters: noun.parameters,
      bidirectional,
    });
  }

  async #dial(noun: ConferenceNoun, action: string | null, method: HttpMethod, signal: AbortSignal): Promise<Next> {
    const conferences = this.#engine.conferences;
    const participant = conferences.dialIn(this.#call, noun);
    await this.#until(() => participant.status !== 'connected', signal);
    if (signal.aborted) {
      // Redirected out of the conference (UpdateCall Url/Twiml).
      if (participant.status === 'connected') conferences.leave(this.#call, 'participant_updated_via_api');
      return { kind: 'stop' };
    }
    return action === null ? CONTINUE : { kind: 'document', source: { url: action, method } };
  }

  async #play(url: string, loop: number, signal: AbortSignal): Promise<Next> {
    const o = this.#engine.opts;
    let audio: Uint8Array;
    try {
      const answer = await fetchSigned({
        url,
        method: 'GET',
        params: {},
        authToken: o.authToken,
        timeoutMs: o.callbackTimeoutMs,
        maxBytes: MAX_PLAY_BYTES,
        tlsRejectUnauthorized: o.tlsRejectUnauthorized,
        signal,
      });
      audio = decodePlayable(answer.body, answer.contentType, url);
    } catch (err) {
      if (signal.aborted) return { kind: 'stop' };
      // Twilio skips audio it cannot fetch or play and goes on (warning 13227 / 11200).
      o.logger.warn({ callSid: this.#call.sid, url, code: err instanceof RetrievalError ? 11200 : 13227 }, `play skipped: ${(err as Error).message}`);
      return CONTINUE;
    }
    const source = new MulawSource(audio, `play ${url}`);
    const media = this.#call.media;
    const from = media.frameIndexAt(this.#engine.mediaNow()) + 1;
    media.playOutbound(source, from, loop === 0 ? Infinity : loop);
    const next = await this.#timed(loop === 0 ? Infinity : source.frameCount * FRAME_MS * loop, signal);
    media.playOutbound(null, 0, 0);
    return next;
  }

  /** Waits `mediaMs` of media time (scaled by the Sim's speed; unpaced: at once). */
  #timed(mediaMs: number, signal: AbortSignal): Promise<Next> {
    const speed = this.#engine.opts.speed;
    const realMs = speed > 0 ? mediaMs / speed : 0;
    return new Promise<Next>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        off();
        resolve(signal.aborted || !this.#live() ? { kind: 'stop' } : CONTINUE);
      };
      const timer = Number.isFinite(realMs) ? setTimeout(done, realMs) : undefined;
      signal.addEventListener('abort', done, { once: true });
      // A hangup ends the wait too.
      const off = this.#engine.onChange(() => {
        if (!this.#live()) done();
      });
    });
  }

  /** Resolves when `check` holds (re-checked on every Sim change), the call ends, or `signal` aborts. */
  #until(check: () => boolean, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const test = (): void => {
        if (signal.aborted || !this.#live() || check()) {
          off();
          signal.removeEventListener('abort', test);
          resolve();
        }
      };
      const off = this.#engine.onChange(test);
      signal.addEventListener('abort', test, { once: true });
      test();
    });
  }

  #live(): boolean {
    return this.#call.status === 'in-progress';
  }

  /** A document Twilio could not run: logged with its code, and the call hangs up. */
  #fail(code: number, message: string): void {
    this.#engine.opts.logger.warn({ callSid: this.#call.sid, code }, `twiml error ${code}: ${message}`);
    this.#engine.hangup(this.#call, 'twiml-error');
  }
}

/** WAV (any format wav.ts reads) or raw mu-law (audio/basic, audio/x-mulaw); others throw. */
function decodePlayable(body: Buffer, contentType: string, url: string): Uint8Array {
  if (body.subarray(0, 4).toString('latin1') === 'RIFF') return wavToMulaw(body, url);
  if (/audio\/(basic|x-mulaw|mulaw|ulaw)/i.test(contentType)) return body;
  throw new Error(`cannot decode ${contentType || 'audio of unknown type'} (the emulator plays WAV and mu-law)`);
}
