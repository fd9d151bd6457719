/**
 * Fast gate on the phrase evaluation (the full evaluation is bench/phrases.bench.ts): the set's
 * shape and split, and a small held-out subset (flite kal and awb, two carriers each for two
 * phrases calibration never saw) spotted at the shipped per-phrase thresholds (and ≥ 6 of 8 kept
 * by the no-transcript second stage), and at most one false spot in a non-matching paragraph of
 * each voice (none kept). Synthesised into a temp dir (flite, sox).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attribute, runKws, scoreLog10, writeStream } from '../../bench/lib/kws-run.js';
import { PERMISSIVE_LOG10 } from '../../bench/lib/phrase-scores.js';
import { CARRIERS_PER_PHRASE, ensurePhraseSet, phraseSet, VOICES } from '../../bench/lib/phrase-set.js';
import { acceptSpot } from '../../src/sinks/transcription/engines/phrase-verifier.js';
import { checkPhrases, defaultKwsThreshold, kwsFileContent, spotRule } from '../../src/sinks/transcription/engines/phrases.js';
import { DEFAULT_MODEL_DIR, isPocketsphinxInstalled } from '../../src/sinks/transcription/engines/pocketsphinx.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-phrase-set-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('phrase evaluation set', () => {
  const set = phraseSet();

  it('has ≥ 40 phrases of 1-6 words, each in ≥ 2 carriers by ≥ 4 voices, split in halves with every length in both', () => {
    expect(set.phrases.length).toBeGreaterThanOrEqual(40);
    expect(CARRIERS_PER_PHRASE).toBeGreaterThanOrEqual(2);
    expect(VOICES.length).toBeGreaterThanOrEqual(4);
    expect(set.cases).toHaveLength(set.phrases.length * CARRIERS_PER_PHRASE * VOICES.length);
    for (const n of [1, 2, 3, 4, 5, 6]) {
      expect(set.phrases.filter((p) => p.words === n && p.half === 'tuning').length).toBeGreaterThan(0);
      expect(set.phrases.filter((p) => p.words === n && p.half === 'heldout').length).toBeGreaterThan(0);
    }
    // No non-matching paragraph contains a phrase; both halves have some of every voice.
    for (const c of set.nonMatch) for (const p of set.phrases) expect(` ${c.text} `.includes(` ${p.phrase} `)).toBe(false);
    expect(new Set(set.nonMatch.filter((c) => c.half === 'heldout').map((c) => c.voice)).size).toBe(VOICES.length);
  });

  it('maps pocketsphinx printed spot scores to the largest threshold they pass', () => {
    // Bisected by hand (kws-run.ts): spotted at 1e134 but not 1e135; at 1e-1 but not 1e0.
    expect(scoreLog10(1.163831)).toBeGreaterThan(134);
    expect(scoreLog10(1.163831)).toBeLessThan(135);
    expect(scoreLog10(0.858973)).toBeGreaterThan(-1);
    expect(scoreLog10(0.858973)).toBeLessThan(0);
  });

  it.runIf(isPocketsphinxInstalled())('spots a held-out subset at the shipped thresholds (≥ 7 of 8; ≥ 6 kept without a transcript), at most one false spot in non-matching speech (none kept)', { timeout: 120_000 }, async () => {
    const phrases = ['end the conference', 'i want a refund'];
    const voices = new Set(['flite-kal', 'flite-awb']);
    const cases = set.cases.filter((c) => phrases.includes(c.phrase) && voices.has(c.voice) && c.half === 'heldout').slice(0, 8);
    const other = set.nonMatch.filter((c) => voices.has(c.voice) && c.half === 'heldout').slice(0, 2);
    await ensurePhraseSet(set, { dir, only: new Set([...cases, ...other].map((c) => c.file)) });
    const usable = checkPhrases(phrases, `${DEFAULT_MODEL_DIR}/cmudict-en-us.dict`).usable;
    const kws = join(dir, 'gate.kws');
    writeFileSync(kws, kwsFileContent(usable.map((u) => ({ phrase: u.phrase, threshold: defaultKwsThreshold(u.phones) }))));
    const raw = join(dir, 'gate.raw');
    const placed = writeStream([...cases, ...other], dir, raw);
    const byClip = attribute(placed, await runKws(raw, kws));
    const spotted = cases.filter((c, i) => byClip[i]!.some((d) => d.phrase === c.phrase));
    expect(cases.length).toBe(8);
    expect(spotted.length, `missed: ${cases.filter((c) => !spotted.includes(c)).map((c) => c.file).join(', ')}`).toBeGreaterThanOrEqual(7);
    // At the shipped thresholds the spotter alone false-alarms ~0.5/h per phrase on held-out
    // speech (bench/RESULTS.md): these ~26 s hold at most one.
    expect(byClip.slice(cases.length).flat().length).toBeLessThanOrEqual(1);
    // Second stage without a transcript (a track waiting for a slot): strong, long enough spots only.
    const phones = new Map(usable.map((u) => [u.phrase, u.phones]));
    const alone = (d: { phrase: string; startMs: number; endMs: number; score: number }) => acceptSpot(d, spotRule(phones.get(d.phrase)!), null);
    const kept = cases.filter((c, i) => byClip[i]!.some((d) => d.phrase === c.phrase && alone(d)));
    expect(kept.length, `not kept: ${cases.filter((c) => !kept.includes(c)).map((c) => c.file).join(', ')}`).toBeGreaterThanOrEqual(6);
    expect(byClip.slice(cases.length).flat().filter(alone)).toEqual([]);

    // The evaluation decodes once at a permissive threshold and applies the engine's afterwards
    // (bench/lib/phrase-scores.ts): the same spots, with the same scores, must come out.
    const permissive = join(dir, 'permissive.kws');
    writeFileSync(permissive, kwsFileContent(usable.map((u) => ({ phrase: u.phrase, threshold: 10 ** PERMISSIVE_LOG10 }))));
    const all = attribute(placed, await runKws(raw, permissive));
    const atShipped = all.map((spots) => spots.filter((d) => d.score >= spotRule(phones.get(d.phrase)!).confirmed));
    const key = (spots: { phrase: string; startMs: number; endMs: number; score: number }[]) => spots.map((d) => `${d.phrase} ${d.startMs}-${d.endMs} ${d.score.toFixed(3)}`);
    expect(atShipped.map(key)).toEqual(byClip.map(key));
  });
});
