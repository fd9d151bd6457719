/**
 * The recording sink: every stream to `{dataDir}/recordings/{AccountSid}/{CallSid}/{StreamSid}.wav`
 * with a `{StreamSid}.json` manifest beside it. Call {@link recoverPartialRecordings} at start-up,
 * then hand {@link createRecordingSinkFactory}'s factory to the gateway.
 */
export { createRecordingSinkFactory, GATEWAY_SPARE_STREAMS, type RecordingSinkFactory, type RecordingSinkOptions } from './factory.js';
export { RecordingSink } from './recording-sink.js';
export {
  recoverPartialRecordings,
  type RecoveredRecording,
  type RecoveryLog,
  type RecoveryOptions,
  type RecoveryReport,
} from './recover.js';
export { LocalDirectoryArchiver, type ArchivedRecording, type Archiver, type LocalDirectoryArchiverOptions } from './archiver.js';
export type { RecordingGap, RecordingManifest } from './manifest.js';
export type { RecordingFormat } from './wav-header.js';
