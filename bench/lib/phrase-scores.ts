/**
 * Spotter scores over the phrase evaluation set (bench/lib/phrase-set.ts), one permissive
 * decode per half and kind (see kws-run.ts for why one decode gives every threshold's outcome):
 *
 * - positives: for each (phrase, carrier, voice) clip, the best score of its own phrase inside
 *   the clip (-Infinity when not spotted even at the permissive threshold);
 * - non-matching speech: every detection of every phrase of the half, with the hours decoded.
 *
 * Work is split into `parallel` pocketsphinx processes (each a long call of its own).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPhrase } from '../../src/sinks/transcription/engines/phrases.js';
import { contradictingWord } from '../../src/sinks/transcription/engines/phrase-verifier.js';
import type { MappedWord } from '../../src/sinks/transcription/engines/pocketsphinx-process.js';
import { attribute, runKws, runLm, writeStream, type Detection, type Placed } from './kws-run.js';
import type { Half, PhraseSet } from './phrase-set.js';

/** Threshold for the collecting decode: far below any useful one, so every candidate shows. */
export const PERMISSIVE_LOG10 = -40;

export interface PositiveScore {
  phrase: string;
  voice: string;
  carrier: number;
  half: Half;
  /** Best log10 score of the clip's phrase in the clip; -Infinity when never spotted. */
  score: number;
  /** Best score among the spots the transcript check (phrase-verifier.ts) lets through. */
  verifiedScore: number;
  /** The transcript itself contains the phrase (reported without the spotter). */
  inTranscript: boolean;
}

export interface FalseAlarm {
  phrase: string;
  voice: string;
  score: number;
  /** The transcript check lets it through. */
  verified: boolean;
  /** Found in the transcript word for word rather than spotted (score +Infinity). */
  fromTranscript?: boolean;
}

export interface PhraseScores {
  positives: PositiveScore[];
  /** Per half: detections in non-matching speech, and its length. */
  nonMatch: Record<Half, { hours: number; hits: FalseAlarm[] }>;
  /** CPU-free facts about the decode. */
  audioSeconds: number;
}

function chunks<T>(list: readonly T[], n: number): T[][] {
  const out: T[][] = Array.from({ length: n }, () => []);
  list.forEach((x, i) => out[i % n]!.push(x));
  return out.filter((c) => c.length > 0);
}

function kwsFile(dir: string, phrases: readonly string[], log10: number): string {
  const file = join(dir, `k-${Math.random().toString(36).slice(2)}.kws`);
  writeFileSync(file, phrases.map((p) => `${p} /1e${log10}/\n`).join(''));
  return file;
}

/** `lm`: also run the language-model recogniser for the transcript check (several times slower). */
export async function collectScores(set: PhraseSet, audioDir: string, plp: number, parallel = 2, lm = true): Promise<PhraseScores> {
  const tmp = mkdtempSync(join(tmpdir(), 'streamgate-phrase-scores-'));
  try {
    const jobs: (() => Promise<void>)[] = [];
    const positives: PositiveScore[] = [];
    const nonMatch = { tuning: { hours: 0, hits: [] as FalseAlarm[] }, heldout: { hours: 0, hits: [] as FalseAlarm[] } };
    let audioSeconds = 0;
    for (const half of ['tuning', 'heldout'] as const) {
      const phrases = set.phrases.filter((p) => p.half === half).map((p) => p.phrase);
      const kws = kwsFile(tmp, phrases, PERMISSIVE_LOG10);
      for (const part of chunks(set.cases.filter((c) => c.half === half), parallel)) {
        jobs.push(async () => {
          const raw = join(tmp, `p-${Math.random().toString(36).slice(2)}.raw`);
          const placed = writeStream(part, audioDir, raw);
          audioSeconds += placed[placed.length - 1]!.endMs / 1000;
          const detections = await runKws(raw, kws, plp);
          const words = lm ? await runLm(raw) : [];
          rmSync(raw);
          const wordsOf = wordsByClip(placed, words);
          attribute(placed, detections).forEach((ds, i) => {
            const c = placed[i]!.item;
            const own = ds.filter((d) => d.phrase === c.phrase);
            const verified = own.filter((d) => contradictingWord(d, words) === null);
            positives.push({
              phrase: c.phrase,
              voice: c.voice,
              carrier: c.carrier,
              half,
              score: Math.max(-Infinity, ...own.map((d) => d.score)),
              verifiedScore: Math.max(-Infinity, ...verified.map((d) => d.score)),
              inTranscript: findPhrase(wordsOf[i]!, c.phrase).length > 0,
            });
          });
        });
      }
      for (const part of chunks(set.nonMatch.filter((c) => c.half === half), parallel)) {
        jobs.push(async () => {
          const raw = join(tmp, `n-${Math.random().toString(36).slice(2)}.raw`);
          const placed = writeStream(part, audioDir, raw, 500);
          nonMatch[half].hours += placed.reduce((s, p) => s + (p.endMs - p.startMs), 0) / 3_600_000;
          audioSeconds += placed[placed.length - 1]!.endMs / 1000;
          const detections = await runKws(raw, kws, plp);
          const words = lm ? await runLm(raw) : [];
          rmSync(raw);
          const wordsOf = wordsByClip(placed, words);
          attribute(placed, detections).forEach((ds, i) => {
            const voice = placed[i]!.item.voice;
            for (const d of ds) nonMatch[half].hits.push({ phrase: d.phrase, voice, score: d.score, verified: contradictingWord(d, words) === null });
            for (const phrase of phrases) {
              for (let n = findPhrase(wordsOf[i]!, phrase).length; n > 0; n--) {
                nonMatch[half].hits.push({ phrase, voice, score: Infinity, verified: true, fromTranscript: true });
              }
            }
          });
        });
      }
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) await jobs[next++]!();
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    return { positives, nonMatch, audioSeconds };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The transcript words lying (by their middle) in each placed clip. */
function wordsByClip<T>(placed: readonly Placed<T>[], words: readonly MappedWord[]): MappedWord[][] {
  const out: MappedWord[][] = placed.map(() => []);
  let j = 0;
  for (const w of words) {
    const mid = (w.startMs + w.endMs) / 2;
    while (j < placed.length && placed[j]!.endMs < mid) j++;
    if (j < placed.length && placed[j]!.startMs <= mid) out[j]!.push(w);
  }
  return out;
}

export type { Detection };
