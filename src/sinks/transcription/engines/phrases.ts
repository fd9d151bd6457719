/**
 * Rule phrases as a recogniser can use them: normalised to its vocabulary's spelling, checked
 * against its pronunciation dictionary, and found in word sequences.
 */
import { existsSync, readFileSync } from 'node:fs';

/** Lower case, letters and apostrophes only, single spaces: "End the Conference!" → "end the conference". */
export function normalizePhrase(phrase: string): string {
  return phrase
    .toLowerCase()
    .replace(/[^a-z' ]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const dictionaries = new Map<string, Set<string>>();

/**
 * The words of a pocketsphinx dictionary (`word PH ONES` lines; `word(2)` alternates folded).
 * Read once per path and kept: the en-us dictionary is 3.5 MB and the check runs per open.
 */
function dictionaryWords(path: string): Set<string> | null {
  let words = dictionaries.get(path);
  if (words !== undefined) return words;
  if (!existsSync(path)) return null;
  words = new Set<string>();
  const text = readFileSync(path, 'utf8');
  let lineStart = 0;
  while (lineStart < text.length) {
    let end = text.indexOf('\n', lineStart);
    if (end === -1) end = text.length;
    const space = text.indexOf(' ', lineStart);
    if (space !== -1 && space < end) {
      let word = text.slice(lineStart, space);
      const paren = word.indexOf('(');
      if (paren > 0) word = word.slice(0, paren);
      words.add(word);
    }
    lineStart = end + 1;
  }
  dictionaries.set(path, words);
  return words;
}

export interface PhraseCheck {
  /** Normalised phrases every word of which the recogniser can say. */
  usable: string[];
  /** Phrases left out, with the words the dictionary lacks. */
  rejected: { phrase: string; missing: string[] }[];
}

/**
 * Normalises `phrases`, removes duplicates and empties, and sets aside those with words
 * missing from the dictionary at `dictPath` (pocketsphinx refuses to start with them). With no
 * dictionary at that path every phrase is taken as usable.
 */
export function checkPhrases(phrases: readonly string[], dictPath: string): PhraseCheck {
  const dict = dictionaryWords(dictPath);
  const usable: string[] = [];
  const rejected: PhraseCheck['rejected'] = [];
  for (const raw of phrases) {
    const phrase = normalizePhrase(raw);
    if (phrase === '' || usable.includes(phrase)) continue;
    const missing = dict === null ? [] : phrase.split(' ').filter((w) => !dict.has(w));
    if (missing.length > 0) rejected.push({ phrase, missing });
    else usable.push(phrase);
  }
  return { usable, rejected };
}

/** Contents of a `-kws` file: one `phrase /threshold/` line per phrase. */
export function kwsFileContent(phrases: readonly string[], threshold: number): string {
  let out = '';
  for (const p of phrases) out += `${p} /${threshold.toExponential()}/\n`;
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
