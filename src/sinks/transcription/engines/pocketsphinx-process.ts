/**
 * One supervised `pocketsphinx_continuous` process fed from a bounded ring.
 *
 *            push() (hot path, sync)          pump() (ticker / 'drain')
 *   16 kHz ──────────► AudioRing ──────────────► child stdin ──► pocketsphinx ──► stdout
 *                        │ drop oldest when full      │ TimeMap: input pos → media ms   │
 *                        ▼                            ▼                                ▼
 *                      onDrop                   maps segment times ◄── ContinuousOutputParser
 *
 * States:
 *
 *   RUNNING ──exit──► WAITING ──timer──► RUNNING     (restart: counted, primer, then the audio
 *      │                 │                             sent but not yet reported on is replayed)
 *      │ end()           │ end(): restart now, then ENDING
 *      ▼                                             more than 5 exits in a minute ──► FAILED
 *   ENDING ──exit──► CLOSED ◄── end()/kill() ── FAILED
 *
 * Results end utterances; everything the recogniser reported on is committed in the ring, the
 * rest stays there (bounded by the ring) so a crash loses no audio that was still buffered.
 *
 * Why a shell: pocketsphinx 0.8's continuous tool reads only from `-infile`, and Node's child
 * stdio pipes are socketpairs, which `/dev/stdin` cannot be opened on. bash's process
 * substitution gives it a real pipe (`<(cat)`) while pocketsphinx itself stays the direct child
 * (its pid is ours to kill and its exit is seen at once); `cat` ends when our stdin closes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { AudioRing, TimeMap } from './audio-ring.js';
import { ContinuousOutputParser, type RawWord } from './pocketsphinx-output.js';

/** A recognised word or spotted phrase on the media clock. */
export interface MappedWord {
  word: string;
  startMs: number;
  endMs: number;
  confidence: number;
  /** Spotted phrase: log10 of the largest spotting threshold it passes. */
  score?: number;
}

export interface RecognizerProcessOptions {
  mode: 'lm' | 'kws';
  /** The pocketsphinx_continuous executable. */
  command: string;
  /** Decoder arguments (everything but `-infile`). */
  args: readonly string[];
  /**
   * 16 kHz audio decoded (and discarded) before the stream's, or null: by the language-model
   * decoder always, by the spotter only after a restart (a fresh one starts from the telephone
   * cepstral mean, spotter-args.ts TELEPHONE_CMN_INIT). pocketsphinx replaces its starting mean
   * with the mean of its first utterance however short, and a replay starts right after the last
   * reported word, where a fraction of a second of speech tail can remain: as a first utterance
   * it set the mean the next sentence was decoded with ("i would like to our borough large dip
   * into…" for "i would like to order a large pizza…"); after the primer's utterance it does not.
   */
  primer: Int16Array | null;
  /** Ring size in 16 kHz samples. */
  ringSamples: number;
  log: Logger;
  /** Words of one utterance (lm) or one spotted phrase (kws), in order. */
  onWords(words: MappedWord[]): void;
  /** Samples of stream audio dropped (ring full, or left over when the process could not go on). */
  onDrop(samples: number): void;
  onRestart(): void;
  onError(err: Error): void;
  /** Called when the process wants pumping registered / no longer needs it. */
  setPumping(proc: RecognizerProcess, on: boolean): void;
}

const enum State {
  Running,
  Waiting,
  Ending,
  Closed,
  Failed,
}

/** Bytes per chunk written to stdin: pocketsphinx reads 2048 samples at a time. */
const CHUNK_SAMPLES = 4096;
/** More exits than this within RESTART_WINDOW_MS means it cannot run here: give up. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const MAX_BACKOFF_MS = 4000;
/** An utterance left without `</s>` this long after output stopped is taken as complete. */
const OUTPUT_IDLE_MS = 200;
/** end(): how long the recogniser may take to finish its input before it is killed. */
const END_TIMEOUT_MS = 15_000;
const STDERR_KEEP = 2048;

/** pocketsphinx prints a segment's last frame; the segment ends one 10 ms frame later. */
const FRAME_SECONDS = 0.01;
/**
 * Silence fed where the audio is not continuous (a gap on the wire, audio dropped here): the gap
 * itself up to this long, so the recogniser's voice detector closes the utterance before the
 * splice (-vad_postspeech is 0.3 s) instead of gluing two stretches of speech into one.
 */
const MAX_SEPARATOR_MS = 400;
const SEPARATOR = Buffer.alloc(MAX_SEPARATOR_MS * 16 * 2);

export class RecognizerProcess {
  readonly #opts: RecognizerProcessOptions;
  readonly #ring: AudioRing;
  readonly #timeMap = new TimeMap();
  #state: State = State.Running;
  #child: ChildProcess | null = null;
  /** Samples written to the current child (primer included). */
  #enginePos = 0;
  #blocked = false;
  #stdinEnded = false;
  /** Media time where the audio last fed to the current child ended; NaN before any. */
  #fedUntilMs = Number.NaN;
  #stderrTail = '';
  #idleTimer: NodeJS.Timeout | null = null;
  #restartTimer: NodeJS.Timeout | null = null;
  readonly #exitTimes: number[] = [];
  #endResolve: (() => void) | null = null;
  readonly #ended: Promise<void>;
  /** Restarts after unexpected exits, over the life of this object. */
  restarts = 0;

  constructor(opts: RecognizerProcessOptions) {
    this.#opts = opts;
    this.#ring = new AudioRing(opts.ringSamples);
    this.#ended = new Promise((resolve) => (this.#endResolve = resolve));
    this.#spawn();
  }

  /** pid of the recogniser (pocketsphinx itself), null between restarts. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Unread samples in the ring. */
  get queued(): number {
    return this.#ring.available;
  }

  /** Queues `n` samples of 16 kHz audio starting at media time `mediaMs`. Sync, bounded. */
  push(pcm16k: Int16Array, n: number, mediaMs: number): void {
    if (this.#state !== State.Running && this.#state !== State.Waiting) return;
    const dropped = this.#ring.push(pcm16k, n, mediaMs);
    if (dropped > 0) this.#opts.onDrop(dropped);
  }

  /** Moves queued audio to the child until it pushes back. Called by the engine's ticker. */
  pump(): void {
    const child = this.#child;
    if (child === null || this.#blocked || this.#stdinEnded) return;
    if (this.#state !== State.Running && this.#state !== State.Ending) return;
    const stdin = child.stdin!;
    while (this.#ring.available > 0) {
      const want = Math.min(this.#ring.available, CHUNK_SAMPLES);
      const buf = Buffer.allocUnsafeSlow(want * 2);
      // Host byte order: pocketsphinx reads raw native-endian samples (x86/ARM: little).
      const view = new Int16Array(buf.buffer, buf.byteOffset, want);
      const ringPos = this.#ring.readPos;
      const mediaMs = this.#ring.mediaMsAt(ringPos);
      const n = this.#ring.read(view, want);
      const gapMs = mediaMs - this.#fedUntilMs;
      if (gapMs !== 0 && !Number.isNaN(gapMs)) {
        const sepMs = gapMs > 0 && gapMs < MAX_SEPARATOR_MS ? Math.round(gapMs) : MAX_SEPARATOR_MS;
        stdin.write(SEPARATOR.subarray(0, sepMs * 32));
        this.#enginePos += sepMs * 16;
      }
      this.#fedUntilMs = mediaMs + n / 16;
      this.#timeMap.append(this.#enginePos, mediaMs, ringPos);
      this.#enginePos += n;
      if (!stdin.write(n === want ? buf : buf.subarray(0, n * 2))) {
        this.#blocked = true;
        return;
      }
    }
    if (this.#state === State.Ending) {
      this.#stdinEnded = true;
      stdin.end();
    }
  }

  /**
   * Lets the recogniser finish the queued audio, then delivers its last results and resolves.
   * Never rejects; a recogniser that does not finish in time is killed.
   */
  end(): Promise<void> {
    if (this.#state === State.Waiting) {
      // Restarting: start now rather than after the backoff, so queued audio is decoded.
      if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
      this.#restartTimer = null;
      this.#state = State.Running;
      this.#spawn();
    }
    switch (this.#state) {
      case State.Running: {
        this.#state = State.Ending;
        this.pump();
        const timer = setTimeout(() => this.#child?.kill('SIGKILL'), END_TIMEOUT_MS);
        timer.unref();
        void this.#ended.then(() => clearTimeout(timer));
        break;
      }
      case State.Failed:
        this.#close();
        break;
      default:
        break;
    }
    return this.#ended;
  }

  /** Kills the recogniser now (gateway shutdown); pending results are delivered. */
  kill(): Promise<void> {
    if (this.#state === State.Waiting) {
      if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
      this.#close();
      return this.#ended;
    }
    if (this.#state === State.Running || this.#state === State.Ending) {
      this.#state = State.Ending;
      this.#child?.kill('SIGKILL');
      return this.#ended;
    }
    return this.end();
  }

  #spawn(): void {
    const opts = this.#opts;
    const child = spawn(
      'bash',
      ['-c', 'exec "$0" -infile <(exec cat 2>/dev/null) "$@"', opts.command, ...opts.args],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.#child = child;
    this.#enginePos = 0;
    this.#blocked = false;
    this.#stdinEnded = false;
    this.#fedUntilMs = Number.NaN;
    this.#timeMap.reset();
    // Audio the previous process was given but never reported on is given to this one.
    const replayed = this.#ring.rewind();
    if (replayed > 0) opts.log.debug({ replayedMs: replayed / 16 }, 'replaying audio sent to the previous recogniser');
    // A fresh parser per child: a dead child's half line must not join the next one's output.
    const parser = new ContinuousOutputParser(opts.mode, (words) => this.#onUtterance(words));

    child.stdin!.on('error', noop); // EPIPE when the child died first; its exit is handled below
    child.stdin!.on('drain', () => {
      this.#blocked = false;
      this.pump();
    });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (text: string) => this.#onStdout(parser, text));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      this.#stderrTail = (this.#stderrTail + text).slice(-STDERR_KEEP);
    });
    let gone = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null, err?: Error): void => {
      if (gone) return;
      gone = true;
      this.#onExit(child, parser, code, signal, err);
    };
    child.on('error', (err) => onGone(null, null, err));
    // 'close' comes after stdout is drained, so every result is parsed before the exit is handled.
    child.on('close', (code, signal) => onGone(code, signal));
    child.on('exit', () => {
      // Stop feeding at once; what was sent and not decoded is replayed to the next process.
      if (this.#child === child) this.#blocked = true;
      child.stdin!.destroy();
    });

    if (opts.primer !== null && (opts.mode === 'lm' || this.restarts > 0)) {
      child.stdin!.write(Buffer.from(opts.primer.buffer, opts.primer.byteOffset, opts.primer.byteLength));
      this.#enginePos = opts.primer.length;
    }
    opts.setPumping(this, true);
  }

  #onStdout(parser: ContinuousOutputParser, text: string): void {
    parser.push(text);
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (parser.hasPending) {
      this.#idleTimer = setTimeout(() => parser.flush(), OUTPUT_IDLE_MS);
      this.#idleTimer.unref();
    }
  }

  #onUtterance(raw: RawWord[]): void {
    const out: MappedWord[] = [];
    let firstPos = Number.POSITIVE_INFINITY;
    // Everything up to the end of this utterance is decoded: no need to replay it after a crash.
    const lastEnd = Math.round((raw[raw.length - 1]!.end + FRAME_SECONDS) * 16000);
    const ringPos = this.#timeMap.toRingPos(lastEnd);
    if (!Number.isNaN(ringPos)) this.#ring.commit(ringPos);
    for (const w of raw) {
      const startPos = Math.round(w.start * 16000);
      const startMs = this.#timeMap.toMediaMs(startPos);
      // Before the first mapped sample: the primer's words, not the stream's.
      if (Number.isNaN(startMs)) continue;
      const endMs = this.#timeMap.toMediaMs(Math.round((w.end + FRAME_SECONDS) * 16000));
      const word: MappedWord = { word: w.word, startMs: round1(startMs), endMs: round1(endMs), confidence: w.confidence };
      if (w.score !== undefined) word.score = w.score;
      out.push(word);
      if (startPos < firstPos) firstPos = startPos;
    }
    if (out.length === 0) return;
    this.#timeMap.pruneBefore(firstPos);
    try {
      this.#opts.onWords(out);
    } catch (err) {
      this.#opts.log.error({ err }, 'transcription result handler threw');
    }
  }

  #onExit(
    child: ChildProcess,
    parser: ContinuousOutputParser,
    code: number | null,
    signal: NodeJS.Signals | null,
    err: Error | undefined,
  ): void {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    parser.flush();
    if (this.#child === child) this.#child = null;
    this.#opts.setPumping(this, false);
    const log = this.#opts.log;

    if (this.#state === State.Ending) {
      if (code !== 0) log.debug({ code, signal, mode: this.#opts.mode }, 'recogniser ended abnormally at end');
      this.#close();
      return;
    }
    if (this.#state !== State.Running) return;

    const now = Date.now();
    this.#exitTimes.push(now);
    while (this.#exitTimes.length > 0 && this.#exitTimes[0]! < now - RESTART_WINDOW_MS) this.#exitTimes.shift();
    const detail = { code, signal, mode: this.#opts.mode, err, stderr: this.#stderrTail.trim() || undefined };
    if (err !== undefined || this.#exitTimes.length > MAX_RESTARTS) {
      this.#state = State.Failed;
      const dropped = this.#ring.available;
      if (dropped > 0) this.#opts.onDrop(dropped);
      log.error(detail, 'speech recogniser cannot run; this track is no longer transcribed');
      this.#opts.onError(err ?? new Error(`pocketsphinx exited ${this.#exitTimes.length} times within a minute`));
      return;
    }
    this.restarts++;
    this.#state = State.Waiting;
    const delay = this.#exitTimes.length <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 250 * 2 ** (this.#exitTimes.length - 2));
    log.warn({ ...detail, restarts: this.restarts, delayMs: delay }, 'speech recogniser exited; restarting');
    this.#opts.onRestart();
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (this.#state !== State.Waiting) return;
      this.#state = State.Running;
      this.#spawn();
    }, delay);
    this.#restartTimer.unref();
  }

  #close(): void {
    if (this.#state === State.Closed) return;
    this.#state = State.Closed;
    this.#opts.setPumping(this, false);
    this.#endResolve?.();
    this.#endResolve = null;
  }
}

function round1(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function noop(): void {}
