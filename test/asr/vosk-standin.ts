/**
 * A stand-in for the Vosk server's WebSocket protocol (alphacep/vosk-server,
 * websocket/asr_server.py), as strict as that server:
 *
 * - Any path (the server ignores it). A text message containing `config` sets the recogniser
 *   up (`sample_rate` must be 8000 here: the audio is Twilio's 8 kHz) and must come before the
 *   first audio; after audio it no longer changes the recogniser (a violation here).
 * - Binary messages are 16-bit little-endian PCM (an odd length is a violation). Each gets
 *   exactly one reply: `{"partial": "…"}`, or `{"result": [{conf, end, start, word}], "text": "…"}`
 *   when an utterance ends (`{"text": ""}` when nothing was said).
 * - The text `{"eof" : 1}` (that exact string: the server compares it) gets the final result,
 *   then the server closes. Any other text reaches the recogniser as audio and kills the
 *   handler: close 1011.
 */
import type { IncomingMessage } from 'node:http';
import { Standin, type Refusal, type StandinConnection } from './standin.js';
import { ToneRecognizer, type HeardWord } from './tone-speech.js';

interface VoskState {
  rec: ToneRecognizer;
  configured: boolean;
  sawAudio: boolean;
  /** An utterance that ended in the current chunk, reported as this chunk's reply. */
  ended: HeardWord[] | null;
}

export class VoskStandin extends Standin {
  readonly #state = new Map<StandinConnection, VoskState>();

  protected check(_req: IncomingMessage, _url: URL): Refusal | null {
    return null;
  }

  protected opened(c: StandinConnection): void {
    const st: VoskState = { rec: new ToneRecognizer(undefined, (words) => (st.ended = words)), configured: false, sawAudio: false, ended: null };
    this.#state.set(c, st);
  }

  protected message(c: StandinConnection, data: Buffer, isBinary: boolean): void {
    const st = this.#state.get(c)!;
    if (!isBinary) {
      const text = data.toString('utf8');
      if (text.includes('config')) {
        let cfg: { config?: { sample_rate?: unknown } };
        try {
          cfg = JSON.parse(text) as typeof cfg;
        } catch {
          c.violations.push('config is not JSON');
          this.closeConnection(c, 1011, '');
          return;
        }
        if (st.sawAudio) c.violations.push('config after audio');
        if (cfg.config?.sample_rate !== 8000) c.violations.push(`sample_rate ${String(cfg.config?.sample_rate)}`);
        st.configured = true;
        return;
      }
      if (text === '{"eof" : 1}') {
        const words = st.ended ?? st.rec.flush();
        this.send(c, this.#result(words));
        this.closeConnection(c, 1000, '');
        return;
      }
      c.violations.push(`text that is neither config nor eof: ${text.slice(0, 40)}`);
      this.closeConnection(c, 1011, '');
      return;
    }
    if (!st.configured) c.violations.push('audio before config');
    st.sawAudio = true;
    if (data.length % 2 !== 0) {
      c.violations.push('odd number of PCM bytes');
      return;
    }
    const pcm = new Int16Array(data.length / 2);
    for (let i = 0; i < pcm.length; i++) pcm[i] = data.readInt16LE(i * 2);
    st.ended = null;
    st.rec.feed(pcm);
    const seconds = st.rec.pos / 8000;
    if (this.checkClosePlan(c, seconds)) return;
    if (this.isMuted(c, seconds)) return;
    if (st.ended !== null) this.send(c, this.#result(st.ended));
    else this.send(c, { partial: st.rec.partial() });
    st.ended = null;
  }

  #result(words: HeardWord[]): unknown {
    if (words.length === 0) return { text: '' };
    return {
      result: words.map((w) => ({ conf: 1.0, end: Math.round(w.end * 1e6) / 1e6, start: Math.round(w.start * 1e6) / 1e6, word: w.word })),
      text: words.map((w) => w.word).join(' '),
    };
  }
}
