/**
 * The warm-up clip the language-model recogniser decodes before the stream's audio, and a
 * restarted spotter before the replayed audio.
 *
 * pocketsphinx's cepstral mean normalisation takes the mean of the first utterance it decodes,
 * however short (pocketsphinx-process.ts `primer`). Feeding a short known clip first, then enough
 * silence to close that utterance, gives a restarted recogniser a whole utterance's mean before
 * the replay, which may begin with a fragment of speech; the primer's own result is discarded by
 * its position. A fresh spotter starts from spotter-args.ts TELEPHONE_CMN_INIT instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MULAW_TO_PCM } from '../../../twilio/mulaw.js';
import { Upsampler8kTo16k } from '../../dsp/resample.js';

/** Where the clip lives relative to the package root (shipped: package.json `files`). */
export const PRIMER_RELATIVE_PATH = 'test/fixtures/speech/primer.ulaw';
/** Silence after the clip: longer than `-vad_postspeech` (0.3 s) so its utterance closes. */
const TRAILING_SILENCE_MS = 600;

/** Finds the primer clip by walking up from this module (works from src/ and dist/src/). */
export function findPrimerPath(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, PRIMER_RELATIVE_PATH);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return null;
}

/**
 * Loads an 8 kHz mu-law clip as 16 kHz PCM followed by trailing silence, upsampled the same
 * way as stream audio so the recogniser adapts to what it will hear.
 */
export function loadPrimer(path: string): Int16Array {
  const mulaw = readFileSync(path);
  const pcm8k = new Int16Array(mulaw.length);
  for (let i = 0; i < mulaw.length; i++) pcm8k[i] = MULAW_TO_PCM[mulaw[i]!]!;
  const out = new Int16Array(2 * mulaw.length + TRAILING_SILENCE_MS * 16);
  new Upsampler8kTo16k().process(pcm8k, pcm8k.length, out);
  return out;
}
