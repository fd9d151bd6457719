/**
 * The shipped speech clips (`test/fixtures/speech/`, made by scripts/make-speech-fixtures.sh):
 * 8 kHz mu-law sentences with their text and, for flite clips, synthesiser word times. The demo
 * streams them as conference audio; tests and benches measure the recogniser on them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MULAW_TO_PCM } from '../../twilio/mulaw.js';

export interface SpeechClip {
  file: string;
  /** primer | wer | phrase | other | near-miss | demo */
  kind: string;
  engine: 'flite' | 'espeak-ng';
  voice: string;
  text: string;
  durationMs: number;
  /** Word positions from the synthesiser (flite only), ms from the clip start. */
  words?: { word: string; startMs: number; endMs: number }[];
}

const RELATIVE_DIR = 'test/fixtures/speech';

/** The fixture directory, found by walking up from this module (src/ or dist/src/). */
export function speechFixtureDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, RELATIVE_DIR);
    if (existsSync(join(candidate, 'index.json'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`speech fixtures not found (${RELATIVE_DIR}/index.json above ${fileURLToPath(import.meta.url)})`);
}

/** All clips listed in index.json. */
export function listSpeechClips(): SpeechClip[] {
  const index = JSON.parse(readFileSync(join(speechFixtureDir(), 'index.json'), 'utf8')) as { clips: SpeechClip[] };
  return index.clips;
}

/** One clip by file name (`wer-1.ulaw`) or name (`wer-1`). */
export function speechClip(name: string): SpeechClip {
  const file = name.endsWith('.ulaw') ? name : `${name}.ulaw`;
  const clip = listSpeechClips().find((c) => c.file === file);
  if (clip === undefined) throw new Error(`no speech fixture ${file}`);
  return clip;
}

/** The clip's raw mu-law bytes, as Twilio would send them. */
export function readClipMulaw(clip: SpeechClip): Uint8Array {
  return readFileSync(join(speechFixtureDir(), clip.file));
}

/** The clip decoded to 8 kHz linear PCM. */
export function readClipPcm(clip: SpeechClip): Int16Array {
  const mulaw = readClipMulaw(clip);
  const pcm = new Int16Array(mulaw.length);
  for (let i = 0; i < mulaw.length; i++) pcm[i] = MULAW_TO_PCM[mulaw[i]!]!;
  return pcm;
}
