/** How many tracks the machine can fully transcribe at once (TRANSCRIPTION_MAX_STREAMS default). */
import { availableParallelism } from 'node:os';

/**
 * Real-time factor of the pocketsphinx language-model recogniser with its spotter, worst case
 * measured (bench/RESULTS.md, transcription bench: 0.15-0.27 CPU s per audio s on the real
 * capture on a shared 2-core machine, 0.07 on long streams).
 */
export const ENGINE_REAL_TIME_FACTOR = 0.27;
/** Share of the machine's cores full transcription may take; the rest is ingest, recording, spotting. */
const TRANSCRIPTION_CPU_SHARE = 0.6;

/**
 * TRANSCRIPTION_MAX_STREAMS default: as many tracks as `cores` can transcribe in real time
 * within TRANSCRIPTION_CPU_SHARE at ENGINE_REAL_TIME_FACTOR (2 cores → 4, 4 → 8), at least 1.
 */
export function defaultTranscriptionSlots(cores: number = availableParallelism()): number {
  return Math.max(1, Math.floor((cores * TRANSCRIPTION_CPU_SHARE) / ENGINE_REAL_TIME_FACTOR));
}
