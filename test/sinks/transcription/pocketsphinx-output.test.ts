import { describe, expect, it } from 'vitest';
import { ContinuousOutputParser, spotScoreLog10, type RawWord } from '../../../src/sinks/transcription/engines/pocketsphinx-output.js';

// Verbatim output of pocketsphinx_continuous 0.8 (-time yes) on the fixtures.
const LM_OUTPUT = `good morning
<s> 0.000 0.160 0.999500
good 0.170 0.430 0.809349
morning 0.440 0.920 1.000100
</s> 0.930 1.100 1.000000
please call me back
<s> 1.720 1.780 0.999600
please 1.790 2.060 0.999600
call 2.070 2.340 0.999600
<sil> 4.640 4.660 0.455395
when(2) 2.800 3.020 0.432749
</s> 5.300 5.360 1.000000

<s> 0.000 0.410 1.000100
</s> 0.420 0.920 1.000000
`;

const KWS_OUTPUT = `end the conference 
end the conference  3.850 4.890 0.842299
end the conference end the conference 
end the conference  7.000 8.000 0.5
end the conference  9.000 10.000 0.6
`;

function parse(mode: 'lm' | 'kws', text: string, split = 0): RawWord[][] {
  const out: RawWord[][] = [];
  const p = new ContinuousOutputParser(mode, (w) => out.push(w));
  if (split > 0) for (let i = 0; i < text.length; i += split) p.push(text.slice(i, i + split));
  else p.push(text);
  p.flush();
  return out;
}

describe('ContinuousOutputParser', () => {
  it('groups word lines into utterances, without fillers or pronunciation marks', () => {
    const utts = parse('lm', LM_OUTPUT);
    expect(utts.map((u) => u.map((w) => w.word).join(' '))).toEqual(['good morning', 'please call when']);
    expect(utts[1]![0]).toEqual({ word: 'please', start: 1.79, end: 2.06, confidence: 0.9996 });
    // Posteriors above 1 (rounding in pocketsphinx) are clamped.
    expect(utts[0]![1]!.confidence).toBe(1);
  });

  it('gives the same utterances whatever the chunking', () => {
    expect(parse('lm', LM_OUTPUT, 7)).toEqual(parse('lm', LM_OUTPUT));
    expect(parse('lm', LM_OUTPUT, 1)).toEqual(parse('lm', LM_OUTPUT));
  });

  it('closes an utterance left without </s> at the next hypothesis or at flush', () => {
    const utts = parse('lm', 'one two\none 0.1 0.2 0.9\ntwo 0.3 0.4 0.8\nthree\nthree 0.5 0.6 0.7');
    expect(utts.map((u) => u.map((w) => w.word))).toEqual([['one', 'two'], ['three']]);
  });

  it('reports each keyword detection as its own phrase', () => {
    const hits = parse('kws', KWS_OUTPUT);
    expect(hits).toEqual([
      [{ word: 'end the conference', start: 3.85, end: 4.89, confidence: 0.842299, score: spotScoreLog10(0.842299) }],
      [{ word: 'end the conference', start: 7, end: 8, confidence: 0.5, score: spotScoreLog10(0.5) }],
      [{ word: 'end the conference', start: 9, end: 10, confidence: 0.6, score: spotScoreLog10(0.6) }],
    ]);
  });

  it('maps a printed spot posterior to the log10 threshold it survives', () => {
    // pocketsphinx prints exp(score - 1500 units) in log base 1.0001 with a 10-bit shift, so a
    // posterior of 1 is 1500 × 1024 units = 1500 × 1024 × log10(1.0001) ≈ 66.7 in log10.
    expect(spotScoreLog10(1)).toBeCloseTo(1500 * 1024 * Math.log10(1.0001), 9);
    // Bisected by hand against pocketsphinx (see spotScoreLog10's comment): spotted at 1e134, not 1e135.
    expect(spotScoreLog10(1.163831)).toBeGreaterThan(134);
    expect(spotScoreLog10(1.163831)).toBeLessThan(135);
    expect(spotScoreLog10(0.5)).toBeLessThan(spotScoreLog10(0.6));
  });

  it('tracks whether an utterance is open', () => {
    const p = new ContinuousOutputParser('lm', () => {});
    p.push('hello\nhello 0.1 0.5 0.9\n');
    expect(p.hasPending).toBe(true);
    p.push('</s> 0.5 0.6 1.0\n');
    expect(p.hasPending).toBe(false);
  });
});
