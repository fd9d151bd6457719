/**
 * A stand-in for Deepgram's live streaming endpoint (`/v1/listen` over WebSocket), written from
 * Deepgram's API reference and AsyncAPI description, and as strict as the service:
 *
 * - Handshake: path `/v1/listen`; `Authorization: Token <key>` (else 401 with Deepgram's JSON
 *   error body); `encoding`, `sample_rate`, `channels` must describe the audio (else 400 with
 *   a `dg-error` header); boolean options must be true/false.
 * - Audio: binary messages, never empty (an empty one is how old clients closed a stream, and
 *   Deepgram's troubleshooting guide warns it closes the connection). Text messages:
 *   `{"type":"KeepAlive"}`, `{"type":"Finalize"}`, `{"type":"CloseStream"}`; anything else is a
 *   violation. Nothing may follow CloseStream.
 * - Idle: no audio or text for 10 s closes with 1011 `NET-0001`.
 * - Replies, recognising the tone language (tone-speech.ts) from the bytes received: interim
 *   `Results` (is_final false) as words come, final `Results` (is_final true, speech_final true)
 *   at each endpoint, an empty final after 5 s of silence, each with `channel_index`, `start`,
 *   `duration`, `channel.alternatives[0].{transcript, confidence, words[]}` and `metadata`;
 *   on CloseStream the last final, then `Metadata`, then close 1000.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { MULAW_TO_PCM } from '../../src/twilio/mulaw.js';
import { Standin, type Refusal, type StandinConnection } from './standin.js';
import { ToneRecognizer, type HeardWord } from './tone-speech.js';

const BOOLEAN_PARAMS = ['interim_results', 'smart_format', 'punctuate', 'vad_events', 'diarize', 'multichannel', 'numerals', 'profanity_filter', 'filler_words'];
const IDLE_CLOSE_MS = 10_000;
const SILENT_FINAL_SEC = 5;

interface DgState {
  rec: ToneRecognizer;
  /** Seconds settled by finals so far. */
  finalEnd: number;
  /** Seconds when the last interim was sent. */
  lastInterim: number;
  closing: boolean;
  idle: NodeJS.Timeout | null;
  requestId: string;
  sha: ReturnType<typeof createHash>;
  interim: boolean;
  keepAlives: number;
}

export class DeepgramStandin extends Standin {
  readonly #key: string;
  readonly #state = new Map<StandinConnection, DgState>();

  constructor(apiKey: string) {
    super();
    this.#key = apiKey;
  }

  keepAlives(c: StandinConnection): number {
    return this.#state.get(c)?.keepAlives ?? 0;
  }

  protected check(req: IncomingMessage, url: URL): Refusal | null {
    if (url.pathname !== '/v1/listen') return { status: 404, body: JSON.stringify({ err_code: 'NOT_FOUND', err_msg: 'Not Found' }) };
    const auth = req.headers.authorization;
    if (auth !== `Token ${this.#key}`) {
      return { status: 401, body: JSON.stringify({ err_code: 'INVALID_AUTH', err_msg: 'Invalid credentials.', request_id: randomUUID() }) };
    }
    const q = url.searchParams;
    const bad = (msg: string): Refusal => ({ status: 400, body: JSON.stringify({ err_code: 'Bad Request', err_msg: msg, request_id: randomUUID() }), headers: { 'dg-error': msg } });
    if (q.get('encoding') !== 'mulaw') return bad(`unsupported encoding ${q.get('encoding')}`);
    if (q.get('sample_rate') !== '8000') return bad('sample_rate must match the audio');
    if (q.get('channels') !== '1') return bad('channels must match the audio');
    for (const p of BOOLEAN_PARAMS) {
      const v = q.get(p);
      if (v !== null && v !== 'true' && v !== 'false') return bad(`${p} must be true or false`);
    }
    return null;
  }

  protected opened(c: StandinConnection): void {
    const st: DgState = {
      rec: new ToneRecognizer(
        () => this.#interim(c),
        (words, at) => this.#final(c, words, at, true),
      ),
      finalEnd: 0,
      lastInterim: 0,
      closing: false,
      idle: null,
      requestId: randomUUID(),
      sha: createHash('sha256'),
      interim: c.query.get('interim_results') === 'true',
      keepAlives: 0,
    };
    this.#state.set(c, st);
    this.#touch(c, st);
    c.ws.on('close', () => {
      if (st.idle !== null) clearTimeout(st.idle);
    });
  }

  protected message(c: StandinConnection, data: Buffer, isBinary: boolean): void {
    const st = this.#state.get(c)!;
    this.#touch(c, st);
    if (st.closing) {
      c.violations.push('message after CloseStream');
      return;
    }
    if (isBinary) {
      if (data.length === 0) {
        c.violations.push('empty binary message');
        this.closeConnection(c, 1011, 'NET-0000');
        return;
      }
      st.sha.update(data);
      const pcm = new Int16Array(data.length);
      for (let i = 0; i < data.length; i++) pcm[i] = MULAW_TO_PCM[data[i]!]!;
      st.rec.feed(pcm);
      const received = st.rec.pos / 8000;
      if (this.checkClosePlan(c, received)) return;
      if (st.rec.utterance.length === 0 && st.rec.partial() === '' && received - st.finalEnd >= SILENT_FINAL_SEC) this.#final(c, [], received, false);
      else if (received - st.lastInterim >= 1) this.#interim(c);
      return;
    }
    let m: { type?: unknown };
    try {
      m = JSON.parse(data.toString('utf8')) as { type?: unknown };
    } catch {
      c.violations.push(`text message that is not JSON: ${data.toString('utf8').slice(0, 40)}`);
      return;
    }
    switch (m.type) {
      case 'KeepAlive':
        st.keepAlives++;
        return;
      case 'Finalize': {
        const words = st.rec.flush();
        this.#final(c, words, st.rec.pos / 8000, false, true);
        return;
      }
      case 'CloseStream': {
        st.closing = true;
        const words = st.rec.flush();
        if (words.length > 0 || st.rec.pos / 8000 > st.finalEnd) this.#final(c, words, st.rec.pos / 8000, words.length > 0);
        const duration = st.rec.pos / 8000;
        this.send(c, {
          type: 'Metadata',
          transaction_key: 'deprecated',
          request_id: st.requestId,
          sha256: st.sha.digest('hex'),
          created: new Date().toISOString(),
          duration,
          channels: 1,
          models: ['1abfe86b-e047-4eed-858a-35e5625b41ee'],
          model_info: { '1abfe86b-e047-4eed-858a-35e5625b41ee': { name: 'standin-tone', version: '2026-01-01', arch: 'tone' } },
        });
        this.closeConnection(c, 1000, '');
        return;
      }
      default:
        c.violations.push(`unknown message type ${JSON.stringify(m.type)}`);
    }
  }

  #touch(c: StandinConnection, st: DgState): void {
    if (st.idle !== null) clearTimeout(st.idle);
    st.idle = setTimeout(() => this.closeConnection(c, 1011, 'NET-0001'), IDLE_CLOSE_MS);
    st.idle.unref();
  }

  #interim(c: StandinConnection): void {
    const st = this.#state.get(c)!;
    const now = st.rec.pos / 8000;
    st.lastInterim = now;
    if (!st.interim || this.isMuted(c, now)) return;
    const text = st.rec.partial();
    if (text === '') return;
    this.send(c, this.#results(st, st.rec.utterance, text, st.finalEnd, now, false, false));
  }

  #final(c: StandinConnection, words: HeardWord[], at: number, speechFinal: boolean, fromFinalize = false): void {
    const st = this.#state.get(c)!;
    if (this.isMuted(c, at)) return;
    const start = st.finalEnd;
    st.finalEnd = at;
    st.lastInterim = at;
    this.send(c, { ...this.#results(st, words, words.map((w) => w.word).join(' '), start, at, true, speechFinal), from_finalize: fromFinalize });
  }

  #results(st: DgState, words: HeardWord[], transcript: string, start: number, end: number, isFinal: boolean, speechFinal: boolean): Record<string, unknown> {
    return {
      type: 'Results',
      channel_index: [0, 1],
      duration: round(end - start),
      start: round(start),
      is_final: isFinal,
      speech_final: speechFinal,
      channel: {
        alternatives: [
          {
            transcript,
            confidence: words.length > 0 ? 0.99 : 0,
            words: words.map((w) => ({ word: w.word, start: round(w.start), end: round(w.end), confidence: 0.99, punctuated_word: w.word[0]!.toUpperCase() + w.word.slice(1) })),
          },
        ],
      },
      metadata: {
        request_id: st.requestId,
        model_info: { name: 'standin-tone', version: '2026-01-01', arch: 'tone' },
        model_uuid: '1abfe86b-e047-4eed-858a-35e5625b41ee',
      },
    };
  }
}

function round(s: number): number {
  return Math.round(s * 1000) / 1000;
}
