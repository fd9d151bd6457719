/**
 * Picks the speech engine by name (`TRANSCRIPTION`): `pocketsphinx` when installed, else
 * `none`. A name that cannot run stops start-up with one line naming the variable.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../../../errors.js';
import type { SpeechEngine } from './engine.js';
import { createNoneEngine } from './none.js';
import {
  createPocketsphinxEngine,
  DEFAULT_MODEL_DIR,
  isPocketsphinxInstalled,
  type PocketsphinxEngineOptions,
} from './pocketsphinx.js';

export const ENGINE_NAMES = ['pocketsphinx', 'none'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** `pocketsphinx` when it can run here, else `none`. */
export function defaultEngineName(): EngineName {
  return isPocketsphinxInstalled() ? 'pocketsphinx' : 'none';
}

export interface CreateEngineOptions {
  log: Logger;
  /** Settings for the pocketsphinx engine (tests, benches, tuning). */
  pocketsphinx?: Omit<PocketsphinxEngineOptions, 'log'>;
}

/** Creates the engine called `name`; throws ConfigError for an unknown or missing engine. */
export function createSpeechEngine(name: string, opts: CreateEngineOptions): SpeechEngine {
  switch (name) {
    case 'none':
      return createNoneEngine();
    case 'pocketsphinx':
      if (!isPocketsphinxInstalled(opts.pocketsphinx?.modelDir ?? DEFAULT_MODEL_DIR)) {
        throw new ConfigError(
          'TRANSCRIPTION=pocketsphinx but pocketsphinx_continuous, bash or the en-us model is missing ' +
            '(apt-get install pocketsphinx pocketsphinx-en-us), or set TRANSCRIPTION=none',
        );
      }
      return createPocketsphinxEngine({ ...opts.pocketsphinx, log: opts.log });
    default:
      throw new ConfigError(`TRANSCRIPTION must be one of ${ENGINE_NAMES.join(', ')}, got ${JSON.stringify(name)}`);
  }
}
