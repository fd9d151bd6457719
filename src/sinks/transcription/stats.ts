/**
 * Counters of the transcription sink kind, shared by all its streams and read by the gateway's
 * metrics at scrape time (plain numbers, nothing computed per frame). Frames dropped and
 * failures are counted in the SinkContext's `stats` (`dropped`, `errors`) as for every sink.
 */

/** Latency samples kept (the most recent); enough for percentiles at scrape time. */
export const LATENCY_SAMPLES = 1024;

export interface TranscriptionStats {
  /** Results delivered (`transcripts_total{kind}`); pocketsphinx gives finals only. */
  transcripts: { final: number; partial: number };
  /** Phrases reported on the bus. */
  phrases: number;
  /** Tracks that found every transcription slot (`maxStreams`) busy when they started. */
  capped: number;
  /** Tracks waiting for a transcription slot now (phrases still spotted). */
  waiting: number;
  /** Recogniser restarts after a crash. */
  restarts: number;
  /** Tracks holding a transcription slot now. */
  activeSessions: number;
  /**
   * Per track session, ms from the moment the audio ending its first result was written to the
   * engine until that result arrived: the engine's own delay, without the speaker's pause.
   */
  firstResultLatencyMs: LatencySamples;
  /** The same for every final result. */
  resultLatencyMs: LatencySamples;
}

/** A fixed-size ring of recent latency samples, ms. */
export class LatencySamples {
  readonly #values = new Float64Array(LATENCY_SAMPLES);
  #count = 0;

  add(ms: number): void {
    this.#values[this.#count % LATENCY_SAMPLES] = ms;
    this.#count++;
  }

  /** Samples recorded in total (not only those kept). */
  get count(): number {
    return this.#count;
  }

  /** The kept samples, oldest first (a copy). */
  values(): number[] {
    const n = Math.min(this.#count, LATENCY_SAMPLES);
    const out = new Array<number>(n);
    const start = this.#count - n;
    for (let i = 0; i < n; i++) out[i] = this.#values[(start + i) % LATENCY_SAMPLES]!;
    return out;
  }

  /** The q-quantile (0..1) of the kept samples, NaN when empty. */
  quantile(q: number): number {
    const v = this.values().sort((a, b) => a - b);
    if (v.length === 0) return Number.NaN;
    return v[Math.min(v.length - 1, Math.floor(q * v.length))]!;
  }
}

export function createTranscriptionStats(): TranscriptionStats {
  return {
    transcripts: { final: 0, partial: 0 },
    phrases: 0,
    capped: 0,
    waiting: 0,
    restarts: 0,
    activeSessions: 0,
    firstResultLatencyMs: new LatencySamples(),
    resultLatencyMs: new LatencySamples(),
  };
}
