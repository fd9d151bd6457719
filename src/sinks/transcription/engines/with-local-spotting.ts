/**
 * A remote engine (deepgram, vosk) with local keyword spotting beside it, for rules that ask
 * for it (`spot: true`): each track's audio goes to both; transcripts come from the remote
 * service, spotted phrases from a pocketsphinx spotter (no local transcript: it only listens for
 * the phrases).
 */
import type { EngineSession, EngineSessionOptions, SpeechEngine } from './engine.js';

export function withLocalSpotting(remote: SpeechEngine, spotter: SpeechEngine, phrases: readonly string[]): SpeechEngine {
  return {
    name: remote.name,
    open(opts: EngineSessionOptions): EngineSession {
      const transcriber = remote.open({ ...opts, phrases: [] });
      // Spotting only: no local transcript; its drops and restarts count as the track's.
      const spot = spotter.open({ ...opts, phrases, transcribe: false, onResult: () => {}, onHole: undefined });
      return {
        write(pcm8k, samples, mediaTimestampMs, mulaw) {
          transcriber.write(pcm8k, samples, mediaTimestampMs, mulaw);
          spot.write(pcm8k, samples, mediaTimestampMs, mulaw);
        },
        startTranscribing: () => transcriber.startTranscribing?.(),
        end: () => Promise.all([transcriber.end(), spot.end()]).then(() => undefined),
      };
    },
    shutdown: () => Promise.all([remote.shutdown(), spotter.shutdown()]).then(() => undefined),
  };
}
