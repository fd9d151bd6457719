/**
 * Offline keyword spotting over evaluation clips: the clips (8 kHz mu-law) are decoded and
 * upsampled exactly as the gateway does (MULAW_TO_PCM, Upsampler8kTo16k), laid end to end with
 * silence between them as one long call, and decoded by one `pocketsphinx_continuous -kws`
 * process started exactly as the engine starts its spotter (spotter-args.ts prepareSpotter: the
 * same flags, phone-loop probability and telephone starting cepstral mean). Each detection is
 * attributed to the clip it lies in.
 *
 * Scores: each detection's printed posterior gives the largest log10 threshold it survives
 * (spotScoreLog10 in src/sinks/transcription/engines/pocketsphinx-output.ts).
 * So one run at a permissive threshold gives every threshold's outcome, and calibration costs
 * one decode of the set instead of one per candidate threshold. That is the one deliberate
 * difference from the engine, whose `-kws` file holds each phrase's own threshold: pocketsphinx
 * (Debian 0.8+5prealpha) compares a spot with the threshold only when reporting it, the search
 * is the same (test/bench/phrase-set.test.ts checks a permissive decode against one at the
 * engine's thresholds).
 *
 * The language-model decode (runLm) uses the engine's LM_DECODER_ARGS but not its primer clip:
 * only the first utterance of each long call would differ.
 */
import { spawn } from 'node:child_process';
import { ContinuousOutputParser, spotScoreLog10 } from '../../src/sinks/transcription/engines/pocketsphinx-output.js';
import type { MappedWord } from '../../src/sinks/transcription/engines/pocketsphinx-process.js';
import { DEFAULT_MODEL_DIR, LM_DECODER_ARGS } from '../../src/sinks/transcription/engines/pocketsphinx.js';
import { prepareSpotter, SPOTTER_DEFAULTS, type SpotterSettings } from '../../src/sinks/transcription/engines/spotter-args.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Upsampler8kTo16k } from '../../src/sinks/dsp/resample.js';
import { MULAW_TO_PCM } from '../../src/twilio/mulaw.js';

/** The largest log10 threshold a detection printed with posterior `printed` survives. */
export const scoreLog10 = spotScoreLog10;

export interface Placed<T> {
  item: T;
  startMs: number;
  endMs: number;
}

export interface Detection {
  phrase: string;
  startMs: number;
  endMs: number;
  score: number;
}

/**
 * Writes the clips as one 16 kHz stream with `gapMs` of silence before each; returns where each
 * clip lies (ms of the stream).
 */
export function writeStream<T extends { file: string }>(items: readonly T[], dir: string, out: string, gapMs = 1000): Placed<T>[] {
  const up = new Upsampler8kTo16k();
  const parts: Buffer[] = [];
  const placed: Placed<T>[] = [];
  let ms = 0;
  const gap = new Int16Array((gapMs * 8) | 0);
  const push = (pcm8k: Int16Array): void => {
    const pcm16 = new Int16Array(pcm8k.length * 2);
    up.process(pcm8k, pcm8k.length, pcm16);
    parts.push(Buffer.from(pcm16.buffer));
    ms += pcm8k.length / 8;
  };
  for (const item of items) {
    push(gap);
    const mulaw = readFileSync(join(dir, item.file));
    const pcm = new Int16Array(mulaw.length);
    for (let i = 0; i < mulaw.length; i++) pcm[i] = MULAW_TO_PCM[mulaw[i]!]!;
    const startMs = ms;
    push(pcm);
    placed.push({ item, startMs, endMs: ms });
  }
  push(gap);
  writeFileSync(out, Buffer.concat(parts));
  return placed;
}

function decode(rawFile: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('pocketsphinx_continuous', ['-infile', rawFile, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => (out += s));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`pocketsphinx_continuous exited ${code}`))));
  });
}

/**
 * Runs the spotter over a raw 16 kHz file, started as the engine starts it (`settings` default:
 * what ships); returns every detection with its score.
 */
export async function runKws(rawFile: string, kwsFile: string, settings: SpotterSettings = SPOTTER_DEFAULTS): Promise<Detection[]> {
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-kws-run-'));
  let out: string;
  try {
    out = await decode(rawFile, prepareSpotter(settings, DEFAULT_MODEL_DIR, dir)(kwsFile));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const detections: Detection[] = [];
  for (const line of out.split('\n')) {
    const m = /^(.*\S)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+([\d.]+(?:e[-+]?\d+)?)$/.exec(line);
    if (m === null) continue;
    // pocketsphinx prints a segment's last frame; it ends one 10 ms frame later.
    detections.push({ phrase: m[1]!.trim(), startMs: Number(m[2]) * 1000, endMs: Number(m[3]) * 1000 + 10, score: scoreLog10(Number(m[4])) });
  }
  return detections;
}

/** Runs the language-model recogniser (the engine's flags) over a raw 16 kHz file: its words, stream ms. */
export async function runLm(rawFile: string): Promise<MappedWord[]> {
  const out = await decode(rawFile, LM_DECODER_ARGS);
  const words: MappedWord[] = [];
  const parser = new ContinuousOutputParser('lm', (ws) => {
    for (const w of ws) words.push({ word: w.word, startMs: w.start * 1000, endMs: w.end * 1000 + 10, confidence: w.confidence });
  });
  parser.push(out);
  parser.flush();
  return words;
}

/** Detections that lie (by their middle) inside a placed clip, grouped by clip index. */
export function attribute<T>(placed: readonly Placed<T>[], detections: readonly Detection[]): Detection[][] {
  const out: Detection[][] = placed.map(() => []);
  const sorted = [...detections].sort((a, b) => a.startMs - b.startMs);
  let j = 0;
  for (const d of sorted) {
    const mid = (d.startMs + d.endMs) / 2;
    while (j < placed.length && placed[j]!.endMs < mid) j++;
    if (j < placed.length && placed[j]!.startMs <= mid) out[j]!.push(d);
  }
  return out;
}
