/**
 * The pocketsphinx engine: CMU pocketsphinx 0.8 (Debian `pocketsphinx` + `pocketsphinx-en-us`)
 * as one `pocketsphinx_continuous` process per transcribed track, plus a keyword-spotting
 * process when rule phrases are given. See pocketsphinx-session.ts for a track's pipeline and
 * pocketsphinx-process.ts for supervision.
 *
 * Settings, measured on the fixtures with bench/transcription.bench.ts (2-core KVM guest):
 * - `-maxhmmpf 3000 -fwdflat no` halves CPU against the default search (RTF 0.07 vs 0.14 on a
 *   long stream) at the same word error rate (3.4 % on the flite WER set); dropping bestpath
 *   as well saves little CPU and costs accuracy (5.2 %).
 * - `-vad_postspeech 30`: 0.3 s of silence ends an utterance; results arrive ~0.35-0.42 s after
 *   the last word's audio is written.
 * - Spotter: the arguments of spotter-args.ts (also what bench/lib/kws-run.ts decodes with), thresholds per phrase from its phone count (phrases.ts spotRule,
 *   calibrated with bench/phrases.bench.ts), or the rule's `threshold:`; spots judged by their
 *   strength and length, the weaker ones checked against the transcript (phrase-verifier.ts).
 */
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';
import type { EngineSession, EngineSessionOptions, SpeechEngine } from './engine.js';
import type { SpotRule } from './phrase-verifier.js';
import { checkPhrases, kwsFileContent, normalizePhrase, spotRule, type UsablePhrase } from './phrases.js';
import type { RecognizerProcess } from './pocketsphinx-process.js';
import { PocketsphinxSession } from './pocketsphinx-session.js';
import { findPrimerPath, loadPrimer } from './primer.js';
import { prepareSpotter, SPOTTER_DEFAULTS } from './spotter-args.js';

/** Where Debian's pocketsphinx-en-us puts the model the binary was built to use. */
export const DEFAULT_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';
export const POCKETSPHINX_COMMAND = 'pocketsphinx_continuous';

/** Transcription decoder: language model, word times, early end of utterance, pruned search. */
export const LM_DECODER_ARGS: readonly string[] = [
  '-logfn', '/dev/null',
  '-time', 'yes',
  '-vad_postspeech', '30',
  '-maxhmmpf', '3000',
  '-fwdflat', 'no',
];

export interface PocketsphinxEngineOptions {
  log: Logger;
  /** Executable name or path; default `pocketsphinx_continuous` on PATH. */
  command?: string;
  /** Model directory (for the phrase dictionary check); default DEFAULT_MODEL_DIR. */
  modelDir?: string;
  /**
   * Warm-up clip (8 kHz mu-law) the language-model recogniser decodes first, and a restarted
   * spotter (pocketsphinx-process.ts `primer`); default the shipped fixture; null for none.
   */
  primerPath?: string | null;
  /** Audio each recogniser may fall behind by before the oldest is dropped; default 8 s. */
  bufferSeconds?: number;
  /** One keyword-spotting threshold for every phrase (benches); default per phrase, below. */
  kwsThreshold?: number;
  /**
   * The rule phrases, when known at start-up: checked now (the 3.5 MB dictionary is read here,
   * not on the event loop of the first stream's open, and unusable phrases are logged at once).
   */
  phrases?: readonly string[];
  /** Thresholds by phrase (rules' `threshold:`; the lowest wins); others get defaultKwsThreshold(phones). */
  phraseThresholds?: ReadonlyMap<string, number>;
  /** Keyword-spotting phone-loop probability; default spotter-args.ts KWS_PLP. */
  kwsPlp?: number;
  /** Check spotted phrases against the transcript (phrase-verifier.ts); default true. */
  verifySpots?: boolean;
  /** 8→16 kHz interpolation; 'linear' only to measure what the filter buys (benches). */
  upsampler?: 'fir' | 'linear';
  /** Replaces LM_DECODER_ARGS (tuning, benches). */
  lmArgs?: readonly string[];
  /** The spotter's starting cepstral mean; default spotter-args.ts TELEPHONE_CMN_INIT; null for the model's own. */
  cmnInit?: string | null;
}

/** Ticks of the shared pump that moves queued audio into the recognisers. */
const PUMP_INTERVAL_MS = 50;

class PocketsphinxEngine implements SpeechEngine {
  readonly name = 'pocketsphinx';
  readonly #log: Logger;
  readonly #command: string;
  readonly #dictPath: string;
  readonly #primer: Int16Array | null;
  readonly #ringSamples: number;
  readonly #kwsThreshold: number | undefined;
  readonly #phraseThresholds = new Map<string, number>();
  readonly #lmArgs: readonly string[];
  /** The spotter's arguments for a phrase file (spotter-args.ts). */
  readonly #spotterArgs: (kwsFile: string) => string[];
  readonly #verifySpots: boolean;
  readonly #linear: boolean;
  readonly #sessions = new Set<PocketsphinxSession>();
  /** Processes with audio to move; one ticker serves them all (no timer per stream). */
  readonly #pumping = new Set<RecognizerProcess>();
  #ticker: NodeJS.Timeout | null = null;
  #kwsDir: string | null = null;
  readonly #kwsFiles = new Map<string, string>();
  readonly #warnedPhrases = new Set<string>();
  #shutdown = false;

  constructor(opts: PocketsphinxEngineOptions) {
    this.#log = opts.log;
    this.#command = opts.command ?? POCKETSPHINX_COMMAND;
    this.#dictPath = join(opts.modelDir ?? DEFAULT_MODEL_DIR, 'cmudict-en-us.dict');
    this.#ringSamples = Math.round((opts.bufferSeconds ?? 8) * 16000);
    this.#kwsThreshold = opts.kwsThreshold;
    for (const [raw, t] of opts.phraseThresholds ?? []) {
      // Two rules naming the same phrase: the more sensitive threshold serves both.
      const phrase = normalizePhrase(raw);
      this.#phraseThresholds.set(phrase, Math.min(t, this.#phraseThresholds.get(phrase) ?? Number.POSITIVE_INFINITY));
    }
    const settings = {
      kwsPlp: opts.kwsPlp ?? SPOTTER_DEFAULTS.kwsPlp,
      cmnInit: opts.cmnInit === undefined ? SPOTTER_DEFAULTS.cmnInit : opts.cmnInit,
    };
    this.#kwsDir = mkdtempSync(join(tmpdir(), 'streamgate-pocketsphinx-'));
    this.#spotterArgs = prepareSpotter(settings, opts.modelDir ?? DEFAULT_MODEL_DIR, this.#kwsDir);
    this.#lmArgs = opts.lmArgs ?? LM_DECODER_ARGS;
    this.#verifySpots = opts.verifySpots ?? true;
    this.#linear = opts.upsampler === 'linear';
    if (opts.phrases !== undefined) this.#usablePhrases(opts.phrases);
    const primerPath = opts.primerPath === undefined ? findPrimerPath() : opts.primerPath;
    this.#primer = primerPath === null ? null : loadPrimer(primerPath);
    if (primerPath === null && opts.primerPath === undefined) {
      this.#log.warn('speech primer clip not found; first utterances of each track may be less accurate');
    }
  }

  open(opts: EngineSessionOptions): EngineSession {
    const phrases = this.#usablePhrases(opts.phrases);
    const rules = new Map(phrases.map((p) => [p.phrase, this.#spotRule(p)]));
    const session = new PocketsphinxSession(opts, phrases.map((p) => p.phrase), {
      command: this.#command,
      lmArgs: this.#lmArgs,
      kwsArgs: phrases.length === 0 ? null : this.#kwsArgs(rules),
      spotRules: rules,
      primer: this.#primer,
      ringSamples: this.#ringSamples,
      setPumping: (proc, on) => this.#setPumping(proc, on),
      verifySpots: this.#verifySpots,
      linearUpsampling: this.#linear,
      onEnded: (s) => this.#sessions.delete(s),
    });
    this.#sessions.add(session);
    return session;
  }

  async shutdown(): Promise<void> {
    if (this.#shutdown) return;
    this.#shutdown = true;
    await Promise.all(Array.from(this.#sessions, (s) => s.kill()));
    this.#sessions.clear();
    if (this.#ticker !== null) clearInterval(this.#ticker);
    this.#ticker = null;
    if (this.#kwsDir !== null) rmSync(this.#kwsDir, { recursive: true, force: true });
    this.#kwsDir = null;
  }

  #usablePhrases(phrases: readonly string[]): UsablePhrase[] {
    if (phrases.length === 0) return [];
    const { usable, rejected } = checkPhrases(phrases, this.#dictPath);
    for (const r of rejected) {
      if (this.#warnedPhrases.has(r.phrase)) continue;
      this.#warnedPhrases.add(r.phrase);
      this.#log.warn({ phrase: r.phrase, missing: r.missing }, 'phrase has words the recogniser does not know; not spotted');
    }
    return usable;
  }

  #spotRule(p: UsablePhrase): SpotRule {
    return spotRule(p.phones, this.#kwsThreshold ?? this.#phraseThresholds.get(p.phrase));
  }

  #kwsArgs(rules: ReadonlyMap<string, SpotRule>): string[] {
    // The spotter fires down to each phrase's `confirmed` threshold; phrase-verifier.ts judges the rest.
    const content = kwsFileContent(Array.from(rules, ([phrase, r]) => ({ phrase, threshold: 10 ** r.confirmed })));
    let file = this.#kwsFiles.get(content);
    if (file === undefined) {
      // Written once per distinct phrase list (normally once per gateway), not per stream.
      this.#kwsDir ??= mkdtempSync(join(tmpdir(), 'streamgate-pocketsphinx-'));
      file = join(this.#kwsDir, `phrases-${this.#kwsFiles.size}.kws`);
      writeFileSync(file, content);
      this.#kwsFiles.set(content, file);
    }
    return this.#spotterArgs(file);
  }

  #setPumping(proc: RecognizerProcess, on: boolean): void {
    if (on) this.#pumping.add(proc);
    else this.#pumping.delete(proc);
    if (this.#pumping.size > 0 && this.#ticker === null) {
      this.#ticker = setInterval(() => {
        for (const p of this.#pumping) p.pump();
      }, PUMP_INTERVAL_MS);
      this.#ticker.unref();
    } else if (this.#pumping.size === 0 && this.#ticker !== null) {
      clearInterval(this.#ticker);
      this.#ticker = null;
    }
  }
}

/** Creates the pocketsphinx engine. Loads the primer now; starts no process until `open`. */
export function createPocketsphinxEngine(opts: PocketsphinxEngineOptions): SpeechEngine {
  return new PocketsphinxEngine(opts);
}

/**
 * True when `pocketsphinx_continuous`, bash (used to hand it a real pipe) and the en-us model
 * are present, i.e. the default engine can run.
 */
export function isPocketsphinxInstalled(modelDir: string = DEFAULT_MODEL_DIR): boolean {
  return (
    findExecutable(POCKETSPHINX_COMMAND) !== null &&
    findExecutable('bash') !== null &&
    existsSync(join(modelDir, 'en-us.lm.bin'))
  );
}

function findExecutable(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  return null;
}
