/**
 * One transcribed track on pocketsphinx: the track's audio is upsampled once and queued to
 * up to two recogniser processes.
 *
 *   write(pcm8k) ─► Upsampler8kTo16k ─┬─► lm process  (language model) ─► transcripts ─┐
 *                                     └─► kws process (keyword spotting) ─► spots ─► PhraseVerifier ─► phrases
 *
 * Phrases come from both: the spotter finds them in speech the language model gets wrong
 * (synthetic or noisy voices), checked against the transcript (phrase-verifier.ts); a transcript
 * that contains the phrase word for word reports it directly. A phrase reported again within
 * PHRASE_DEDUPE_MS of an earlier report is the same one.
 *
 * Opened with `transcribe: false` (the sink's transcription slots are taken) only the spotter
 * runs, and its spots are reported unchecked; `startTranscribing()` adds the lm process later.
 */
import { upsample8kTo16k, Upsampler8kTo16k } from '../../dsp/resample.js';
import type { TranscriptResult } from '../../../core/transcript.js';
import type { EngineSession, EngineSessionOptions } from './engine.js';
import { acceptSpot, PhraseVerifier, type SpotRule } from './phrase-verifier.js';
import { findPhrase } from './phrases.js';
import { RecognizerProcess, type MappedWord, type RecognizerProcessOptions } from './pocketsphinx-process.js';

/** 20 ms frames of 16 kHz audio, the unit `onDrop` counts in. */
const SAMPLES_16K_PER_FRAME = 320;
const PHRASE_DEDUPE_MS = 1500;

/** What the engine gives each session: how to start its processes. */
export interface SessionProcessConfig {
  command: string;
  lmArgs: readonly string[];
  /** Arguments for the spotter, or null when no phrase is usable. */
  kwsArgs: readonly string[] | null;
  /** How each phrase's spots are judged (phrase-verifier.ts). */
  spotRules: ReadonlyMap<string, SpotRule>;
  primer: Int16Array | null;
  ringSamples: number;
  setPumping: RecognizerProcessOptions['setPumping'];
  /** Check spots against the transcript (default in the engine: true). */
  verifySpots: boolean;
  /** Linear interpolation instead of the low-pass filter (benches only: it costs accuracy). */
  linearUpsampling: boolean;
  /** Called once both processes are gone. */
  onEnded(session: PocketsphinxSession): void;
}

export class PocketsphinxSession implements EngineSession {
  readonly #opts: EngineSessionOptions;
  readonly #phrases: readonly string[];
  readonly #up = new Upsampler8kTo16k();
  /** For linear upsampling: the previous frame's last sample; NaN when the filter is used. */
  #prevSample: number;
  #scratch = new Int16Array(2 * 160);
  #lm: RecognizerProcess | null = null;
  readonly #kws: RecognizerProcess | null;
  readonly #config: SessionProcessConfig;
  /** Media time of the first audio the lm process got; spots before it are not checked. */
  #lmFromMs = Number.NaN;
  /** Last report of each phrase (its start, media ms), for de-duplication. */
  readonly #lastHit = new Map<string, number>();
  #ended: Promise<void> | null = null;
  readonly #onEnded: (session: PocketsphinxSession) => void;
  readonly #verifier: PhraseVerifier | null;

  constructor(opts: EngineSessionOptions, phrases: readonly string[], config: SessionProcessConfig) {
    this.#opts = opts;
    this.#phrases = phrases;
    this.#onEnded = config.onEnded;
    this.#prevSample = config.linearUpsampling ? 0 : Number.NaN;
    this.#verifier = config.verifySpots
      ? new PhraseVerifier(
          (hit) => this.#onPhrase(hit.phrase, hit.startMs, hit.endMs),
          (hit, word) => opts.log.debug({ hit, word }, word === null ? 'spotted phrase rejected: too weak or too short' : 'spotted phrase rejected: transcript heard another word'),
          (phrase) => this.#rule(phrase),
        )
      : null;
    this.#config = config;
    this.#kws =
      config.kwsArgs === null
        ? null
        : new RecognizerProcess({
            ...this.#common(),
            mode: 'kws',
            args: config.kwsArgs,
            log: opts.log.child({ recogniser: 'kws' }),
            onWords: (words) => {
              for (const w of words) {
                const hit = { phrase: w.word, startMs: w.startMs, endMs: w.endMs, score: w.score };
                opts.log.debug({ hit }, 'phrase spotted');
                if (this.#verifier === null) this.#onPhrase(hit.phrase, hit.startMs, hit.endMs);
                // No transcript of this stretch will come: only a spot strong enough alone counts.
                else if (!(hit.startMs >= this.#lmFromMs)) {
                  if (acceptSpot(hit, this.#rule(hit.phrase), null)) this.#onPhrase(hit.phrase, hit.startMs, hit.endMs);
                } else this.#verifier.addSpotted(hit);
              }
            },
          });
    if (opts.transcribe !== false) this.startTranscribing();
  }

  #rule(phrase: string): SpotRule {
    return this.#config.spotRules.get(phrase) ?? { alone: Number.NEGATIVE_INFINITY, confirmed: Number.NEGATIVE_INFINITY, trusted: Number.POSITIVE_INFINITY, minMs: 0 };
  }

  startTranscribing(): void {
    if (this.#lm !== null || this.#ended !== null) return;
    const opts = this.#opts;
    const config = this.#config;
    this.#lm = new RecognizerProcess({
      ...this.#common(),
      mode: 'lm',
      args: config.lmArgs,
      log: opts.log.child({ recogniser: 'lm' }),
      onWords: (words) => this.#onTranscript(words),
    });
  }

  #common(): Omit<RecognizerProcessOptions, 'mode' | 'args' | 'log' | 'onWords'> {
    const opts = this.#opts;
    const config = this.#config;
    return {
      command: config.command,
      primer: config.primer,
      ringSamples: config.ringSamples,
      setPumping: config.setPumping,
      onDrop: (samples: number) => opts.onDrop(Math.ceil(samples / SAMPLES_16K_PER_FRAME)),
      onRestart: () => opts.onRestart?.(),
      onError: (err: Error) => opts.onError?.(err),
    };
  }

  write(pcm8k: Int16Array, samples: number, mediaTimestampMs: number): void {
    if (this.#ended !== null) return;
    if (this.#scratch.length < 2 * samples) this.#scratch = new Int16Array(2 * samples);
    const n = 2 * samples;
    if (Number.isNaN(this.#prevSample)) this.#up.process(pcm8k, samples, this.#scratch);
    else this.#prevSample = upsample8kTo16k(pcm8k, samples, this.#scratch, this.#prevSample);
    if (this.#lm !== null) {
      if (Number.isNaN(this.#lmFromMs)) this.#lmFromMs = mediaTimestampMs;
      this.#lm.push(this.#scratch, n, mediaTimestampMs);
    }
    this.#kws?.push(this.#scratch, n, mediaTimestampMs);
  }

  end(): Promise<void> {
    this.#ended ??= Promise.all([this.#lm?.end(), this.#kws?.end()]).then(() => this.#finish());
    return this.#ended;
  }

  /** Stops at once (gateway shutdown): queued audio is not decoded. */
  kill(): Promise<void> {
    this.#ended = Promise.all([this.#lm?.kill(), this.#kws?.kill()]).then(() => this.#finish());
    return this.#ended;
  }

  /** Recogniser pids (for supervision tests and diagnostics); null while restarting. */
  pids(): { lm: number | null; kws: number | null } {
    return { lm: this.#lm?.pid ?? null, kws: this.#kws?.pid ?? null };
  }

  /** Restarts over both processes. */
  get restarts(): number {
    return (this.#lm?.restarts ?? 0) + (this.#kws?.restarts ?? 0);
  }

  /** 16 kHz samples waiting to be decoded (language-model process). */
  get queuedSamples(): number {
    return this.#lm?.queued ?? 0;
  }

  #finish(): void {
    this.#verifier?.close();
    this.#onEnded(this);
  }

  #onTranscript(words: MappedWord[]): void {
    let text = words[0]!.word;
    for (let i = 1; i < words.length; i++) text += ' ' + words[i]!.word;
    const result: TranscriptResult = {
      text,
      isFinal: true,
      words,
      startMs: words[0]!.startMs,
      endMs: words[words.length - 1]!.endMs,
    };
    this.#opts.onResult(result);
    this.#verifier?.addTranscript(words);
    for (const phrase of this.#phrases) {
      for (const i of findPhrase(words, phrase)) {
        const last = words[i + phrase.split(' ').length - 1]!;
        this.#onPhrase(phrase, words[i]!.startMs, last.endMs);
      }
    }
  }

  #onPhrase(phrase: string, startMs: number, endMs: number): void {
    const previous = this.#lastHit.get(phrase);
    if (previous !== undefined && Math.abs(startMs - previous) < PHRASE_DEDUPE_MS) return;
    this.#lastHit.set(phrase, startMs);
    this.#opts.onPhrase({ phrase, startMs, endMs });
  }
}
