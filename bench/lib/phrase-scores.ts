/**
 * Spotter and transcript output over the phrase evaluation set (bench/lib/phrase-set.ts), kept
 * per clip so any threshold and any second stage can be evaluated afterwards without decoding
 * again (see kws-run.ts for why one permissive decode gives every threshold's outcome).
 *
 * The set is cut into chunks: per half and kind (phrase clips, non-matching speech) the clips are
 * dealt round-robin into `chunks` parts, so every chunk holds every voice, carrier and phrase
 * length in proportion (a stratified sample). Each chunk is one long call decoded by one spotter
 * process and, with `lm`, one language-model process; its output is cached in
 * bench/out/phrase-runs/ under a name that includes a hash of its clips and phrases. So a long
 * evaluation can be run a few chunks at a time (`only`), resumed after an interruption, or
 * reported on a stratified subset (the first k chunks of each half and kind).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MappedWord } from '../../src/sinks/transcription/engines/pocketsphinx-process.js';
import { attribute, runKws, runLm, writeStream, type Detection, type Placed } from './kws-run.js';
import type { Half, NonMatchClip, PhraseCase, PhraseSet } from './phrase-set.js';

/** Threshold for the collecting decode: far below any useful one, so every candidate shows. */
export const PERMISSIVE_LOG10 = -40;
/** Spotter phone-loop probability, as the engine's default (pocketsphinx.ts). */
const KWS_PLP = 1e-10;

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
        const hash = createHash('sha256').update(JSON.stringify([clips.map((c) => c.file), phrases, PERMISSIVE_LOG10, KWS_PLP])).digest('hex').slice(0, 10);
        jobs.push({ key: `${half}-${kind}-${i}of${chunks}-${hash}`, index: i, half, kind, clips, phrases });
      }
    }
  }
  // Chunk 0 of every half and kind first, then chunk 1, ...: a run stopped early has decoded a
  // balanced subset.
  return jobs.sort((a, b) => a.index - b.index);
}

interface CachedChunk {
  /** Per clip (job order): its output. */
  clips: ClipOutput[];
  msByClip: number[];
}

function cacheFile(runDir: string, job: ChunkJob, lm: boolean): string {
  return join(runDir, `${job.key}${lm ? '' : '-kws'}.json`);
}

function readCached(runDir: string, job: ChunkJob): CachedChunk | null {
  for (const lm of [true, false]) {
    const file = cacheFile(runDir, job, lm);
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as CachedChunk;
  }
  return null;
}

/** Decodes one chunk (spotter, and the language model with `lm`) and caches its output. */
async function decodeChunk(job: ChunkJob, audioDir: string, runDir: string, lm: boolean): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'streamgate-phrase-runs-'));
  try {
    const kws = join(tmp, 'phrases.kws');
    writeFileSync(kws, job.phrases.map((p) => `${p} /1e${PERMISSIVE_LOG10}/\n`).join(''));
    const raw = join(tmp, 'call.raw');
    const placed = writeStream(job.clips, audioDir, raw, job.kind === 'p' ? 1000 : 500);
    const detections = await runKws(raw, kws, KWS_PLP);
    const words = lm ? await runLm(raw) : null;
    const spots = attribute(placed, detections);
    const wordsOf = words === null ? null : wordsByClip(placed, words);
    const out: CachedChunk = {
      clips: placed.map((p, i) => ({
        spots: spots[i]!.map((d) => ({ ...d, startMs: d.startMs - p.startMs, endMs: d.endMs - p.startMs })),
        words: wordsOf === null ? null : wordsOf[i]!.map((w) => ({ ...w, startMs: w.startMs - p.startMs, endMs: w.endMs - p.startMs })),
      })),
      msByClip: placed.map((p) => p.endMs - p.startMs),
    };
    mkdirSync(runDir, { recursive: true });
    writeFileSync(cacheFile(runDir, job, lm), JSON.stringify(out));
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
  onChunk?(job: ChunkJob, done: number, total: number): void;
}

/** Decodes the chunks not yet cached (with the transcript when `lm`); cached ones are kept. */
export async function decodeSet(set: PhraseSet, opts: DecodeOptions): Promise<void> {
  const runDir = opts.runDir ?? defaultRunDir();
  const lm = opts.lm ?? true;
  const jobs = selected(set, opts).filter((job) => {
    const cached = readCached(runDir, job);
    return cached === null || (lm && cached.clips.some((c) => c.words === null));
  });
  let next = 0;
  let done = 0;
  mkdirSync(runDir, { recursive: true });
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      // Several runs may share the cache (a long evaluation spread over processes): a lock
      // file claims the chunk; a chunk another run finished meanwhile is not decoded again.
      const lock = join(runDir, `${job.key}.lock`);
      try {
        writeFileSync(lock, String(process.pid), { flag: 'wx' });
      } catch {
        continue;
      }
      try {
        const cached = readCached(runDir, job);
        if (cached === null || (lm && cached.clips.some((c) => c.words === null))) await decodeChunk(job, opts.audioDir, runDir, lm);
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
export function loadRuns(set: PhraseSet, opts: Pick<DecodeOptions, 'runDir' | 'chunks' | 'firstChunks' | 'halves'> = {}): PhraseRuns {
  const runDir = opts.runDir ?? defaultRunDir();
  const jobs = selected(set, opts);
  const runs: PhraseRuns = { positives: [], nonMatch: [], chunksUsed: 0, chunksPlanned: jobs.length };
  for (const job of jobs) {
    const cached = readCached(runDir, job);
    if (cached === null) continue;
    runs.chunksUsed++;
    job.clips.forEach((clip, i) => {
      const out = cached.clips[i]!;
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
