/**
 * Signal level from a frame's energy, and a speech/silence gate with hysteresis.
 *
 * The session computes each frame's energy (sum of squared samples) while it decodes mu-law
 * (twilio/mulaw.ts), so the level costs one comparison per frame here: the dBFS thresholds are
 * turned into mean-square thresholds once, and a frame is "loud" when
 * `energy > threshold × samples`, with no logarithm, square root or second pass over samples.
 *
 * 0 dBFS is the RMS of a full-scale square wave (±32768). mu-law's loudest codes (0x00/0x80,
 * ±32124) read −0.17 dBFS; code 0xFF (the usual silence byte) decodes to 0 and reads
 * {@link MIN_DBFS}.
 */

/** Full scale of 16-bit linear PCM. */
export const FULL_SCALE = 32768;

/** What digital silence (zero energy) reads as, instead of −∞. */
export const MIN_DBFS = -120;

/** The level of a frame (RMS relative to full scale), in dBFS, floored at {@link MIN_DBFS}. For logs and tests. */
export function energyToDbfs(energy: number, samples: number): number {
  if (samples <= 0 || energy <= 0) return MIN_DBFS;
  const db = 10 * Math.log10(energy / samples / (FULL_SCALE * FULL_SCALE));
  return db < MIN_DBFS ? MIN_DBFS : db;
}

/** The mean square (energy per sample) a level in dBFS corresponds to. */
export function dbfsToMeanSquare(dbfs: number): number {
  return FULL_SCALE * FULL_SCALE * 10 ** (dbfs / 10);
}

export interface LevelGateOptions {
  /** A frame above this level argues for speech. Default −40 dBFS. */
  onDbfs?: number;
  /** A frame below this level argues for silence. Default 5 dB under `onDbfs`. */
  offDbfs?: number;
  /** Speech needs loud frames for at least this long, without a break. Default 60 ms. */
  attackMs?: number;
  /** Silence needs quiet frames for at least this long, without a break. Default 300 ms. */
  hangoverMs?: number;
}

export const LEVEL_DEFAULTS = { onDbfs: -40, hysteresisDb: 5, attackMs: 60, hangoverMs: 300 } as const;

/**
 * Speech/silence decision for one track, with two thresholds and two minimum durations:
 *
 *             level > on for ≥ attackMs
 *   SILENT ─────────────────────────────► SPEAKING
 *          ◄─────────────────────────────
 *             level < off for ≥ hangoverMs
 *
 * Levels between `off` and `on` break the run that argues for a change, so line noise hovering
 * around one threshold cannot flap the state, a click shorter than `attackMs` is not speech, and
 * the pause between two words (shorter than `hangoverMs`) is not silence.
 *
 * A track starts SILENT at its first frame. Times are on the media clock.
 */
export class LevelGate {
  /** Current state. */
  speaking = false;
  /** Media-clock start of the current state: the first frame of the run that decided it (or the first frame seen). −1 before any frame. */
  sinceMs = -1;
  /** Media-clock end of the frame that decided the latest change; −1 before any change. */
  changedAtMs = -1;

  readonly #onMeanSquare: number;
  readonly #offMeanSquare: number;
  readonly #attackMs: number;
  readonly #hangoverMs: number;
  /** Length of the current run of frames that argue for leaving the current state, ms. */
  #runMs = 0;
  #runStartMs = 0;

  constructor(opts: LevelGateOptions = {}) {
    const on = opts.onDbfs ?? LEVEL_DEFAULTS.onDbfs;
    const off = opts.offDbfs ?? on - LEVEL_DEFAULTS.hysteresisDb;
    if (!(off <= on)) throw new RangeError(`offDbfs (${off}) must not be above onDbfs (${on})`);
    this.#onMeanSquare = dbfsToMeanSquare(on);
    this.#offMeanSquare = dbfsToMeanSquare(off);
    this.#attackMs = opts.attackMs ?? LEVEL_DEFAULTS.attackMs;
    this.#hangoverMs = opts.hangoverMs ?? LEVEL_DEFAULTS.hangoverMs;
  }

  /**
   * Takes one frame (its energy, sample count and media-clock start) and returns true when the
   * state changed on it; `speaking`, `sinceMs` and `changedAtMs` then describe the change.
   */
  update(energy: number, samples: number, timestampMs: number): boolean {
    const durMs = samples * 0.125; // 8 samples per ms
    if (this.sinceMs < 0) this.sinceMs = timestampMs;
    const argues = this.speaking ? energy < this.#offMeanSquare * samples : energy > this.#onMeanSquare * samples;
    if (!argues) {
      this.#runMs = 0;
      return false;
    }
    if (this.#runMs === 0) this.#runStartMs = timestampMs;
    this.#runMs += durMs;
    if (this.#runMs < (this.speaking ? this.#hangoverMs : this.#attackMs)) return false;
    this.speaking = !this.speaking;
    this.sinceMs = this.#runStartMs;
    this.changedAtMs = timestampMs + durMs;
    this.#runMs = 0;
    return true;
  }
}
