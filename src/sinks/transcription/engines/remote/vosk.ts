/**
 * The Vosk server WebSocket protocol (alphacep/vosk-server, websocket/asr_server.py):
 *
 * - Client → server: a text `{"config": {"sample_rate": 8000, "words": 1}}` first, then binary
 *   16-bit little-endian PCM, then the text `{"eof" : 1}` (the server compares that exact
 *   string, spaces included).
 * - Server → client: exactly one reply per audio message: `{"partial": "…"}` while an
 *   utterance goes on, `{"result": [{"word", "start", "end", "conf"}], "text": "…"}` when it
 *   ends (seconds from the start of the connection's audio; `{"text": ""}` for silence). The
 *   reply to eof is the final result; then the server closes.
 *
 * A result settles the audio up to its last word; an empty partial or result settles all the
 * audio it answers (nothing pending in the recogniser).
 */
import { MULAW_TO_PCM } from '../../../../twilio/mulaw.js';
import { jsonObject, MAX_TEXT_CHARS, wireWords, type ParsedMessage, type RemoteProtocol } from './protocol.js';

export const VOSK_DEFAULT_URL = 'ws://localhost:2700';
export const VOSK_EOF = '{"eof" : 1}';

export function voskProtocol(opts: { url?: string }): RemoteProtocol {
  return {
    engine: 'vosk',
    url: opts.url ?? VOSK_DEFAULT_URL,
    headers: {},
    opening: [JSON.stringify({ config: { sample_rate: 8000, words: 1 } })],
    bytesPerSample: 2,
    encode: (src, n) => {
      const out = Buffer.allocUnsafe(n * 2);
      for (let i = 0; i < n; i++) out.writeInt16LE(MULAW_TO_PCM[src[i]!]!, i * 2);
      return out;
    },
    closeMessage: VOSK_EOF,
    keepAliveMessage: null,
    repliesPerMessage: true,
    parse: parseVosk,
  };
}

export function parseVosk(message: string, maxSec: number): ParsedMessage {
  const o = jsonObject(message);
  if (typeof o === 'string') return { kind: 'malformed', reason: o };
  if ('partial' in o) {
    if (typeof o.partial !== 'string' || o.partial.length > MAX_TEXT_CHARS) return { kind: 'malformed', reason: 'bad partial' };
    const text = o.partial.trim();
    return { kind: 'result', isFinal: false, text, words: [], settledSec: text === '' ? 'answered' : null };
  }
  if (typeof o.text !== 'string' || o.text.length > MAX_TEXT_CHARS) return { kind: 'malformed', reason: 'neither partial nor text' };
  const words = wireWords(o.result, maxSec, 'conf');
  if (typeof words === 'string') return { kind: 'malformed', reason: words };
  const text = o.text.trim();
  return { kind: 'result', isFinal: true, text, words, settledSec: words.length > 0 ? words[words.length - 1]!.endSec : 'answered' };
}
