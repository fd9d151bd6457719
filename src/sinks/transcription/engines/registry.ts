/**
 * Picks the speech engine by name (`TRANSCRIPTION`): `pocketsphinx` when installed, else
 * `none`; `deepgram` and `vosk` are remote services (engines/remote/). A name that cannot run
 * stops start-up with one line naming the variable.
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
import { deepgramProtocol, type DeepgramOptions } from './remote/deepgram.js';
import { createRemoteEngine } from './remote/remote-engine.js';
import type { RemoteSessionSettings } from './remote/remote-session.js';
import { voskProtocol } from './remote/vosk.js';

export const ENGINE_NAMES = ['pocketsphinx', 'deepgram', 'vosk', 'none'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** `pocketsphinx` when it can run here, else `none`. */
export function defaultEngineName(): EngineName {
  return isPocketsphinxInstalled() ? 'pocketsphinx' : 'none';
}

export interface CreateEngineOptions {
  log: Logger;
  /** Settings for the pocketsphinx engine (tests, benches, tuning). */
  pocketsphinx?: Omit<PocketsphinxEngineOptions, 'log'>;
  /** TRANSCRIPTION=deepgram: the key (required), URL and extra parameters. */
  deepgram?: DeepgramOptions;
  /** TRANSCRIPTION=vosk: the server's URL. */
  vosk?: { url?: string };
  /** Remote engines: replay window, stall and end timeouts, backoff. */
  remote?: Partial<RemoteSessionSettings>;
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
    case 'deepgram':
      if (opts.deepgram === undefined || opts.deepgram.apiKey === '') throw new ConfigError('TRANSCRIPTION=deepgram needs DEEPGRAM_API_KEY');
      return createRemoteEngine(deepgramProtocol(opts.deepgram), opts.remote);
    case 'vosk':
      return createRemoteEngine(voskProtocol(opts.vosk ?? {}), opts.remote);
    default:
      throw new ConfigError(`TRANSCRIPTION must be one of ${ENGINE_NAMES.join(', ')}, got ${JSON.stringify(name)}`);
  }
}
