/**
 * The phrase-spotting evaluation set: rule phrases users would write, each said inside carrier
 * sentences by several synthetic voices, plus non-matching speech for false alarms, all as
 * Twilio sends it (8 kHz mono G.711 mu-law, headerless).
 *
 * Only the text lists, the generator and per-voice checksums are committed; the audio (about
 * 110 min, 55 MB as mu-law) is synthesised into a cache directory on first use. flite and
 * espeak-ng are deterministic and fast (~1 min for the whole set on one core), so committing the
 * audio would add tens of MB to every clone to save a minute once per machine. The checksums
 * (PHRASE_SET_SHA256) tell when a different flite/espeak-ng/sox build makes different audio, so
 * results from two machines are known to be comparable (or not).
 *
 * Split (deterministic): phrases are sorted by word count then text and dealt alternately, so
 * both halves hold every length; the non-matching paragraphs alternate the same way.
 * Calibration (the spotting threshold constants in src/sinks/transcription/engines/phrases.ts)
 * sees only the `tuning` half; bench/phrases.bench.ts reports on the `heldout` half.
 */
import { prng } from '../../src/emulator/frame-faults.js';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type Half = 'tuning' | 'heldout';

export interface Voice {
  id: string;
  engine: 'flite' | 'espeak-ng';
  voice: string;
}

/** Four flite voices and two espeak-ng variants (US male, British female). */
export const VOICES: readonly Voice[] = [
  { id: 'flite-kal', engine: 'flite', voice: 'kal' },
  { id: 'flite-awb', engine: 'flite', voice: 'awb' },
  { id: 'flite-rms', engine: 'flite', voice: 'rms' },
  { id: 'flite-slt', engine: 'flite', voice: 'slt' },
  { id: 'espeak-us', engine: 'espeak-ng', voice: 'en-us' },
  { id: 'espeak-f3', engine: 'espeak-ng', voice: 'en+f3' },
];

/**
 * Rule phrases: ending a call, escalating, cancelling, consent, keywords. 1-6 words, every word
 * in the pocketsphinx en-us dictionary.
 */
export const PHRASES: readonly string[] = [
  // ending
  'goodbye', 'hang up', 'end the call', 'end the conference', 'thanks for calling',
  'we are done here', 'talk to you later', 'have a nice day', 'let us wrap up',
  'that is all for today', 'i have to go now', 'please end this call right now', 'this call is over',
  // escalating
  'supervisor', 'emergency', 'transfer me', 'speak to a manager', 'i want a human',
  'this is unacceptable', 'file a complaint', 'call the police', 'i need help', 'escalate this issue',
  'can i speak to your manager',
  // cancelling
  'cancel', 'unsubscribe', 'never mind', 'cancel my order', 'cancel my subscription',
  'close my account', 'stop the payment', 'i want a refund', 'i would like to cancel everything',
  'i want to close this account',
  // consent
  'i agree', 'stop recording', 'yes i accept', 'i do not consent', 'you have my permission',
  'i give my consent', 'do not record this call', 'remove me from your list',
  // keywords
  'fraud', 'lawyer', 'legal action', 'password reset', 'wrong number', 'out of service',
  'credit card number', 'i am not interested', 'put me through to billing', 'please call me back tomorrow',
];

/** Carrier sentences; `{p}` is the phrase. Each phrase is said in CARRIERS_PER_PHRASE of them. */
export const CARRIERS: readonly string[] = [
  'okay {p} thank you',
  'well i think {p} at this point',
  '{p} because it is getting late',
  'so as i said {p} and that is it',
  'listen {p} okay',
  'you know what {p} please',
  'i mean {p} for the record',
  'alright then {p}',
];
export const CARRIERS_PER_PHRASE = 3;

/**
 * Non-matching speech: sentences built from these parts (seeded, so the same every run),
 * grouped into paragraphs of PARAGRAPH_SENTENCES, each paragraph said by one voice in turn.
 * Ordinary call talk: scheduling, products, small talk, numbers.
 */
const OPENERS = [
  'i was wondering', 'yesterday afternoon', 'as far as i know', 'on the other hand', 'by the way',
  'to be honest', 'last week', 'in the morning', 'every other month', 'for the most part', 'apparently',
  'from what i heard', 'at the moment', 'just so you know', 'if i remember correctly',
];
const SUBJECTS = [
  'my sister', 'the new driver', 'our neighbour', 'the delivery team', 'the printer upstairs',
  'the weather report', 'a friend of mine', 'the kitchen staff', 'the garden center', 'the bus company',
  'my old laptop', 'the school', 'the library', 'the marketing group', 'the hotel near the station',
];
const PREDICATES = [
  'moved the meeting to thursday', 'ordered twelve boxes of paper', 'painted the fence green',
  'sent the photos by email', 'opened a second shop downtown', 'fixed the heating last night',
  'booked a table for seven people', 'changed the opening hours', 'planted tomatoes along the wall',
  'lost the keys to the van', 'found a cheaper supplier', 'bought a bigger television',
  'started a cooking class', 'visited the museum twice', 'delivered the parcel to the wrong street',
  'repaired the roof after the storm', 'counted the chairs in the hall', 'shipped the samples on monday',
  'raised the price of coffee', 'cleaned the windows on the third floor',
];
const TAILS = [
  'and nobody noticed', 'which surprised everyone', 'before lunch', 'after the holidays',
  'without asking anyone', 'for the second time this year', 'as usual', 'according to the newsletter',
  'in the middle of the night', 'with a little help', 'just in time', 'near the river',
  'as far as the budget allows', 'and the customers liked it', 'even though it rained',
];
const PARAGRAPH_SENTENCES = 4;
/** Paragraphs of non-matching speech: ~13 s each, 300 → ~65 min (both halves ≥ 30 min). */
const NONMATCH_PARAGRAPHS = 300;

export interface PhraseCase {
  /** File name (without directory) of the clip in the cache. */
  file: string;
  phrase: string;
  carrier: number;
  voice: string;
  text: string;
  half: Half;
}

export interface NonMatchClip {
  file: string;
  voice: string;
  text: string;
  half: Half;
}

export interface PhraseSet {
  phrases: { phrase: string; words: number; half: Half }[];
  cases: PhraseCase[];
  nonMatch: NonMatchClip[];
}

function wordCount(p: string): number {
  return p.split(' ').length;
}

function slug(s: string): string {
  return s.replace(/[^a-z]+/g, '-');
}

/** True when `text` contains `phrase` as whole words. */
export function containsPhrase(text: string, phrase: string): boolean {
  return ` ${text} `.includes(` ${phrase} `);
}

/** The whole set, texts and split (no audio). */
export function phraseSet(): PhraseSet {
  const ordered = [...PHRASES].sort((a, b) => wordCount(a) - wordCount(b) || (a < b ? -1 : 1));
  const half = new Map<string, Half>();
  ordered.forEach((p, i) => half.set(p, i % 2 === 0 ? 'tuning' : 'heldout'));
  const phrases = PHRASES.map((phrase) => ({ phrase, words: wordCount(phrase), half: half.get(phrase)! }));

  const cases: PhraseCase[] = [];
  PHRASES.forEach((phrase, i) => {
    for (let c = 0; c < CARRIERS_PER_PHRASE; c++) {
      const carrier = (i + c * 3) % CARRIERS.length;
      const text = CARRIERS[carrier]!.replace('{p}', phrase);
      for (const v of VOICES) {
        cases.push({ file: `p-${slug(phrase)}-c${carrier}-${v.id}.ulaw`, phrase, carrier, voice: v.id, text, half: half.get(phrase)! });
      }
    }
  });

  const rand = prng(15); // seeded: the non-matching text is the same on every run
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const nonMatch: NonMatchClip[] = [];
  for (let n = 0; n < NONMATCH_PARAGRAPHS; n++) {
    const sentences: string[] = [];
    while (sentences.length < PARAGRAPH_SENTENCES) {
      const s = `${pick(OPENERS)} ${pick(SUBJECTS)} ${pick(PREDICATES)} ${pick(TAILS)}`;
      if (!PHRASES.some((p) => containsPhrase(s, p))) sentences.push(s);
    }
    const voice = VOICES[n % VOICES.length]!.id;
    // Alternating by pairs so each half gets every voice.
    const h: Half = Math.floor(n / VOICES.length) % 2 === 0 ? 'tuning' : 'heldout';
    nonMatch.push({ file: `n-${String(n).padStart(3, '0')}-${voice}.ulaw`, voice, text: sentences.join(' . '), half: h });
  }
  return { phrases, cases, nonMatch };
}

/** Default cache directory: bench/out/phrase-set (git-ignored). */
export function defaultCacheDir(): string {
  return fileURLToPath(new URL('../out/phrase-set/', import.meta.url));
}

async function synthesise(voice: Voice, text: string, outFile: string, tmpDir: string): Promise<void> {
  const wav = join(tmpDir, `${process.pid}-${Math.random().toString(36).slice(2)}.wav`);
  try {
    if (voice.engine === 'flite') await run('flite', ['-voice', voice.voice, '-t', text, '-o', wav]);
    else await run('espeak-ng', ['-v', voice.voice, '-w', wav, text]);
    // As scripts/make-speech-fixtures.sh: -D (no dither) keeps the bytes the same every run.
    const partial = `${outFile}.partial`;
    await run('sox', ['-D', wav, '-r', '8000', '-c', '1', '-e', 'mu-law', '-t', 'raw', partial]);
    renameSync(partial, outFile);
  } finally {
    rmSync(wav, { force: true });
  }
}

export interface EnsureOptions {
  dir?: string;
  /** Synthesiser processes at once; default 2. */
  parallel?: number;
  /** Only these clips (file names); default all. */
  only?: ReadonlySet<string>;
}

/** Synthesises the clips missing from the cache directory; returns the directory. */
export async function ensurePhraseSet(set: PhraseSet, opts: EnsureOptions = {}): Promise<string> {
  const dir = opts.dir ?? defaultCacheDir();
  mkdirSync(dir, { recursive: true });
  const voices = new Map(VOICES.map((v) => [v.id, v]));
  const jobs: { voice: Voice; text: string; file: string }[] = [];
  for (const c of [...set.cases, ...set.nonMatch]) {
    if (opts.only !== undefined && !opts.only.has(c.file)) continue;
    if (!existsSync(join(dir, c.file))) jobs.push({ voice: voices.get(c.voice)!, text: c.text, file: join(dir, c.file) });
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      await synthesise(job.voice, job.text, job.file, dir);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.parallel ?? 2) }, worker));
  return dir;
}

/** sha256 over every clip of each voice (cases, then non-matching, in set order). */
export function voiceChecksums(set: PhraseSet, dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of VOICES) {
    const h = createHash('sha256');
    for (const c of [...set.cases, ...set.nonMatch]) if (c.voice === v.id) h.update(readFileSync(join(dir, c.file)));
    out[v.id] = h.digest('hex');
  }
  return out;
}

/** The committed checksums (bench/phrase-set.sha256.json), or {} before the first generation. */
export function committedChecksums(): Record<string, string> {
  const path = fileURLToPath(new URL('../phrase-set.sha256.json', import.meta.url));
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>) : {};
}

export function writeChecksums(sums: Record<string, string>): void {
  const path = fileURLToPath(new URL('../phrase-set.sha256.json', import.meta.url));
  writeFileSync(path, JSON.stringify(sums, null, 2) + '\n');
}
