/**
 * The engine used when no recogniser is installed or `TRANSCRIPTION=none`: it accepts audio
 * and reports nothing, so the sink and the gateway behave the same either way.
 */
import type { EngineSession, SpeechEngine } from './engine.js';

const NULL_SESSION: EngineSession = {
  write() {},
  end: () => Promise.resolve(),
};

/** Creates an engine whose sessions discard their audio. */
export function createNoneEngine(): SpeechEngine {
  return {
    name: 'none',
    open: () => NULL_SESSION,
    shutdown: () => Promise.resolve(),
  };
}
