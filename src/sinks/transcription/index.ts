/** The transcription sink's public surface, for the gateway, the demo and benches. */
export { defaultTranscriptionSlots, ENGINE_REAL_TIME_FACTOR } from './capacity.js';
export type { EngineSession, EngineSessionOptions, PhraseHit, SpeechEngine } from './engines/engine.js';
export { createNoneEngine } from './engines/none.js';
export {
  createPocketsphinxEngine,
  isPocketsphinxInstalled,
  type PocketsphinxEngineOptions,
} from './engines/pocketsphinx.js';
export { PocketsphinxSession } from './engines/pocketsphinx-session.js';
export { DEEPGRAM_DEFAULT_URL, deepgramProtocol, type DeepgramOptions } from './engines/remote/deepgram.js';
export { createRemoteEngine, type RemoteSpeechEngine } from './engines/remote/remote-engine.js';
export type { RemoteAsrStats } from './engines/remote/stats.js';
export { VOSK_DEFAULT_URL, VOSK_EOF, voskProtocol } from './engines/remote/vosk.js';
export { withLocalSpotting } from './engines/with-local-spotting.js';
export {
  createSpeechEngine,
  defaultEngineName,
  ENGINE_NAMES,
  type CreateEngineOptions,
  type EngineName,
} from './engines/registry.js';
export { listSpeechClips, readClipMulaw, readClipPcm, speechClip, type SpeechClip } from './speech-fixtures.js';
export { LatencySamples, type TranscriptionStats } from './stats.js';
export { transcriptPath, type TranscriptLine } from './transcript-file.js';
export {
  createTranscriptionSinkFactory,
  type TranscriptionSinkFactory,
  type TrackTranscription,
  type TranscriptionSinkOptions,
} from './transcription-sink.js';
export type { PhraseEvent, TranscriptEvent, TranscriptResult, TranscriptWord } from '../../core/transcript.js';
export { TranscriptWebhook, type TranscriptWebhookOptions, type TranscriptWebhookStats } from './webhook.js';
export { wordErrorRate, type WerResult } from './wer.js';
