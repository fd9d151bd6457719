/**
 * The keyword spotter's command line, in one place: the engine (pocketsphinx.ts) starts every
 * spotter with it and the phrase evaluation (bench/lib/kws-run.ts) decodes with it, so what the
 * bench measures is what ships, and a change here reaches both.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Phone-loop probability (`-kws_plp`): how cheaply the free phone loop the phrase competes with
 * enters a phone. Calibrated with the thresholds (phrases.ts, bench/phrases.bench.ts).
 */
export const KWS_PLP = 1e-10;

/** Spotter flags besides the phrase file, the phone-loop probability and the front-end. */
const SPOTTER_BASE_ARGS: readonly string[] = ['-logfn', '/dev/null', '-time', 'yes', '-vad_postspeech', '30'];

/**
 * Starting cepstral mean for the spotter (`-cmninit`, written into a copy of the model's
 * feat.params by writeFeatParams), for telephone audio as this gateway feeds it (8 kHz
 * mu-law, upsampled by Upsampler8kTo16k). pocketsphinx subtracts a running mean of the cepstrum
 * (live CMN); until a recogniser's first utterance has ended it uses the start value, and then
 * the mean of that utterance alone. The model's start value (41.00,-5.29,-0.12,5.09,…: wideband
 * microphone speech) is far from telephone speech (c1 ≈ 33 here), so every fresh recogniser
 * decoded its first utterance against the wrong mean. The primer clip (primer.ts) helped only by
 * replacing it with the mean of one voice saying "good morning". A stream's first words, one
 * fresh recogniser per held-out clip ("alright then {p}", 84 clips): 49 spotted with this start
 * value and no primer, 40 with the primer (flite-kal 12 vs 8; false spots 0 both); the espeak-ng
 * "en" fixtures' "end the conference" scores 1e37-48 instead of 1e-2 to 1e-4. The language-model
 * decoder keeps the primer: its first transcripts were worse without it (demo-alice, the
 * two-party sink test), and it gets it again after a restart as the spotter does
 * (pocketsphinx-process.ts `primer`). Value: the running mean pocketsphinx logged ("Update to")
 * at the end of 24 non-matching paragraphs of the phrase set's tuning half (4 per voice, 6
 * voices), averaged.
 */
export const TELEPHONE_CMN_INIT = '51.13,33.07,-30.79,49.13,-21.36,3.49,8.64,-25.23,7.99,-7.96,4.73,4.40,-3.03';

/** What may differ between spotters (engine options, benches); SPOTTER_DEFAULTS is what ships. */
export interface SpotterSettings {
  /** `-kws_plp`. */
  kwsPlp: number;
  /** Starting cepstral mean; null for the model's own. */
  cmnInit: string | null;
  /** Further flags (search, front-end), appended last; none by default. */
  flags?: readonly string[];
}

export const SPOTTER_DEFAULTS: Readonly<SpotterSettings> = { kwsPlp: KWS_PLP, cmnInit: TELEPHONE_CMN_INIT };

/**
 * Writes into `dir` what the spotter needs besides its phrase file (a copy of the model's
 * feat.params with `-cmninit` replaced) and returns a function giving the spotter's whole
 * argument list (everything but `-infile`) for a `-kws` file. Without the model's feat.params
 * (no model installed) the spotter runs on the model's own front-end settings.
 *
 * Why a feat.params copy: a `-cmninit` on the command line does not work, pocketsphinx reads
 * feat.params after it and the model's value wins.
 */
export function prepareSpotter(settings: SpotterSettings, modelDir: string, dir: string): (kwsFile: string) => string[] {
  const featParams = settings.cmnInit === null ? null : writeFeatParams(join(modelDir, 'en-us', 'feat.params'), settings.cmnInit, dir);
  const front = featParams === null ? [] : ['-featparams', featParams];
  return (kwsFile) => [...SPOTTER_BASE_ARGS, '-kws', kwsFile, '-kws_plp', String(settings.kwsPlp), ...front, ...(settings.flags ?? [])];
}

function writeFeatParams(modelFile: string, cmnInit: string, dir: string): string | null {
  if (!existsSync(modelFile)) return null;
  const lines = readFileSync(modelFile, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('-cmninit'));
  const file = join(dir, 'feat.params');
  writeFileSync(file, [...lines, `-cmninit ${cmnInit}`, ''].join('\n'));
  return file;
}

/**
 * A key that changes whenever the spotter's arguments or front-end would (benches cache decodes
 * under it): the argument list with a placeholder phrase file, and every setting.
 */
export function spotterFingerprint(settings: SpotterSettings): string {
  // A model directory that does not exist: nothing is written, the feat.params is in `settings`.
  return JSON.stringify([prepareSpotter(settings, '/nonexistent', '/nonexistent')('phrases.kws'), settings]);
}
