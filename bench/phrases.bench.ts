/**
 * Phrase-spotting bench: detection rate and false alarms per hour on the phrase evaluation set
 * (bench/lib/phrase-set.ts), by phrase length and voice, on the held-out half, for what ships
 * (the per-phrase spotting threshold of src/sinks/transcription/engines/phrases.ts, and the
 * second stage of phrase-verifier.ts); and the constants the tuning half alone would pick.
 *
 *   1. synthesise the set into bench/out/phrase-set/ (cached; checksums compared)
 *   2. decode it in chunks (bench/lib/phrase-scores.ts): one permissive spotter decode and one
 *      language-model transcript per chunk, cached in bench/out/phrase-runs/
 *   3. tables from the cached output: stage 1 (spotter alone) and stage 2 (what the gateway
 *      reports: a spot the verifier accepts, or the phrase word for word in the transcript)
 *
 * Usage: npx tsx bench/phrases.bench.ts [--spotter-only] [--parallel 2] [--chunks 8]
 *          [--first-chunks k] [--halves heldout] [--no-decode] [--kws-plp p] [--spotter-flags "..."]
 * --first-chunks k reports on a stratified subset (k of the --chunks parts of each half and kind,
 * clips dealt round-robin so every part holds every voice and length). --no-decode reports on the
 * chunks already cached (e.g. decoded by several runs, a few chunks each). The CPU is shared:
 * --parallel is the number of chunks decoded at once (default 2), each one recogniser at a time.
 */
import { acceptSpot, contradictingWord, judgeSpot, type SpotRule } from '../src/sinks/transcription/engines/phrase-verifier.js';
import { checkPhrases, findPhrase, KWS_CONFIRM_LOG10_OFFSET, KWS_LOG10_OFFSET, KWS_LOG10_PER_PHONE, KWS_TRUSTED_LOG10, MIN_SPOT_MS_PER_PHONE, spotRule } from '../src/sinks/transcription/engines/phrases.js';
import type { MappedWord } from '../src/sinks/transcription/engines/pocketsphinx-process.js';
import { DEFAULT_MODEL_DIR } from '../src/sinks/transcription/engines/pocketsphinx.js';
import { wordErrorRate } from '../src/sinks/transcription/wer.js';
import { SPOTTER_DEFAULTS, type SpotterSettings } from '../src/sinks/transcription/engines/spotter-args.js';
import { decodeSet, loadRuns, type Detection } from './lib/phrase-scores.js';
import { committedChecksums, ensurePhraseSet, phraseSet, VOICES, voiceChecksums, type Half } from './lib/phrase-set.js';
import { machineLine, mdTable } from './lib/stats.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const parallel = Number(arg('--parallel') ?? 2);
const chunks = Number(arg('--chunks') ?? 8);
const firstChunks = arg('--first-chunks') === undefined ? undefined : Number(arg('--first-chunks'));
const halves = arg('--halves')?.split(',') as Half[] | undefined;
const lm = !args.includes('--spotter-only');
// A spotter other than what ships (levers measured on the tuning half): --kws-plp 1e-20,
// --spotter-flags "-warp_type inverse_linear -warp_params 0.9" (appended to the engine's flags).
const spotterFlags = arg('--spotter-flags')?.split(/\s+/).filter((f) => f !== '');
const spotter: SpotterSettings = {
  ...SPOTTER_DEFAULTS,
  kwsPlp: Number(arg('--kws-plp') ?? SPOTTER_DEFAULTS.kwsPlp),
  ...(spotterFlags === undefined || spotterFlags.length === 0 ? {} : { flags: spotterFlags }),
};
const started = Date.now();

const set = phraseSet();
if (!args.includes('--no-decode')) {
  const dir = await ensurePhraseSet(set, { parallel });
  const sums = voiceChecksums(set, dir);
  const committed = committedChecksums();
  for (const v of VOICES) {
    if (committed[v.id] !== undefined && committed[v.id] !== sums[v.id]) console.log(`note: ${v.id} audio differs from the committed checksum (another flite/espeak-ng/sox build)`);
  }
  await decodeSet(set, {
    audioDir: dir,
    chunks,
    parallel,
    lm,
    firstChunks,
    halves,
    spotter,
    onChunk: (job, done, total) => console.error(`decoded ${job.key} (${done}/${total}, ${((Date.now() - started) / 60_000).toFixed(1)} min)`),
  });
}
const runs = loadRuns(set, { chunks, firstChunks, halves, spotter });
const withLm = runs.positives.length > 0 && runs.positives.every((p) => p.words !== null) && runs.nonMatch.every((n) => n.words !== null);

const dict = `${DEFAULT_MODEL_DIR}/cmudict-en-us.dict`;
const words = new Map(set.phrases.map((p) => [p.phrase, p.words]));
/** What a phrase's thresholds may depend on: its phones (what ships) and its words (calibration tries a one-word offset). */
interface PhraseShape {
  phones: number;
  words: number;
}
const shapes = new Map<string, PhraseShape>(checkPhrases(set.phrases.map((p) => p.phrase), dict).usable.map((u) => [u.phrase, { phones: u.phones, words: words.get(u.phrase)! }]));

/** Whether a spot is reported: the spot, its clip's transcript (null without one), the phrase's shape. */
type Decider = (spot: Detection, transcript: readonly MappedWord[] | null, shape: PhraseShape) => boolean;
interface Stage {
  decide: Decider;
  /** Also report the phrase when the transcript has it word for word (stage 2). */
  transcript: boolean;
}

interface Outcome {
  cases: number;
  detected: number;
  fa: number;
  phrases: number;
  hours: number;
}

/** Outcome on a half, restricted to the (phrase, voice) pairs `keep` accepts. */
function evaluate(half: Half, stage: Stage, keep: (phrase: string, voice: string) => boolean = () => true): Outcome {
  const pos = runs.positives.filter((p) => p.half === half && keep(p.phrase, p.voice));
  let detected = 0;
  for (const p of pos) {
    const ph = shapes.get(p.phrase)!;
    if (p.spots.some((s) => s.phrase === p.phrase && stage.decide(s, p.words, ph)) || (stage.transcript && findPhrase(p.words ?? [], p.phrase).length > 0)) detected++;
  }
  const phrases = new Set(pos.map((p) => p.phrase));
  let fa = 0;
  let ms = 0;
  for (const n of runs.nonMatch) {
    if (n.half !== half || !set.phrases.some((p) => phrases.has(p.phrase) && keep(p.phrase, n.voice))) continue;
    ms += n.ms;
    for (const s of n.spots) if (phrases.has(s.phrase) && stage.decide(s, n.words, shapes.get(s.phrase)!)) fa++;
    if (stage.transcript) for (const phrase of phrases) fa += findPhrase(n.words ?? [], phrase).length;
  }
  return { cases: pos.length, detected, fa, phrases: phrases.size, hours: ms / 3_600_000 };
}

const pct = (o: Outcome) => `${((100 * o.detected) / Math.max(1, o.cases)).toFixed(1)} % (${o.detected}/${o.cases})`;
const faH = (o: Outcome) => (o.fa / Math.max(1, o.phrases) / Math.max(1e-9, o.hours)).toFixed(2);
/** False alarms per hour per phrase; unknown (Infinity) without non-matching speech decoded. */
const rate = (o: Outcome) => (o.hours === 0 ? Infinity : o.fa / Math.max(1, o.phrases) / o.hours);
const above = (a: number, b: number) => (s: Detection, ph: PhraseShape) => s.score >= a * ph.phones + b;
/**
 * Offsets of one-word phrases' thresholds the calibration tries. Not shipped: the tuning half's
 * pick (-20) lost detections and false-alarmed on the held-out half (bench/RESULTS.md, #15).
 */
const ONE_WORD_OFFSETS = [0, -10, -20, -30];
const notF3 = (_p: string, voice: string) => voice !== 'espeak-f3';

/** What the gateway does at this commit: the spotter fires at `confirmed`; phrase-verifier.ts judges. */
const shipped1: Stage = { decide: (s, _w, ph) => s.score >= spotRule(ph.phones).confirmed, transcript: false };
const shippedAlone: Stage = { decide: (s, _w, ph) => acceptSpot(s, spotRule(ph.phones), null), transcript: false };
const shipped2: Stage = { decide: (s, w, ph) => acceptSpot(s, spotRule(ph.phones), w), transcript: true };

/** The two-stage rule with other constants (calibration): log10 thresholds a × phones + b (+ oneWord for one word). */
interface Constants {
  a: number;
  alone: number;
  confirmed: number;
  /** log10 above `confirmed` where the transcript no longer vetoes a spot (Infinity: never). */
  trusted: number;
  msPerPhone: number;
  /** Added to a one-word phrase's thresholds. */
  oneWord: number;
}
const ruleOf = (k: Constants, ph: PhraseShape): SpotRule => {
  const line = k.a * ph.phones + (ph.words === 1 ? k.oneWord : 0);
  return { alone: line + k.alone, confirmed: line + k.confirmed, trusted: line + k.confirmed + k.trusted, minMs: k.msPerPhone * ph.phones };
};
/** acceptSpot with the transcript check remembered per spot (calibration evaluates thousands of constants). */
const contradicted = new WeakMap<Detection, boolean>();
function accepted(s: Detection, rule: SpotRule, w: readonly MappedWord[] | null): boolean {
  if (w === null || judgeSpot(s, rule) !== 'needs-transcript') return acceptSpot(s, rule, w);
  let c = contradicted.get(s);
  if (c === undefined) contradicted.set(s, (c = contradictingWord(s, w) !== null));
  return !c;
}
const twoStage = (k: Constants): Stage => ({ decide: (s, w, ph) => accepted(s, ruleOf(k, ph), w), transcript: true });
const aloneStage = (k: Constants): Stage => ({ decide: (s, _w, ph) => acceptSpot(s, ruleOf(k, ph), null), transcript: false });
const describe = (k: Constants) =>
  `alone 1e(${k.alone} ${k.a < 0 ? '-' : '+'} ${Math.abs(k.a)} × phones), confirmed ${Number.isFinite(k.confirmed) ? `1e(${k.confirmed} ${k.a < 0 ? '-' : '+'} ${Math.abs(k.a)} × phones)` : 'none'}${k.oneWord === 0 ? '' : `, ${k.oneWord} for one word`}, trusted ${Number.isFinite(k.trusted) ? `${k.trusted} above confirmed` : 'never'}, ≥ ${k.msPerPhone} ms/phone`;
/** What shipped before (commit 19fdd88): alone 1e(40 - 1.5 × phones); confirmed 1e(16 - 1.5 × phones) and every spot checked against the transcript. */
const previous: Constants = { a: -1.5, alone: 40, confirmed: 16, trusted: Infinity, msPerPhone: 50, oneWord: 0 };
const shipped: Constants = { a: KWS_LOG10_PER_PHONE, alone: KWS_LOG10_OFFSET, confirmed: KWS_CONFIRM_LOG10_OFFSET, trusted: KWS_TRUSTED_LOG10, msPerPhone: MIN_SPOT_MS_PER_PHONE, oneWord: 0 };

function table(stage: Stage, half: Half = 'heldout'): string {
  const rows: (string | number)[][] = [];
  for (const n of [1, 2, 3, 4, 5, 6]) {
    const o = evaluate(half, stage, (p) => words.get(p) === n);
    if (o.cases > 0) rows.push([`${n} word${n > 1 ? 's' : ''}`, pct(o), faH(o)]);
  }
  for (const v of VOICES) {
    const o = evaluate(half, stage, (_p, voice) => voice === v.id);
    if (o.cases > 0) rows.push([v.id, pct(o), faH(o)]);
  }
  rows.push(['all but espeak-f3', pct(evaluate(half, stage, notF3)), faH(evaluate(half, stage, notF3))]);
  rows.push(['**all**', pct(evaluate(half, stage)), faH(evaluate(half, stage))]);
  return mdTable([half, 'detected', 'false alarms / h / phrase'], rows, ['l', 'r', 'r']);
}

const heldout = set.phrases.filter((p) => p.half === 'heldout').length;
const hours = (h: Half) => runs.nonMatch.filter((n) => n.half === h).reduce((s, n) => s + n.ms, 0) / 3_600_000;
console.log(`### Phrase spotting (held-out half: ${heldout} phrases, ${hours('heldout').toFixed(2)} h of non-matching speech)\n`);
console.log(`${machineLine()}. Chunks decoded: ${runs.chunksUsed}/${runs.chunksPlanned}${firstChunks === undefined ? '' : ` (stratified subset: the first ${firstChunks} of ${chunks} per half and kind)`}; ${runs.positives.length} phrase clips, ${(hours('tuning') + hours('heldout')).toFixed(2)} h non-matching. Wall ${((Date.now() - started) / 60_000).toFixed(1)} min.\n`);
console.log(`Shipped: ${describe(shipped)}. Spotter: -kws_plp ${spotter.kwsPlp}${spotter.flags === undefined ? '' : ` ${spotter.flags.join(' ')}`}.\n`);
console.log(`Stage 1 (the spotter alone, at its -kws threshold = confirmed):\n\n${table(shipped1)}\n`);
console.log(`Stage 2 without a transcript (a track waiting for a transcription slot, or \`spot: true\` beside a remote engine):\n\n${table(shippedAlone)}\n`);
if (withLm) {
  console.log(`Stage 2 (what the gateway reports for a transcribed track: a spot the verifier accepts, or the phrase word for word in the transcript):\n\n${table(shipped2)}\n`);
  console.log(`Before (${describe(previous)}), transcribed track:\n\n${table(twoStage(previous))}\n`);
  console.log(`Before, without a transcript:\n\n${table(aloneStage(previous))}\n`);

  // How well the language model hears each voice: a voice it cannot transcribe leaves the spotter alone.
  const rows: (string | number)[][] = [];
  for (const v of VOICES) {
    let errors = 0;
    let n = 0;
    for (const c of [...runs.positives, ...runs.nonMatch]) {
      if (c.voice !== v.id) continue;
      const r = wordErrorRate(c.text, (c.words ?? []).map((w) => w.word).join(' '));
      errors += r.errors;
      n += r.words;
    }
    rows.push([v.id, `${((100 * errors) / Math.max(1, n)).toFixed(1)} %`, n]);
  }
  console.log(`Transcript word error rate by voice (language model, whole set):\n\n${mdTable(['voice', 'WER', 'words'], rows, ['l', 'r', 'r'])}\n`);

  // Calibration on the tuning half, for a budget of false alarms per hour per phrase: the slope
  // and offset with the most detections without a transcript (the stricter case: nothing vetoes
  // a spot) within the budget (ties: fewer false alarms); transcribed tracks use the same floor (confirmed = alone), and
  // `trusted` (how far above it the transcript no longer vetoes) is picked after, in its table.
  const budgets = [1, 2, 5];
  const best = new Map<string, { k: Constants; o: Outcome; alone: Outcome }>();
  const lowest = (stage: (b: number) => Stage, budget: number): { b: number; o: Outcome } | null => {
    let found: { b: number; o: Outcome } | null = null;
    for (let b = 100; b >= -30; b -= 2) {
      const o = evaluate('tuning', stage(b));
      if (rate(o) > budget) break;
      found = { b, o };
    }
    return found;
  };
  for (const msPerPhone of [0, 50, 60]) {
    for (let a = -4; a <= 1; a += 0.5) {
      for (const oneWord of ONE_WORD_OFFSETS) {
      for (const budget of budgets) {
        const al = lowest((b) => aloneStage({ a, alone: b, confirmed: b, trusted: Infinity, msPerPhone, oneWord }), budget);
        if (al === null) continue;
        const k: Constants = { a, alone: al.b, confirmed: al.b, trusted: KWS_TRUSTED_LOG10, msPerPhone, oneWord };
        const o = evaluate('tuning', twoStage(k));
        const key = `${budget}/${msPerPhone}`;
        const prev = best.get(key);
        // Most detections; on a tie the fewer false alarms (more room under the budget), then
        // the most detections on transcribed tracks.
        const better =
          prev === undefined ||
          al.o.detected > prev.alone.detected ||
          (al.o.detected === prev.alone.detected && (al.o.fa < prev.alone.fa || (al.o.fa === prev.alone.fa && o.detected > prev.o.detected)));
        if (better) {
          best.set(key, { k, o, alone: al.o });
        }
      }
      }
    }
  }
  const calRows: (string | number)[][] = [];
  for (const budget of budgets) {
    for (const msPerPhone of [0, 50, 60]) {
      const b = best.get(`${budget}/${msPerPhone}`);
      if (b === undefined) continue;
      const held = evaluate('heldout', twoStage(b.k));
      const heldNotF3 = evaluate('heldout', twoStage(b.k), notF3);
      const heldAlone = evaluate('heldout', aloneStage(b.k));
      calRows.push([budget, describe(b.k), `${pct(b.alone)}, ${faH(b.alone)}`, `${pct(b.o)}, ${faH(b.o)}`, `${pct(heldAlone)}, ${faH(heldAlone)}`, `${pct(held)}, ${faH(held)}`, pct(heldNotF3)]);
    }
  }
  console.log('Calibration (tuning half only; held-out shown for the same constants; detected, FA/h/phrase):\n');
  console.log(mdTable(['FA budget / h / phrase', 'constants', 'tuning, no transcript', 'tuning, transcribed', 'held-out, no transcript', 'held-out, transcribed', 'held-out transcribed without espeak-f3'], calRows, ['r', 'l', 'r', 'r', 'r', 'r', 'r']) + '\n');

  // How far above the floor the transcript stops vetoing spots (shipped slope and offsets). A
  // trusted spot is decided the moment the spotter reports it; the others wait for the transcript
  // (latency, bench/phrase-latency.bench.ts). "Trusted alone": the phrase cases a trusted spot
  // decides by itself, and the false alarms trusted spots alone raise on non-matching speech (the
  // transcript cannot veto those): the level is the lowest whose tuning-half false alarms from
  // trusted spots stay well inside the budget.
  const trustedOnly = (trusted: number): Stage => ({
    decide: (s, _w, ph) => {
      const rule = ruleOf({ ...shipped, trusted }, ph);
      return judgeSpot(s, rule) === 'accept';
    },
    transcript: false,
  });
  const trustRows: (string | number)[][] = [];
  for (const trusted of [0, 10, 15, 20, 25, 30, 35, 40, 60, Infinity]) {
    const k = { ...shipped, trusted };
    const t = evaluate('tuning', twoStage(k));
    const h = evaluate('heldout', twoStage(k));
    const ta = evaluate('tuning', trustedOnly(trusted));
    const ha = evaluate('heldout', trustedOnly(trusted));
    trustRows.push([Number.isFinite(trusted) ? trusted : 'never', `${pct(ta)}, ${faH(ta)} (${ta.fa})`, `${pct(t)}, ${faH(t)}`, `${pct(ha)}, ${faH(ha)} (${ha.fa})`, `${pct(h)}, ${faH(h)}`]);
  }
  console.log('Transcribed tracks by `trusted` (log10 above confirmed; shipped slope and offsets; detected, FA/h/phrase; trusted alone: what trusted spots decide at once, with their false alarms counted):\n');
  console.log(mdTable(['trusted', 'tuning, trusted alone', 'tuning, all', 'held-out, trusted alone', 'held-out, all'], trustRows, ['r', 'r', 'r', 'r', 'r']) + '\n');
}

// Calibration: the stage-1 constants the tuning half picks for a false-alarm budget (mean per phrase per hour).
const calRows: (string | number)[][] = [];
for (const budget of [0.5, 1, 5, 15]) {
  let best: { a: number; b: number; o: Outcome } | null = null;
  for (let a = -4; a <= 2; a += 0.5) {
    for (let b = -20; b <= 80; b += 2) {
      const t = above(a, b);
      const o = evaluate('tuning', { decide: (s, _w, ph) => t(s, ph), transcript: false });
      if (rate(o) <= budget && (best === null || o.detected > best.o.detected)) best = { a, b, o };
    }
  }
  if (best === null) continue;
  const t = above(best.a, best.b);
  const held = evaluate('heldout', { decide: (s, _w, ph) => t(s, ph), transcript: false });
  calRows.push([budget, `1e(${best.b} ${best.a < 0 ? '-' : '+'} ${Math.abs(best.a)} × phones)`, pct(best.o), faH(best.o), pct(held), faH(held)]);
}
console.log('Calibration (stage 1, tuning half only; held-out shown for the same constants):\n');
console.log(mdTable(['FA budget / h / phrase', 'threshold', 'tuning detected', 'tuning FA/h', 'held-out detected', 'held-out FA/h'], calRows, ['r', 'l', 'r', 'r', 'r', 'r']));

// Levers of the spotter (--kws-plp, --spotter-flags) change its scores, so each is compared at
// the thresholds the tuning half fits for it: without a transcript (nothing vetoes a spot), the
// shipped shortest hit, slope a and offset b of the most tuning detections within 1 false alarm
// per hour per phrase. Per voice and length on the tuning half, and the held-out half when decoded.
{
  const fits: { a: number; b: number; o: Outcome }[] = [];
  for (let a = -5; a <= 1; a += 0.5) {
    let found: { a: number; b: number; o: Outcome } | null = null;
    for (let b = 200; b >= -30; b -= 1) {
      const o = evaluate('tuning', aloneStage({ a, alone: b, confirmed: b, trusted: Infinity, msPerPhone: MIN_SPOT_MS_PER_PHONE, oneWord: 0 }));
      if (rate(o) > 1) break;
      found = { a, b, o };
    }
    if (found !== null) fits.push(found);
  }
  fits.sort((x, y) => y.o.detected - x.o.detected || x.o.fa - y.o.fa);
  const fit = fits[0];
  if (fit !== undefined) {
    const k: Constants = { a: fit.a, alone: fit.b, confirmed: fit.b, trusted: Infinity, msPerPhone: MIN_SPOT_MS_PER_PHONE, oneWord: 0 };
    const shippedAt = evaluate('tuning', shippedAlone);
    console.log(`\nLever fit (tuning, no transcript, ≥ ${MIN_SPOT_MS_PER_PHONE} ms/phone, ≤ 1 FA/h/phrase): ${describe(k)}: tuning ${pct(fit.o)}, ${faH(fit.o)}; shipped thresholds on the same decode: tuning ${pct(shippedAt)}, ${faH(shippedAt)}\n`);
    console.log(table(aloneStage(k), 'tuning') + '\n');
    if (runs.positives.some((p) => p.half === 'heldout')) console.log(table(aloneStage(k), 'heldout') + '\n');
    console.log('Runners-up: ' + fits.slice(1, 4).map((f) => `1e(${f.b} ${f.a} × phones) ${pct(f.o)} ${faH(f.o)}`).join('; '));
  }
}
