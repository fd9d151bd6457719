import { describe, expect, it, vi } from 'vitest';
import { acceptSpot, contradictingWord, judgeSpot, PhraseVerifier, TRANSCRIPT_WAIT_MS } from '../../../src/sinks/transcription/engines/phrase-verifier.js';
import { checkPhrases, findPhrase, KWS_CONFIRM_LOG10_OFFSET, KWS_LOG10_OFFSET, KWS_LOG10_PER_PHONE, KWS_TRUSTED_LOG10, kwsFileContent, MIN_SPOT_MS_PER_PHONE, normalizePhrase, spotRule } from '../../../src/sinks/transcription/engines/phrases.js';
import { DEFAULT_MODEL_DIR } from '../../../src/sinks/transcription/engines/pocketsphinx.js';
import { wordErrorRate } from '../../../src/sinks/transcription/wer.js';

const DICT = `${DEFAULT_MODEL_DIR}/cmudict-en-us.dict`;
const w = (word: string, startMs: number, endMs: number, confidence = 0.5) => ({ word, startMs, endMs, confidence });

describe('phrases', () => {
  it('normalises spelling to the recogniser vocabulary', () => {
    expect(normalizePhrase('  End the   Conference! ')).toBe('end the conference');
    expect(normalizePhrase("Let's go")).toBe("let's go");
  });

  it('sets aside phrases with words the dictionary lacks', () => {
    const { usable, rejected } = checkPhrases(['End the conference', 'end the conference', 'goodbye zzqxw', ''], DICT);
    // 3 + 2 + 8 phones (cmudict: EH N D, DH AH, K AA N F ER AH N S).
    expect(usable).toEqual([{ phrase: 'end the conference', phones: 13 }]);
    expect(rejected).toEqual([{ phrase: 'goodbye zzqxw', missing: ['zzqxw'] }]);
  });

  it('writes a keyword file with a threshold per phrase', () => {
    expect(
      kwsFileContent([
        { phrase: 'end the conference', threshold: 1e-10 },
        { phrase: 'goodbye', threshold: 1e20 },
      ]),
    ).toBe('end the conference /1e-10/\ngoodbye /1e+20/\n');
  });

  it('finds a phrase as consecutive words', () => {
    const words = ['we', 'can', 'end', 'the', 'conference', 'end', 'the'].map((x) => ({ word: x }));
    expect(findPhrase(words, 'end the conference')).toEqual([2]);
    expect(findPhrase(words, 'the end')).toEqual([]);
  });
});

describe('PhraseVerifier', () => {
  const hit = { phrase: 'end the conference', startMs: 1800, endMs: 2580, score: 10 };

  it('rejects a spot where the transcript confidently heard another word', () => {
    // From the wer-3 fixture: the spotter fired on "at the office".
    const words = [w('at', 1850, 2080, 0.55), w('the', 2090, 2220, 0.92), w('office', 2230, 2590, 0.99)];
    expect(contradictingWord(hit, words)?.word).toBe('office');
  });

  it('keeps a spot where the transcript is unsure or agrees', () => {
    expect(contradictingWord(hit, [w('add', 1800, 2200, 0.02), w('on', 2200, 2500, 0.15)])).toBeNull();
    expect(contradictingWord(hit, [w('end', 1800, 2000, 0.95), w('conference', 2100, 2580, 1)])).toBeNull();
    // A confident word mostly outside the stretch does not count.
    expect(contradictingWord(hit, [w('mouth', 2500, 3000, 1)])).toBeNull();
  });

  it('keeps a spot that starts inside a longer word: "weekend" is how the model hears "we can end"', () => {
    // The demo's Bob: "thanks alice that sounds good we can end the conference now".
    const bob = { phrase: 'end the conference', startMs: 6539, endMs: 7699 };
    const words = [w('good', 5929, 6209, 1), w('weekend', 6209, 6559, 0.67), w('and', 6559, 6899, 0.6), w('a', 6899, 6959, 0.74), w('conference', 6959, 7699, 0.99)];
    expect(contradictingWord(bob, words)).toBeNull();
  });

  /** A verifier with one rule for every phrase; what it emits and rejects (the contradicting word, or 'weak'). */
  const verifier = () => {
    const emitted: string[] = [];
    const rejected: string[] = [];
    const v = new PhraseVerifier(
      (h) => emitted.push(h.phrase),
      (_h, word) => rejected.push(word?.word ?? 'weak'),
      () => ({ alone: 20, confirmed: 0, trusted: 30, minMs: 0 }),
    );
    return { v, emitted, rejected };
  };

  it('waits for the transcript of the stretch, then decides', () => {
    const { v, emitted, rejected } = verifier();
    // A spot of middling strength: decided by the transcript.
    v.addSpotted(hit);
    v.addTranscript([w('we', 1000, 1500, 1)]);
    expect(emitted).toEqual([]);
    v.addTranscript([w('office', 2230, 2590, 0.99)]);
    expect(rejected).toEqual(['office']);
    v.addSpotted({ ...hit, startMs: 5000, endMs: 6000 });
    v.close();
    expect(emitted).toEqual(['end the conference']);
  });

  it('decides a spot ending just past the last word of an utterance when that utterance arrives', () => {
    const { v, emitted } = verifier();
    // The spotter places the end 80 ms after the transcript's last word; the utterance ended with silence.
    v.addSpotted({ phrase: 'hang up', startMs: 1000, endMs: 1580, score: 10 });
    v.addTranscript([w('hang', 1000, 1250, 0.6), w('up', 1250, 1500, 0.5)]);
    expect(emitted).toEqual(['hang up']);
    v.close();
  });

  it('decides a spot whose transcript is late after TRANSCRIPT_WAIT_MS, as without a transcript: strong enough alone, and not contradicted by what was heard', () => {
    vi.useFakeTimers();
    try {
      const { v, emitted, rejected } = verifier();
      // Below trusted (30), at least alone (20): reported at the deadline without its transcript.
      v.addSpotted({ ...hit, score: 25 });
      // Below alone: rejected at the deadline (the transcript could have let it through).
      v.addSpotted({ ...hit, phrase: 'cancel my order', score: 10 });
      vi.advanceTimersByTime(TRANSCRIPT_WAIT_MS - 1);
      expect(emitted).toEqual([]);
      expect(rejected).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(emitted).toEqual(['end the conference']);
      expect(rejected).toEqual(['weak']);
      // A confidently heard other word already in the stretch still vetoes at the deadline.
      v.addTranscript([w('office', 5230, 5590, 0.99)]);
      v.addSpotted({ ...hit, startMs: 5000, endMs: 6000, score: 25 });
      vi.advanceTimersByTime(TRANSCRIPT_WAIT_MS);
      expect(rejected).toEqual(['weak', 'office']);
      // A transcript in time decides before the deadline, as before.
      v.addSpotted({ ...hit, startMs: 9000, endMs: 9800, score: 25 });
      v.addTranscript([w('office', 9230, 9590, 0.99)]);
      expect(rejected).toEqual(['weak', 'office', 'office']);
      vi.advanceTimersByTime(TRANSCRIPT_WAIT_MS);
      expect(emitted).toEqual(['end the conference']);
      v.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('reports a trusted spot at once, before any transcript, and a contradicting transcript does not take it back', () => {
    const { v, emitted, rejected } = verifier();
    v.addSpotted({ ...hit, score: 35 });
    expect(emitted).toEqual(['end the conference']);
    v.addTranscript([w('office', 2230, 2590, 0.99)]);
    v.close();
    expect(emitted).toEqual(['end the conference']);
    expect(rejected).toEqual([]);
  });
});

describe('spot rules (second stage before the transcript)', () => {
  const rule = { alone: 20, confirmed: 0, trusted: 30, minMs: 600 };
  const spot = (score: number, ms = 800) => ({ phrase: 'end the conference', startMs: 1000, endMs: 1000 + ms, score });

  it('rejects a weak or too short spot at once; checks the rest against the transcript, or needs alone strength without one', () => {
    expect(judgeSpot(spot(-1), rule)).toBe('reject');
    expect(judgeSpot(spot(25, 500), rule)).toBe('reject');
    expect(judgeSpot(spot(10), rule)).toBe('needs-transcript');
    expect(acceptSpot(spot(10), rule, null)).toBe(false);
    expect(acceptSpot(spot(25), rule, null)).toBe(true);
    expect(acceptSpot(spot(10), rule, [w('end', 1000, 1200, 0.95)])).toBe(true);
    // A spot below trusted is vetoed by a confidently heard other word ("send the contract"),
    expect(acceptSpot(spot(25), rule, [w('office', 1000, 1500, 0.99)])).toBe(false);
    // a trusted one is not (too short is still too short).
    expect(judgeSpot(spot(30), rule)).toBe('accept');
    expect(acceptSpot(spot(30), rule, [w('office', 1000, 1500, 0.99)])).toBe(true);
    expect(judgeSpot(spot(35, 500), rule)).toBe('reject');
  });

  it('derives thresholds from the phone count; a rule threshold sets the floor and keeps the distance to alone, not a lower trusted level', () => {
    const r = spotRule(13);
    expect(r.confirmed).toBeCloseTo(KWS_LOG10_PER_PHONE * 13 + KWS_CONFIRM_LOG10_OFFSET);
    expect(r.alone).toBeCloseTo(KWS_LOG10_PER_PHONE * 13 + KWS_LOG10_OFFSET);
    expect(r.trusted).toBeCloseTo(r.confirmed + KWS_TRUSTED_LOG10);
    expect(r.minMs).toBe(MIN_SPOT_MS_PER_PHONE * 13);
    // Longer phrases get lower thresholds.
    expect(spotRule(6).confirmed).toBeGreaterThan(r.confirmed);
    const own = spotRule(13, 1e-10);
    expect(own.confirmed).toBeCloseTo(-10);
    expect(own.alone - own.confirmed).toBeCloseTo(KWS_LOG10_OFFSET - KWS_CONFIRM_LOG10_OFFSET);
    // A lower floor spots more, but its spots below the default trusted level are still checked.
    expect(own.trusted).toBeCloseTo(r.trusted);
    expect(spotRule(13, 10 ** (r.confirmed + 5)).trusted).toBeCloseTo(r.trusted + 5);
    // No dictionary: pocketsphinx's usual 1e-5, no length check.
    expect(spotRule(Number.NaN)).toMatchObject({ confirmed: -5, minMs: 0 });
  });
});

describe('wordErrorRate', () => {
  it('counts substitutions, insertions and deletions over reference words', () => {
    expect(wordErrorRate('the cat sat', 'the cat sat')).toEqual({ errors: 0, words: 3, wer: 0 });
    expect(wordErrorRate('the cat sat', 'a cat sat down').errors).toBe(2);
    expect(wordErrorRate('the cat sat', 'cat').wer).toBeCloseTo(2 / 3);
    expect(wordErrorRate('', '').wer).toBe(0);
  });
});
