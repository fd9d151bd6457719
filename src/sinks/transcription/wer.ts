/**
 * Word error rate, the usual measure of a recogniser: (substitutions + deletions + insertions)
 * / reference words, from a Levenshtein alignment over words.
 */

/** Lower case, words only: the form both sides are compared in. */
export function normalizeWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z' ]+/g, ' ')
    .split(' ')
    .filter((w) => w !== '');
}

export interface WerResult {
  /** Edit operations needed to turn the reference into the hypothesis. */
  errors: number;
  /** Words in the reference. */
  words: number;
  /** errors / words (0 for two empty texts). */
  wer: number;
}

/** Word error rate of `hypothesis` against `reference`. */
export function wordErrorRate(reference: string, hypothesis: string): WerResult {
  const ref = normalizeWords(reference);
  const hyp = normalizeWords(hypothesis);
  let prev = new Array<number>(hyp.length + 1);
  let cur = new Array<number>(hyp.length + 1);
  for (let j = 0; j <= hyp.length; j++) prev[j] = j;
  for (let i = 1; i <= ref.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= hyp.length; j++) {
      const sub = prev[j - 1]! + (ref[i - 1] === hyp[j - 1] ? 0 : 1);
      cur[j] = Math.min(sub, prev[j]! + 1, cur[j - 1]! + 1);
    }
    [prev, cur] = [cur, prev];
  }
  const errors = prev[hyp.length]!;
  return { errors, words: ref.length, wer: ref.length === 0 ? (hyp.length === 0 ? 0 : 1) : errors / ref.length };
}
