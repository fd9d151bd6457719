/**
 * Phrase-spotting bench: detection rate and false alarms per hour on the phrase evaluation set
 * (bench/lib/phrase-set.ts), by phrase length and voice, on the held-out half, with the shipped
 * per-phrase thresholds (src/sinks/transcription/engines/phrases.ts); and the threshold
 * constants the tuning half alone would pick (calibration).
 *
 *   1. synthesise the set into bench/out/phrase-set/ (cached; checksums compared)
 *   2. one permissive spotter decode per half (bench/lib/phrase-scores.ts), plus the
 *      language-model transcript for the transcript check unless --spotter-only
 *   3. tables: held-out detection / false alarms per hour per phrase, stage 1 (spotter) and,
 *      with the transcript, stage 2 (spot confirmed by phrase-verifier.ts, or phrase in transcript)
 *
 * Usage: npx tsx bench/phrases.bench.ts [--spotter-only] [--parallel 2] [--scores saved.json]
 * The CPU is shared: --parallel is the number of recogniser processes (default 2).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { checkPhrases, KWS_LOG10_OFFSET, KWS_LOG10_PER_PHONE } from '../src/sinks/transcription/engines/phrases.js';
import { DEFAULT_MODEL_DIR } from '../src/sinks/transcription/engines/pocketsphinx.js';
import { committedChecksums, ensurePhraseSet, phraseSet, VOICES, voiceChecksums, type Half } from './lib/phrase-set.js';
import { collectScores, type PhraseScores } from './lib/phrase-scores.js';
import { machineLine, mdTable } from './lib/stats.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const parallel = Number(arg('--parallel') ?? 2);
const spotterOnly = args.includes('--spotter-only');

const set = phraseSet();
let scores: PhraseScores;
const saved = arg('--scores');
if (saved !== undefined) {
  scores = JSON.parse(readFileSync(saved, 'utf8'), (_k, v: unknown) => (v === null ? -Infinity : v === 'inf' ? Infinity : v)) as PhraseScores;
} else {
  const dir = await ensurePhraseSet(set, { parallel });
  const sums = voiceChecksums(set, dir);
  const committed = committedChecksums();
  for (const v of VOICES) {
    if (committed[v.id] !== undefined && committed[v.id] !== sums[v.id]) console.log(`note: ${v.id} audio differs from the committed checksum (another flite/espeak-ng/sox build)`);
  }
  scores = await collectScores(set, dir, 1e-10, parallel, !spotterOnly);
  writeFileSync(new URL('./out/phrase-scores.json', import.meta.url), JSON.stringify(scores, (_k, v: unknown) => (v === -Infinity ? null : v === Infinity ? 'inf' : v)));
}

const dict = `${DEFAULT_MODEL_DIR}/cmudict-en-us.dict`;
const phones = new Map(checkPhrases(set.phrases.map((p) => p.phrase), dict).usable.map((u) => [u.phrase, u.phones]));
const words = new Map(set.phrases.map((p) => [p.phrase, p.words]));
const thresholdOf = (a: number, b: number) => (p: string) => a * phones.get(p)! + b;

interface Outcome {
  cases: number;
  detected: number;
  fa: number;
  phrases: number;
  hours: number;
}

/** Stage 1: spotter alone. Stage 2: spot passing the transcript check, or the phrase in the transcript. */
function evaluate(half: Half, t: (p: string) => number, stage: 1 | 2, keep: (phrase: string, voice: string) => boolean = () => true): Outcome {
  const pos = scores.positives.filter((p) => p.half === half && keep(p.phrase, p.voice));
  const detected = pos.filter((p) => (stage === 1 ? p.score >= t(p.phrase) : p.verifiedScore >= t(p.phrase) || p.inTranscript)).length;
  const nm = scores.nonMatch[half];
  const phrases = new Set(pos.map((p) => p.phrase));
  const fa = nm.hits.filter((h) => phrases.has(h.phrase) && keep(h.phrase, h.voice) && (stage === 1 ? !h.fromTranscript && h.score >= t(h.phrase) : h.verified && h.score >= t(h.phrase))).length;
  const hours = keep('', '') ? nm.hours : nm.hours / VOICES.length;
  return { cases: pos.length, detected, fa, phrases: phrases.size, hours };
}

const pct = (o: Outcome) => `${((100 * o.detected) / Math.max(1, o.cases)).toFixed(1)} % (${o.detected}/${o.cases})`;
const faH = (o: Outcome) => (o.fa / o.phrases / o.hours).toFixed(2);
const shipped = thresholdOf(KWS_LOG10_PER_PHONE, KWS_LOG10_OFFSET);
const stages: (1 | 2)[] = spotterOnly || saved !== undefined && !scores.positives.some((p) => p.inTranscript) ? [1] : [1, 2];

console.log(`### Phrase spotting (held-out half: ${set.phrases.filter((p) => p.half === 'heldout').length} phrases, ${scores.nonMatch.heldout.hours.toFixed(2)} h of non-matching speech)\n`);
console.log(`Shipped threshold: 1e(${KWS_LOG10_OFFSET} ${KWS_LOG10_PER_PHONE < 0 ? '-' : '+'} ${Math.abs(KWS_LOG10_PER_PHONE)} × phones). ${machineLine()}\n`);
for (const stage of stages) {
  const rows: (string | number)[][] = [];
  for (const n of [1, 2, 3, 4, 5, 6]) {
    const o = evaluate('heldout', shipped, stage, (p) => p === '' || words.get(p) === n);
    if (o.cases > 0) rows.push([`${n} word${n > 1 ? 's' : ''}`, pct(o), faH(o)]);
  }
  for (const v of VOICES) {
    const o = evaluate('heldout', shipped, stage, (p, voice) => (p === '' && voice === '' ? false : voice === v.id));
    rows.push([v.id, pct(o), (o.fa / o.phrases / o.hours).toFixed(2)]);
  }
  const all = evaluate('heldout', shipped, stage);
  rows.push(['**all**', pct(all), faH(all)]);
  console.log(`Stage ${stage} (${stage === 1 ? 'spotter alone' : 'spot confirmed by the transcript, or phrase in the transcript'}):\n`);
  console.log(mdTable(['held-out', 'detected', 'false alarms / h / phrase'], rows, ['l', 'r', 'r']) + '\n');
}

// Calibration: the constants the tuning half picks for a false-alarm budget (mean per phrase per hour).
const rows: (string | number)[][] = [];
for (const budget of [0.5, 1, 5, 15]) {
  let best: { a: number; b: number; o: Outcome } | null = null;
  for (let a = -4; a <= 2; a += 0.5) {
    for (let b = -20; b <= 80; b += 2) {
      const o = evaluate('tuning', thresholdOf(a, b), 1);
      if (o.fa / o.phrases / o.hours <= budget && (best === null || o.detected > best.o.detected)) best = { a, b, o };
    }
  }
  if (best === null) continue;
  const held = evaluate('heldout', thresholdOf(best.a, best.b), 1);
  rows.push([budget, `1e(${best.b} ${best.a < 0 ? '-' : '+'} ${Math.abs(best.a)} × phones)`, pct(best.o), faH(best.o), pct(held), faH(held)]);
}
console.log('Calibration (stage 1, tuning half only; held-out shown for the same constants):\n');
console.log(mdTable(['FA budget / h / phrase', 'threshold', 'tuning detected', 'tuning FA/h', 'held-out detected', 'held-out FA/h'], rows, ['r', 'l', 'r', 'r', 'r', 'r']));
