/**
 * Parses what `pocketsphinx_continuous -time yes` prints on stdout, line by line.
 *
 * After each utterance (the voice-activity detector saw enough trailing silence, or input
 * ended) it prints the hypothesis, then one line per segment with start and end in seconds
 * of the input stream and a posterior (`%s %.3f %.3f %f`), then flushes:
 *
 *   please call me back                       ← hypothesis (may be empty)
 *   <s> 1.720 1.780 0.999600                  ← fillers: <s> </s> <sil> [NOISE] ++GARBAGE++
 *   please 1.790 2.060 0.999600
 *   back(2) 2.520 2.790 0.799854             ← (n): alternate pronunciation
 *   </s> 5.300 5.360 1.000000                 ← utterance complete
 *
 * In keyword-spotting mode (`-kws`) the hypothesis is the spotted phrases, and each detection
 * line carries a whole phrase with a trailing space: `end the conference  3.760 4.890 1.045`.
 * There is no `</s>` then; a detection is complete on its own line.
 */

/** One recognised segment, in seconds of the recogniser's input stream. */
export interface RawWord {
  word: string;
  start: number;
  end: number;
  /** Posterior, clamped to 0..1 (pocketsphinx can print slightly above 1). */
  confidence: number;
  /** Keyword spotting: log10 of the largest threshold the detection passes (spotScoreLog10). */
  score?: number;
}

const KWS_MAX = 1500;
const LOG10_PER_UNIT = 1024 * Math.log10(1.0001);

/**
 * The largest log10 spotting threshold a detection printed with posterior `printed` survives.
 * pocketsphinx 0.8 prints, for a detection, logmath_exp(prob - KWS_MAX) with prob the
 * keyphrase-vs-phone-loop score in its shifted log units (KWS_MAX = 1500, shift 10 bits, log
 * base 1.0001); the detection passes a threshold T when that score ≥ log(T). Checked by
 * bisection on the threshold: "end the conference" printed 1.163831 → 134.06 is spotted at
 * 1e134 but not 1e135; "goodbye" 0.858973 → -0.90 at 1e-1, not 1e0 (test/bench/phrase-set.test.ts).
 */
export function spotScoreLog10(printed: number): number {
  return (Math.log(printed) / Math.log(1.0001) + KWS_MAX) * LOG10_PER_UNIT;
}

const SEGMENT_LINE = /^(.*\S)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?[\d.]+(?:e[-+]?\d+)?)$/;
const ALT_PRONUNCIATION = /\(\d+\)$/;

/** True for `<s>`, `</s>`, `<sil>`, `[NOISE]`, `++BREATH++` and the like. */
function isFiller(word: string): boolean {
  const c = word.charCodeAt(0);
  return c === 60 /* < */ || c === 91 /* [ */ || c === 43 /* + */;
}

/**
 * Incremental parser: feed stdout text with `push`, receive utterances through the callback.
 * `mode: 'lm'` groups segment lines into utterances; `mode: 'kws'` reports each detection line
 * as an utterance of one "word" (the phrase).
 */
export class ContinuousOutputParser {
  readonly #mode: 'lm' | 'kws';
  readonly #onUtterance: (words: RawWord[]) => void;
  #partialLine = '';
  /** Words of the utterance being read; null between utterances. */
  #pending: RawWord[] | null = null;

  constructor(mode: 'lm' | 'kws', onUtterance: (words: RawWord[]) => void) {
    this.#mode = mode;
    this.#onUtterance = onUtterance;
  }

  /** True when an utterance has started but its end (`</s>`) has not been seen yet. */
  get hasPending(): boolean {
    return this.#pending !== null;
  }

  /** Consumes a chunk of stdout (any split, lines may span chunks). */
  push(chunk: string): void {
    let text = this.#partialLine + chunk;
    let nl = text.indexOf('\n');
    while (nl !== -1) {
      this.#line(text.slice(0, nl));
      text = text.slice(nl + 1);
      nl = text.indexOf('\n');
    }
    this.#partialLine = text;
  }

  /** Reports an utterance still open (input ended, or the recogniser died mid-output). */
  flush(): void {
    if (this.#partialLine !== '') {
      const last = this.#partialLine;
      this.#partialLine = '';
      this.#line(last);
    }
    this.#finish();
  }

  #line(line: string): void {
    const m = SEGMENT_LINE.exec(line);
    if (m === null) {
      // A hypothesis line opens the next utterance (closing one left without `</s>`).
      this.#finish();
      if (this.#mode === 'lm') this.#pending = [];
      return;
    }
    const word = m[1]!.trim();
    const seg: RawWord = {
      word: word.replace(ALT_PRONUNCIATION, ''),
      start: Number(m[2]),
      end: Number(m[3]),
      confidence: Math.min(1, Math.max(0, Number(m[4]))),
    };
    if (this.#mode === 'kws') {
      seg.score = spotScoreLog10(Number(m[4]));
      this.#onUtterance([seg]);
      return;
    }
    if (word === '</s>') {
      this.#finish();
      return;
    }
    if (isFiller(word)) return;
    (this.#pending ??= []).push(seg);
  }

  #finish(): void {
    const words = this.#pending;
    this.#pending = null;
    if (words !== null && words.length > 0) this.#onUtterance(words);
  }
}
