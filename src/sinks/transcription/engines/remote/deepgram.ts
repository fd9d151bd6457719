/**
 * Deepgram's live streaming API (`wss://api.deepgram.com/v1/listen`), as its API reference and
 * AsyncAPI spec describe it:
 *
 * - Handshake: `Authorization: Token <DEEPGRAM_API_KEY>`; options as query parameters. We send
 *   Twilio's bytes untouched: `encoding=mulaw&sample_rate=8000&channels=1`, and ask for
 *   `interim_results=true` (partials). 401/403 = bad key, 400 = bad parameters.
 * - Client → server: binary audio; text `{"type":"KeepAlive"}` (no audio for a while: the
 *   service closes an idle stream after 10 s with 1011 NET-0001), `{"type":"CloseStream"}` (the
 *   service finishes the audio it has, sends the last results and a Metadata summary, closes).
 * - Server → client: `Results` {channel_index, start, duration, is_final, speech_final,
 *   from_finalize, channel.alternatives[0].{transcript, confidence, words[{word, start, end,
 *   confidence, punctuated_word}]}}; `Metadata`; `SpeechStarted`; `UtteranceEnd`. Times are
 *   seconds from the start of the audio sent on the connection. An `is_final` result settles
 *   the audio up to start + duration: it will not be reported again.
 * - Errors arrive as a close frame: 1011 NET-0000/NET-0001 (timeouts), 1008/1002 DATA-0000
 *   (undecodable audio).
 */
import { jsonObject, MAX_TEXT_CHARS, seconds, wireWords, type ParsedMessage, type RemoteProtocol } from './protocol.js';

export const DEEPGRAM_DEFAULT_URL = 'wss://api.deepgram.com/v1/listen';

/** Query parameters the gateway sets itself: the audio is Twilio's, as it came. */
export const DEEPGRAM_FIXED_PARAMS: Readonly<Record<string, string>> = {
  encoding: 'mulaw',
  sample_rate: '8000',
  channels: '1',
  interim_results: 'true',
};

export interface DeepgramOptions {
  apiKey: string;
  /** Default DEEPGRAM_DEFAULT_URL. */
  url?: string;
  /** Extra query parameters (DEEPGRAM_PARAMS: model, language, smart_format…). */
  params?: URLSearchParams;
}

/** The listen URL: DEEPGRAM_URL with DEEPGRAM_PARAMS, then the fixed audio parameters. */
export function deepgramUrl(base: string, params: URLSearchParams = new URLSearchParams()): string {
  const url = new URL(base);
  for (const [k, v] of params) url.searchParams.append(k, v);
  for (const [k, v] of Object.entries(DEEPGRAM_FIXED_PARAMS)) url.searchParams.set(k, v);
  return url.toString();
}

export function deepgramProtocol(opts: DeepgramOptions): RemoteProtocol {
  return {
    engine: 'deepgram',
    url: deepgramUrl(opts.url ?? DEEPGRAM_DEFAULT_URL, opts.params),
    headers: { Authorization: `Token ${opts.apiKey}` },
    opening: [],
    bytesPerSample: 1,
    encode: (src, n) => Buffer.from(src.subarray(0, n)),
    closeMessage: JSON.stringify({ type: 'CloseStream' }),
    keepAliveMessage: JSON.stringify({ type: 'KeepAlive' }),
    repliesPerMessage: false,
    parse: parseDeepgram,
  };
}

export function parseDeepgram(text: string, maxSec: number): ParsedMessage {
  const o = jsonObject(text);
  if (typeof o === 'string') return { kind: 'malformed', reason: o };
  const type = o.type;
  if (type === 'Metadata' || type === 'SpeechStarted' || type === 'UtteranceEnd') return { kind: 'info', type };
  if (type !== 'Results') return { kind: 'malformed', reason: `unknown type ${JSON.stringify(String(type).slice(0, 40))}` };
  const start = seconds(o.start, maxSec);
  const duration = seconds(o.duration, maxSec);
  if (Number.isNaN(start) || Number.isNaN(duration) || start + duration > maxSec) return { kind: 'malformed', reason: 'Results start/duration out of bounds' };
  const channel = o.channel as { alternatives?: unknown } | undefined;
  const alts = channel?.alternatives;
  if (!Array.isArray(alts)) return { kind: 'malformed', reason: 'Results without channel.alternatives' };
  const alt = (alts[0] ?? { transcript: '', words: [] }) as Record<string, unknown>;
  const transcript = alt.transcript;
  if (typeof transcript !== 'string' || transcript.length > MAX_TEXT_CHARS) return { kind: 'malformed', reason: 'bad transcript' };
  const words = wireWords(alt.words, maxSec, 'confidence');
  if (typeof words === 'string') return { kind: 'malformed', reason: words };
  const isFinal = o.is_final === true;
  return { kind: 'result', isFinal, text: transcript.trim(), words, settledSec: isFinal ? start + duration : null };
}
