/**
 * Rule phrases as a recogniser can use them: normalised to its vocabulary's spelling, checked
 * against its pronunciation dictionary, and found in word sequences.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { SpotRule } from './phrase-verifier.js';

/** Lower case, letters and apostrophes only, single spaces: "End the Conference!" → "end the conference". */
export function normalizePhrase(phrase: string): string {
  return phrase
    .toLowerCase()
    .replace(/[^a-z' ]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const dictionaries = new Map<string, Map<string, number>>();

/**
 * The words of a pocketsphinx dictionary (`word PH ONES` lines) with the phone count of their
 * first pronunciation (`word(2)` alternates are skipped). Read once per path and kept: the
 * en-us dictionary is 3.5 MB and the check runs per open.
 */
function dictionaryPhones(path: string): Map<string, number> | null {
  let words = dictionaries.get(path);
  if (words !== undefined) return words;
  if (!existsSync(path)) return null;
  words = new Map<string, number>();
  const text = readFileSync(path, 'utf8');
  let lineStart = 0;
  while (lineStart < text.length) {
    let end = text.indexOf('\n', lineStart);
    if (end === -1) end = text.length;
    const space = text.indexOf(' ', lineStart);
    if (space !== -1 && space < end) {
      const word = text.slice(lineStart, space);
      if (!word.includes('(') && !words.has(word)) words.set(word, countPhones(text, space, end));
    }
    lineStart = end + 1;
  }
  dictionaries.set(path, words);
  return words;
}

/** Space-separated tokens of `text` between `from` and `to` (a pronunciation's phones). */
function countPhones(text: string, from: number, to: number): number {
  let n = 0;
  let inToken = false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || c === 9 || c === 13;
    if (!space && !inToken) n++;
    inToken = !space;
  }
  return n;
}

export interface UsablePhrase {
  phrase: string;
  /** Phones of the phrase (first pronunciation of each word); NaN without a dictionary. */
  phones: number;
}

export interface PhraseCheck {
  /** Normalised phrases every word of which the recogniser can say. */
  usable: UsablePhrase[];
  /** Phrases left out, with the words the dictionary lacks. */
  rejected: { phrase: string; missing: string[] }[];
}

/**
 * Normalises `phrases`, removes duplicates and empties, and sets aside those with words
 * missing from the dictionary at `dictPath` (pocketsphinx refuses to start with them). With no
 * dictionary at that path every phrase is taken as usable.
 */
export function checkPhrases(phrases: readonly string[], dictPath: string): PhraseCheck {
  const dict = dictionaryPhones(dictPath);
  const usable: UsablePhrase[] = [];
  const rejected: PhraseCheck['rejected'] = [];
  for (const raw of phrases) {
    const phrase = normalizePhrase(raw);
    if (phrase === '' || usable.some((u) => u.phrase === phrase)) continue;
    const words = phrase.split(' ');
    const missing = dict === null ? [] : words.filter((w) => !dict.has(w));
    if (missing.length > 0) rejected.push({ phrase, missing });
    else usable.push({ phrase, phones: dict === null ? Number.NaN : words.reduce((n, w) => n + dict.get(w)!, 0) });
  }
  return { usable, rejected };
}

/**
 * Spotting thresholds for a phrase of `phones` phones, as log10 (see phrase-verifier.ts for how
 * a spot is judged): `confirmed` (the spotter's own threshold; on a transcribed track checked
 * against the transcript) = KWS_LOG10_PER_PHONE * phones + KWS_CONFIRM_LOG10_OFFSET, `alone`
 * (no transcript) the same with KWS_LOG10_OFFSET, `trusted` (a transcribed track's spot that
 * stands whatever the transcript says) KWS_TRUSTED_LOG10 above `confirmed`, and a shortest
 * plausible hit of MIN_SPOT_MS_PER_PHONE per phone.
 *
 * Why the phone count: the spotter fires when the phrase's path beats the free phone loop by
 * the threshold. Near misses in ordinary speech score high for short phrases (a 4-6 phone word
 * matches something every few minutes) and low for long ones, while true matches score about
 * the same whatever the length; so short phrases need a higher threshold and long ones a lower
 * one (pocketsphinx's own advice). Why a shortest hit: false spots squeeze the phrase into too
 * little audio (median 60 ms per phone in the evaluation's non-matching speech, true spots 84).
 *
 * Values (bench/phrases.bench.ts, bench/RESULTS.md), from the tuning half for a budget of 1
 * false alarm per hour of non-matching speech per phrase: slope and offset the most detections
 * without a transcript within the budget (the transcript check removes few false alarms there:
 * alone and confirmed are the same). `trusted` 35 above: a trusted spot is decided at once, the
 * others wait for the transcript (latency), where the language model, wrong on 20-90 % of the
 * synthetic voices' words, also vetoes true spots. On the tuning half trusted spots alone raise no
 * false alarm down to 15 (10: 0.11 / h / phrase) and decide 47 % of the cases at 35 (44 % at 40,
 * 60 % at 15); the level is not lower because test/fixtures/speech's near miss "send the
 * contract" scores 31 above "end the conference"'s floor after other speech (54 against 23) and
 * only the transcript rejects it (the set's non-matching paragraphs hold no such near miss).
 * 50 ms per phone is 20 phones a second, faster than fast
 * conversational speech (60 removes twice as many false spots on the synthetic set but comes
 * close to fast human speech, which this set cannot show).
 */
export const KWS_LOG10_PER_PHONE = -3;
export const KWS_LOG10_OFFSET = 62;
export const KWS_CONFIRM_LOG10_OFFSET = 62;
export const KWS_TRUSTED_LOG10 = 35;
export const MIN_SPOT_MS_PER_PHONE = 50;
/** Without a dictionary (phone count unknown): pocketsphinx's usual 1e-5 guess. */
const UNKNOWN_PHONES_LOG10 = -5;

/**
 * How spots of a phrase of `phones` phones are judged. `threshold` (a rule's own, linear) is
 * the spotter's floor (`confirmed`); `alone` keeps its default distance above it. `trusted`
 * does not follow a lower floor down: a rule that spots more still has its weaker spots checked
 * against the transcript.
 */
export function spotRule(phones: number, threshold?: number): SpotRule {
  const known = Number.isFinite(phones);
  const byPhones = known ? KWS_LOG10_PER_PHONE * phones + KWS_CONFIRM_LOG10_OFFSET : UNKNOWN_PHONES_LOG10;
  const confirmed = threshold !== undefined ? Math.log10(threshold) : byPhones;
  return {
    confirmed,
    alone: confirmed + KWS_LOG10_OFFSET - KWS_CONFIRM_LOG10_OFFSET,
    trusted: Math.max(byPhones, confirmed) + KWS_TRUSTED_LOG10,
    minMs: known ? MIN_SPOT_MS_PER_PHONE * phones : 0,
  };
}

/** The spotter's own (-kws) threshold for a phrase: the lowest a spot may be and still count. */
export function defaultKwsThreshold(phones: number): number {
  return 10 ** spotRule(phones).confirmed;
}

/** Contents of a `-kws` file: one `phrase /threshold/` line per phrase. */
export function kwsFileContent(phrases: readonly { phrase: string; threshold: number }[]): string {
  let out = '';
  for (const p of phrases) out += `${p.phrase} /${p.threshold.toExponential()}/\n`;
  return out;
}

/**
 * Where `phrase` (normalised) occurs as consecutive words of `words`; returns the index of each
 * occurrence's first word.
 */
export function findPhrase(words: readonly { word: string }[], phrase: string): number[] {
  const parts = phrase.split(' ');
  const found: number[] = [];
  for (let i = 0; i + parts.length <= words.length; i++) {
    let j = 0;
    while (j < parts.length && words[i + j]!.word === parts[j]) j++;
    if (j === parts.length) found.push(i);
  }
  return found;
}
