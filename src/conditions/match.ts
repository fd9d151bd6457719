/**
 * Text matching for phrase rules: case-, punctuation- and spacing-insensitive, on word
 * boundaries ("end the call" matches "OK, end the call!" but not "end the caller").
 *
 * Both the rule's phrase and the transcript go through {@link normalizeText}: lower case, NFKC,
 * apostrophes dropped (so "don't" and "dont" are the same word), every other run of characters
 * that are neither letters nor digits turned into one space, and one space added at each end.
 * A phrase then matches when the padded text contains the padded phrase.
 */

const APOSTROPHES = /['\u2019\u02bc`]/gu;
const NON_WORD = /[^\p{L}\p{N}]+/gu;

/** The normalised, space-padded form of `text`; `''` when it has no letter or digit. */
export function normalizeText(text: string): string {
  const s = text.normalize('NFKC').toLowerCase().replace(APOSTROPHES, '').replace(NON_WORD, ' ').trim();
  return s === '' ? '' : ` ${s} `;
}

/**
 * The first of `phrases` (each already normalised) found in `normalizedText`, or null.
 * Returns the phrase's index so the caller can quote the rule's own spelling.
 */
export function findPhrase(normalizedText: string, phrases: readonly string[]): number {
  if (normalizedText === '') return -1;
  for (let i = 0; i < phrases.length; i++) {
    if (normalizedText.includes(phrases[i]!)) return i;
  }
  return -1;
}
