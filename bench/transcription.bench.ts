/**
 * Transcription bench: word error rate, real-time factor, memory and result latency of the
 * pocketsphinx engine on the speech fixtures, and how well it spots the rule phrase.
 *
 * Each run feeds every fixture clip (1 s of silence between clips) into ONE engine session, as
 * one long call would, as fast as the recogniser takes it (the ring is kept under 2 s), and
 * attributes results to clips by media time. CPU is the recogniser processes' own user+system
 * time (Linux: this process's cutime/cstime from /proc/self/stat, which counts reaped
 * children); RTF = CPU seconds / audio seconds, startup included.
 *
 *   1. recogniser variants: shipped (32-tap filter, pruned search), linear interpolation
 *      instead of the filter, the brief's flags (+ -bestpath no), pocketsphinx defaults
 *   2. phrase spotting: spotter thresholds × transcript check on/off
 *   3. latency at real time: ms from writing the audio that ends a result to the result
 *   4. the real Twilio capture (test/fixtures/twilio-captures/hello-world.jsonl, 8 kHz phone
 *      audio, no reference text): CPU and wall RTF, startup CPU, RSS, the transcript, spotter
 *      hits and latency at real time
 *
 * Usage: npx tsx bench/transcription.bench.ts   (or node dist/bench/transcription.bench.js)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TranscriptResult } from '../src/core/transcript.js';
import type { PhraseHit } from '../src/sinks/transcription/engines/engine.js';
import { contradictingWord } from '../src/sinks/transcription/engines/phrase-verifier.js';
import {
  createPocketsphinxEngine,
  isPocketsphinxInstalled,
  LM_DECODER_ARGS,
  type PocketsphinxEngineOptions,
} from '../src/sinks/transcription/engines/pocketsphinx.js';
import type { PocketsphinxSession } from '../src/sinks/transcription/engines/pocketsphinx-session.js';
import type { MappedWord } from '../src/sinks/transcription/engines/pocketsphinx-process.js';
import { listSpeechClips, readClipPcm, speechClip, type SpeechClip } from '../src/sinks/transcription/speech-fixtures.js';
import { wordErrorRate } from '../src/sinks/transcription/wer.js';
import { WriteClock } from '../src/sinks/transcription/write-clock.js';
import { MULAW_TO_PCM } from '../src/twilio/mulaw.js';
import { parseCapture } from '../src/emulator/capture.js';
import { pino } from 'pino';
import { fmt, machineLine, mdTable, percentile } from './lib/stats.js';

const log = pino({ level: 'silent' });
const PHRASE = 'end the conference';
const GAP_MS = 1000;
const CLK_TCK = 100;

/**
 * A stretch of audio to recognise: a speech fixture, or the real capture (which has `pcm` and
 * no reference text).
 */
interface BenchClip {
  file: string;
  kind: string;
  engine: string;
  text: string;
  durationMs: number;
  words?: SpeechClip['words'];
  pcm?: Int16Array;
}

interface PlacedClip {
  clip: BenchClip;
  atMs: number;
}

const CAPTURE_FILE = 'hello-world.jsonl';

/** The real capture's inbound audio, decoded (its frames are contiguous: 99..7339 ms in 20 ms steps). */
function captureClip(): BenchClip {
  const path = fileURLToPath(new URL(`../test/fixtures/twilio-captures/${CAPTURE_FILE}`, import.meta.url));
  const frames = parseCapture(readFileSync(path, 'utf8'), CAPTURE_FILE);
  const mulaw = Buffer.concat(frames.payloads.map((p) => Buffer.from(p, 'base64')));
  const pcm = new Int16Array(mulaw.length);
  for (let i = 0; i < mulaw.length; i++) pcm[i] = MULAW_TO_PCM[mulaw[i]!]!;
  return { file: CAPTURE_FILE, kind: 'capture', engine: 'real call (Twilio)', text: '', durationMs: pcm.length / 8, pcm };
}

function pcmOf(clip: BenchClip): Int16Array {
  return clip.pcm ?? readClipPcm(speechClip(clip.file));
}

interface RunResult {
  placed: PlacedClip[];
  results: TranscriptResult[];
  hits: PhraseHit[];
  audioSec: number;
  cpuSec: number;
  wallSec: number;
  /** Peak resident memory of the language-model process and the spotter, MB. */
  rssLmMb: number;
  rssKwsMb: number;
  latenciesMs: number[];
}

/** Children's CPU seconds so far (reaped children only). */
function childCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // After "pid (comm) ": state is field 3 → index 0; cutime is field 16, cstime 17.
  return (Number(fields[13]) + Number(fields[14])) / CLK_TCK;
}

function rssMb(pid: number | null): number {
  if (pid === null) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Feeds `clips` into one session of an engine made with `opts` (`perClip`: a fresh session,
 * i.e. fresh recogniser processes, for each clip, as for many short calls). `speed`: Infinity =
 * as fast as the recogniser takes it, 1 = real time.
 */
async function run(
  clips: readonly BenchClip[],
  opts: Omit<PocketsphinxEngineOptions, 'log'>,
  phrases: string[],
  { speed = Infinity, perClip = false }: { speed?: number; perClip?: boolean } = {},
): Promise<RunResult> {
  const engine = createPocketsphinxEngine({ log, bufferSeconds: 30, ...opts });
  const results: TranscriptResult[] = [];
  const hits: PhraseHit[] = [];
  const latenciesMs: number[] = [];
  const clock = new WriteClock();
  const cpu0 = childCpuSeconds();
  const t0 = performance.now();
  const open = () =>
    engine.open({
      log,
      phrases,
      onResult: (r) => {
        results.push(r);
        const wall = clock.wallAt(r.endMs);
        if (!Number.isNaN(wall)) latenciesMs.push(performance.now() - wall);
      },
      onPhrase: (p) => hits.push(p),
      onDrop: (n) => {
        throw new Error(`bench dropped ${n} frames; it must not`);
      },
    }) as PocketsphinxSession;

  let session = open();
  const placed: PlacedClip[] = [];
  let at = 0;
  let rssLm = 0;
  let rssKws = 0;
  const frame = new Int16Array(160);
  const quiet = new Int16Array(GAP_MS * 8);
  const started = performance.now();
  for (const clip of clips) {
    if (perClip && placed.length > 0) {
      await session.end();
      session = open();
    }
    placed.push({ clip, atMs: at });
    for (const pcm of [pcmOf(clip), quiet]) {
      for (let off = 0; off < pcm.length; off += 160) {
        const n = Math.min(160, pcm.length - off);
        for (let i = 0; i < n; i++) frame[i] = pcm[off + i]!;
        session.write(frame, n, at);
        at += n / 8;
        clock.record(at, performance.now());
        if (speed === Infinity) {
          // Keep at most ~2 s queued: as fast as the recogniser goes, nothing dropped.
          while (session.queuedSamples > 32_000) await sleep(10);
        } else {
          const wait = started + at / speed - performance.now();
          if (wait > 1) await sleep(wait);
        }
      }
      const pids = session.pids();
      rssLm = Math.max(rssLm, rssMb(pids.lm));
      rssKws = Math.max(rssKws, rssMb(pids.kws));
    }
  }
  await session.end();
  await engine.shutdown();
  return {
    placed,
    results,
    hits,
    audioSec: at / 1000,
    cpuSec: childCpuSeconds() - cpu0,
    wallSec: (performance.now() - t0) / 1000,
    rssLmMb: rssLm,
    rssKwsMb: rssKws,
    latenciesMs,
  };
}

/** Results whose middle lies within a clip's span. */
function resultsOf(r: RunResult, p: PlacedClip): TranscriptResult[] {
  return r.results.filter((x) => {
    const mid = (x.startMs + x.endMs) / 2;
    return mid >= p.atMs && mid < p.atMs + p.clip.durationMs + GAP_MS;
  });
}

function hitsOf(hits: PhraseHit[], p: PlacedClip): PhraseHit[] {
  return hits.filter((h) => h.startMs >= p.atMs - 200 && h.startMs < p.atMs + p.clip.durationMs + GAP_MS);
}

interface WerSummary {
  /** Pooled WER (errors / words) over the clips of `kinds`. */
  wer: number;
  words: number;
  /** Mean |start error| of recognised words matched to flite's word times, ms. */
  timingMeanMs: number;
  timingMaxMs: number;
}

function werOf(r: RunResult, kinds: (c: BenchClip) => boolean): WerSummary {
  let errors = 0;
  let words = 0;
  const timing: number[] = [];
  for (const p of r.placed) {
    if (!kinds(p.clip)) continue;
    const res = resultsOf(r, p);
    const w = wordErrorRate(p.clip.text, res.map((x) => x.text).join(' '));
    errors += w.errors;
    words += w.words;
    const heard = res.flatMap((x) => x.words);
    for (const ref of p.clip.words ?? []) {
      // The nearest recognised occurrence of the same word, within a second.
      let best = Number.POSITIVE_INFINITY;
      for (const x of heard) {
        const d = Math.abs(x.startMs - (p.atMs + ref.startMs));
        if (x.word === ref.word && d < best) best = d;
      }
      if (best < 1000) timing.push(best);
    }
  }
  return {
    wer: words === 0 ? NaN : errors / words,
    words,
    timingMeanMs: timing.length === 0 ? NaN : timing.reduce((a, b) => a + b, 0) / timing.length,
    timingMaxMs: timing.length === 0 ? NaN : Math.max(...timing),
  };
}

const isWer = (c: BenchClip) => c.kind === 'wer';
const isFliteSpeech = (c: BenchClip) => c.engine === 'flite' && c.kind !== 'primer';
const isEspeak = (c: BenchClip) => c.engine === 'espeak-ng';

interface SpotSummary {
  found: number;
  positives: number;
  falsePositives: number;
  negatives: number;
  nearMissFires: number;
  nearMisses: number;
  missed: string[];
  fired: string[];
}

function spotting(r: RunResult, verify: boolean): SpotSummary {
  const words: MappedWord[] = r.results.flatMap((x) => x.words);
  const hits = verify ? r.hits.filter((h) => contradictingWord(h, words) === null) : r.hits;
  const s: SpotSummary = { found: 0, positives: 0, falsePositives: 0, negatives: 0, nearMissFires: 0, nearMisses: 0, missed: [], fired: [] };
  for (const p of r.placed) {
    const fired = hitsOf(hits, p).length > 0;
    const name = p.clip.file.replace('.ulaw', '');
    if (` ${p.clip.text} `.includes(` ${PHRASE} `)) {
      s.positives++;
      if (fired) s.found++;
      else s.missed.push(name);
    } else if (p.clip.kind === 'near-miss') {
      s.nearMisses++;
      if (fired) s.nearMissFires++;
    } else {
      s.negatives++;
      if (fired) {
        s.falsePositives++;
        s.fired.push(name);
      }
    }
  }
  return s;
}

export interface TranscriptionBenchReport {
  machine: string;
  variants: { name: string; run: RunResult; wer: WerSummary; flite: WerSummary; espeak: WerSummary }[];
  kwsCpuRtf: number;
  spotting: { threshold: number; verify: boolean; perClip: boolean; s: SpotSummary }[];
  latency: RunResult;
  capture: {
    /** As fast as the recogniser takes it, no phrases. */
    fast: RunResult;
    /** CPU of a session given no audio: model load and primer, to see the RTF net of startup. */
    startupCpuSec: number;
    /** At real time with the rule phrase spotted (and checked against the transcript). */
    realTime: RunResult;
  };
}

export async function runTranscriptionBench(): Promise<TranscriptionBenchReport> {
  const clips = listSpeechClips().filter((c) => c.kind !== 'primer');
  const variants: TranscriptionBenchReport['variants'] = [];
  const configs: [string, Omit<PocketsphinxEngineOptions, 'log'>, boolean][] = [
    ['shipped: 32-tap filter, -maxhmmpf 3000 -fwdflat no', {}, false],
    ['linear interpolation instead of the filter', { upsampler: 'linear' }, false],
    ['brief flags: + -bestpath no', { lmArgs: [...LM_DECODER_ARGS, '-bestpath', 'no'] }, false],
    ['pocketsphinx default search', { lmArgs: ['-logfn', '/dev/null', '-time', 'yes', '-vad_postspeech', '30'] }, false],
    ['shipped, fresh processes per clip', {}, true],
    ['linear interpolation, fresh processes per clip', { upsampler: 'linear' }, true],
  ];
  for (const [name, opts, perClip] of configs) {
    const r = await run(clips, opts, [], { perClip });
    variants.push({ name, run: r, wer: werOf(r, isWer), flite: werOf(r, isFliteSpeech), espeak: werOf(r, isEspeak) });
    process.stderr.write('.');
  }

  const spots: TranscriptionBenchReport['spotting'] = [];
  let kwsCpuRtf = NaN;
  for (const perClip of [false, true]) {
    for (const threshold of [1e-5, 1e-10, 1e-20, 1e-30]) {
      if (perClip && threshold === 1e-30) continue;
      const r = await run(clips, { kwsThreshold: threshold, verifySpots: false }, [PHRASE], { perClip });
      if (threshold === 1e-10 && !perClip) kwsCpuRtf = (r.cpuSec - variants[0]!.run.cpuSec) / r.audioSec;
      for (const verify of [false, true]) spots.push({ threshold, verify, perClip, s: spotting(r, verify) });
      process.stderr.write('.');
    }
  }

  const latencyClips = clips.filter((c) => ['wer-1', 'demo-alice', 'demo-bob'].includes(c.file.replace('.ulaw', '')));
  const latency = await run(latencyClips, {}, [PHRASE], { speed: 1 });
  process.stderr.write('.');

  const capture = [captureClip()];
  const startup = await run([], {}, []);
  const fast = await run(capture, {}, []);
  const realTime = await run(capture, {}, [PHRASE], { speed: 1 });
  process.stderr.write('\n');
  return { machine: machineLine(), variants, kwsCpuRtf, spotting: spots, latency, capture: { fast, startupCpuSec: startup.cpuSec, realTime } };
}

export function transcriptionMarkdown(r: TranscriptionBenchReport): string {
  const a = mdTable(
    ['recogniser', 'WER wer-set', 'WER all flite', 'WER espeak-ng', 'word start err mean/max ms', 'CPU RTF', 'wall RTF', 'RSS MB'],
    r.variants.map((v) => [
      v.name,
      `${fmt(v.wer.wer * 100, 1)} % (${v.wer.words} w)`,
      `${fmt(v.flite.wer * 100, 1)} % (${v.flite.words} w)`,
      `${fmt(v.espeak.wer * 100, 0)} %`,
      `${fmt(v.flite.timingMeanMs, 0)} / ${fmt(v.flite.timingMaxMs, 0)}`,
      fmt(v.run.cpuSec / v.run.audioSec, 3),
      fmt(v.run.wallSec / v.run.audioSec, 3),
      fmt(v.run.rssLmMb, 0),
    ]),
  );
  const b = mdTable(
    ['sessions', 'spotter threshold', 'transcript check', 'phrase found', 'false positives (unrelated)', 'near misses firing'],
    r.spotting.map(({ threshold, verify, perClip, s }) => [
      perClip ? 'fresh per clip' : 'one for all clips',
      threshold.toExponential(0),
      verify ? 'on' : 'off',
      `${s.found}/${s.positives}${s.missed.length > 0 ? ` (missed ${s.missed.join(', ')})` : ''}`,
      `${s.falsePositives}/${s.negatives}${s.fired.length > 0 ? ` (${s.fired.join(', ')})` : ''}`,
      `${s.nearMissFires}/${s.nearMisses}`,
    ]),
  );
  const l = r.latency;
  const c = mdTable(
    ['at real time', 'results', 'latency p50 ms', 'latency max ms', 'spotter RSS MB', 'spotter CPU RTF (1e-10)'],
    [[`${fmt(l.audioSec, 1)} s of audio`, l.results.length, fmt(percentile(l.latenciesMs, 0.5), 0), fmt(Math.max(...l.latenciesMs), 0), fmt(l.rssKwsMb, 0), fmt(r.kwsCpuRtf, 3)]],
  );
  const cap = r.capture;
  const f = cap.fast;
  // The capture is followed by 1 s of silence like every clip; audio seconds count the speech only.
  const capSec = f.audioSec - GAP_MS / 1000;
  const d = mdTable(
    ['real capture', 'audio s', 'CPU s', 'CPU RTF', 'CPU RTF net of startup', 'wall RTF', 'RSS MB', 'results', 'spotter hits (real time)', 'latency p50 / max ms (real time)'],
    [
      [
        CAPTURE_FILE,
        fmt(capSec, 2),
        fmt(f.cpuSec, 2),
        fmt(f.cpuSec / capSec, 3),
        fmt((f.cpuSec - cap.startupCpuSec) / capSec, 3),
        fmt(f.wallSec / capSec, 3),
        fmt(f.rssLmMb, 0),
        f.results.length,
        cap.realTime.hits.length,
        `${fmt(percentile(cap.realTime.latenciesMs, 0.5), 0)} / ${fmt(Math.max(...cap.realTime.latenciesMs), 0)}`,
      ],
    ],
  );
  const said = (x: RunResult) => x.results.map((t) => `[${fmt(t.startMs, 0)}-${fmt(t.endMs, 0)} ms] "${t.text}"`).join(', ') || '(nothing)';
  const e = `Transcript of the capture (media ms from its first sample; startup CPU ${fmt(cap.startupCpuSec, 2)} s): as fast as possible ${said(f)}; at real time ${said(cap.realTime)}.`;
  const audio = r.variants[0]!.run.audioSec;
  return `Machine: ${r.machine}; ${fmt(audio, 1)} s of fixture audio per run.\n\n${a}\n\n${b}\n\n${c}\n\n${d}\n\n${e}`;
}

export async function main(): Promise<void> {
  if (!isPocketsphinxInstalled()) {
    process.stdout.write('pocketsphinx is not installed; nothing to measure\n');
    return;
  }
  process.stdout.write(transcriptionMarkdown(await runTranscriptionBench()) + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
