/**
 * Spotter and transcript output over the phrase evaluation set (bench/lib/phrase-set.ts), kept
 * per clip so any threshold and any second stage can be evaluated afterwards without decoding
 * again (see kws-run.ts for why one permissive decode gives every threshold's outcome).
 *
 * The set is cut into chunks: per half and kind (phrase clips, non-matching speech) the clips are
 * dealt round-robin into `chunks` parts, so every chunk holds every voice, carrier and phrase
 * length in proportion (a stratified sample). Each chunk is one long call decoded by one spotter
 * process and, with `lm`, one language-model process; their outputs are cached apart in
 * bench/out/phrase-runs/ under names that include a hash of the chunk's clips and phrases and
 * one of each decoder's settings (a spotter change decodes the spotter again, not the LM). So a long
 * evaluation can be run a few chunks at a time (`only`), resumed after an interruption, or
 * reported on a stratified subset (the first k chunks of each half and kind).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MappedWord } from '../../src/sinks/transcription/engines/pocketsphinx-process.js';
import { SPOTTER_DEFAULTS, spotterFingerprint, type SpotterSettings } from '../../src/sinks/transcription/engines/spotter-args.js';
import { LM_DECODER_ARGS } from '../../src/sinks/transcription/engines/pocketsphinx.js';
import { attribute, runKws, runLm, writeStream, type Detection, type Placed } from './kws-run.js';
import type { Half, NonMatchClip, PhraseCase, PhraseSet } from './phrase-set.js';

/** Threshold for the collecting decode: far below any useful one, so every candidate shows. */
export const PERMISSIVE_LOG10 = -40;

/** One clip's decoder output, times relative to the clip's start (ms). */
export interface ClipOutput {
  /** Every spot of the half's phrases in the clip (score: log10 threshold it passes). */
  spots: Detection[];
  /** The language-model transcript of the clip; null when not decoded (`lm` off). */
  words: MappedWord[] | null;
}

export interface PositiveClip extends ClipOutput {
  phrase: string;
  voice: string;
  carrier: number;
  half: Half;
  text: string;
}

export interface NonMatchOutput extends ClipOutput {
  voice: string;
  half: Half;
  text: string;
  /** Length of the clip's audio, ms. */
  ms: number;
}

export interface PhraseRuns {
  positives: PositiveClip[];
  nonMatch: NonMatchOutput[];
  /** Chunks found in the cache / planned, per half and kind. */
  chunksUsed: number;
  chunksPlanned: number;
}

export interface ChunkJob {
  key: string;
  /** Index within its half and kind. */
  index: number;
  half: Half;
  kind: 'p' | 'n';
  clips: (PhraseCase | NonMatchClip)[];
  phrases: string[];
}

/** Default cache of chunk outputs: bench/out/phrase-runs (git-ignored). */
export function defaultRunDir(): string {
  return fileURLToPath(new URL('../out/phrase-runs/', import.meta.url));
}

/** The chunk jobs of the set: per half and kind, clips dealt round-robin into `chunks` parts. */
export function chunkJobs(set: PhraseSet, chunks: number): ChunkJob[] {
  const jobs: ChunkJob[] = [];
  for (const half of ['tuning', 'heldout'] as const) {
    const phrases = set.phrases.filter((p) => p.half === half).map((p) => p.phrase);
    for (const kind of ['p', 'n'] as const) {
      const list: (PhraseCase | NonMatchClip)[] = kind === 'p' ? set.cases.filter((c) => c.half === half) : set.nonMatch.filter((c) => c.half === half);
      for (let i = 0; i < chunks; i++) {
        const clips = list.filter((_, j) => j % chunks === i);
        if (clips.length === 0) continue;
        const hash = createHash('sha256').update(JSON.stringify([clips.map((c) => c.file), phrases])).digest('hex').slice(0, 10);
        jobs.push({ key: `${half}-${kind}-${i}of${chunks}-${hash}`, index: i, half, kind, clips, phrases });
      }
    }
  }
  // Chunk 0 of every half and kind first, then chunk 1, ...: a run stopped early has decoded a
  // balanced subset.
  return jobs.sort((a, b) => a.index - b.index);
}

/** A chunk's spotter output, per clip (job order), and each clip's length. */
interface CachedSpots {
  spots: Detection[][];
  msByClip: number[];
}

/** A chunk's language-model transcript, per clip (job order). */
interface CachedWords {
  words: MappedWord[][];
}

/**
 * The spotter's and the language model's outputs are cached apart, each under a key of its own
 * decoder settings (spotter-args.ts spotterFingerprint, LM_DECODER_ARGS): a change to the spotter
 * decodes the spotter again and keeps the transcripts.
 */
const spotterKey = (s: SpotterSettings): string => createHash('sha256').update(JSON.stringify([PERMISSIVE_LOG10, spotterFingerprint(s)])).digest('hex').slice(0, 8);
const LM_KEY = createHash('sha256').update(JSON.stringify(LM_DECODER_ARGS)).digest('hex').slice(0, 8);

function spotsFile(runDir: string, job: ChunkJob, spotter: SpotterSettings): string {
  return join(runDir, `${job.key}-kws-${spotterKey(spotter)}.json`);
}

function wordsFile(runDir: string, job: ChunkJob): string {
  return join(runDir, `${job.key}-lm-${LM_KEY}.json`);
}

function readJson<T>(file: string): T | null {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : null;
}

/** What a chunk still needs decoded. */
function missing(runDir: string, job: ChunkJob, lm: boolean, spotter: SpotterSettings): { kws: boolean; lm: boolean } {
  return { kws: !existsSync(spotsFile(runDir, job, spotter)), lm: lm && !existsSync(wordsFile(runDir, job)) };
}

/** Decodes what one chunk lacks (spotter; the language model with `lm`) and caches it. */
async function decodeChunk(job: ChunkJob, audioDir: string, runDir: string, lm: boolean, spotter: SpotterSettings): Promise<void> {
  const need = missing(runDir, job, lm, spotter);
  if (!need.kws && !need.lm) return;
  const tmp = mkdtempSync(join(tmpdir(), 'streamgate-phrase-runs-'));
  try {
    const raw = join(tmp, 'call.raw');
    const placed = writeStream(job.clips, audioDir, raw, job.kind === 'p' ? 1000 : 500);
    mkdirSync(runDir, { recursive: true });
    if (need.kws) {
      const kws = join(tmp, 'phrases.kws');
      writeFileSync(kws, job.phrases.map((p) => `${p} /1e${PERMISSIVE_LOG10}/\n`).join(''));
      const spots = attribute(placed, await runKws(raw, kws, spotter));
      const out: CachedSpots = {
        spots: placed.map((p, i) => spots[i]!.map((d) => ({ ...d, startMs: d.startMs - p.startMs, endMs: d.endMs - p.startMs }))),
        msByClip: placed.map((p) => p.endMs - p.startMs),
      };
      writeFileSync(spotsFile(runDir, job, spotter), JSON.stringify(out));
    }
    if (need.lm) {
      const wordsOf = wordsByClip(placed, await runLm(raw));
      const out: CachedWords = { words: placed.map((p, i) => wordsOf[i]!.map((w) => ({ ...w, startMs: w.startMs - p.startMs, endMs: w.endMs - p.startMs }))) };
      writeFileSync(wordsFile(runDir, job), JSON.stringify(out));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export interface DecodeOptions {
  audioDir: string;
  runDir?: string;
  /** Chunks per half and kind (default 8). */
  chunks?: number;
  /** Decoder processes at once (each chunk runs its spotter, then its language model). */
  parallel?: number;
  /** Also the language-model transcript (stage 2 needs it; several times the spotter's CPU). */
  lm?: boolean;
  /** Only chunks whose index (within its half and kind) is below this: a stratified subset. */
  firstChunks?: number;
  /** Only these halves. */
  halves?: readonly Half[];
  /** The spotter's settings (default: what ships); each setting has its own cache. */
  spotter?: SpotterSettings;
  onChunk?(job: ChunkJob, done: number, total: number): void;
}

/** Decodes the chunks not yet cached (with the transcript when `lm`); cached ones are kept. */
export async function decodeSet(set: PhraseSet, opts: DecodeOptions): Promise<void> {
  const runDir = opts.runDir ?? defaultRunDir();
  const lm = opts.lm ?? true;
  const spotter = opts.spotter ?? SPOTTER_DEFAULTS;
  const jobs = selected(set, opts).filter((job) => {
    const need = missing(runDir, job, lm, spotter);
    return need.kws || need.lm;
  });
  let next = 0;
  let done = 0;
  mkdirSync(runDir, { recursive: true });
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      // Several runs may share the cache (a long evaluation spread over processes): a lock
      // file claims the chunk; a chunk another run finished meanwhile is not decoded again.
      const lock = join(runDir, `${job.key}-${spotterKey(spotter)}.lock`);
      try {
        writeFileSync(lock, String(process.pid), { flag: 'wx' });
      } catch {
        continue;
      }
      try {
        await decodeChunk(job, opts.audioDir, runDir, lm, spotter);
      } finally {
        rmSync(lock, { force: true });
      }
      opts.onChunk?.(job, ++done, jobs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.parallel ?? 2) }, worker));
}

function selected(set: PhraseSet, opts: Pick<DecodeOptions, 'chunks' | 'firstChunks' | 'halves'>): ChunkJob[] {
  const chunks = opts.chunks ?? 8;
  return chunkJobs(set, chunks).filter((job) => {
    return job.index < (opts.firstChunks ?? chunks) && (opts.halves === undefined || opts.halves.includes(job.half));
  });
}

/** Every cached chunk of the selection, as per-clip outputs. Chunks not decoded are left out. */
export function loadRuns(set: PhraseSet, opts: Pick<DecodeOptions, 'runDir' | 'chunks' | 'firstChunks' | 'halves' | 'spotter'> = {}): PhraseRuns {
  const runDir = opts.runDir ?? defaultRunDir();
  const jobs = selected(set, opts);
  const runs: PhraseRuns = { positives: [], nonMatch: [], chunksUsed: 0, chunksPlanned: jobs.length };
  for (const job of jobs) {
    const cached = readJson<CachedSpots>(spotsFile(runDir, job, opts.spotter ?? SPOTTER_DEFAULTS));
    if (cached === null) continue;
    const transcript = readJson<CachedWords>(wordsFile(runDir, job));
    runs.chunksUsed++;
    job.clips.forEach((clip, i) => {
      const out: ClipOutput = { spots: cached.spots[i]!, words: transcript === null ? null : transcript.words[i]! };
      if (job.kind === 'p') {
        const c = clip as PhraseCase;
        runs.positives.push({ phrase: c.phrase, voice: c.voice, carrier: c.carrier, half: c.half, text: c.text, ...out });
      } else {
        runs.nonMatch.push({ voice: clip.voice, half: clip.half, text: clip.text, ms: cached.msByClip[i]!, ...out });
      }
    });
  }
  return runs;
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
