/** Shared pieces of the transcription suites: fixture feeding, collecting, a quiet logger. */
import { pino, type Logger } from 'pino';
import type { EngineSession } from '../../../src/sinks/transcription/engines/engine.js';
import type { PhraseHit } from '../../../src/sinks/transcription/engines/engine.js';
import type { TranscriptResult } from '../../../src/core/transcript.js';
import { sleep } from '../../helpers/wait.js';

export const quietLog: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export const FRAME = 160;

/**
 * Writes `pcm` to `session` as 20 ms frames stamped from `startMs`, faster than real time:
 * `speed` seconds of audio per wall second (Infinity: all at once, synchronously).
 */
export async function feed(session: EngineSession, pcm: Int16Array, startMs: number, speed = Infinity): Promise<void> {
  const frame = new Int16Array(FRAME);
  // One 20 ms frame per 20 ms of wall time is real time; `speed` frames per 20 ms is `speed`×.
  const framesPerBurst = Number.isFinite(speed) ? Math.max(1, Math.round(speed)) : Infinity;
  let sent = 0;
  for (let off = 0; off < pcm.length; off += FRAME) {
    const n = Math.min(FRAME, pcm.length - off);
    // Copy into one reused buffer, as the gateway's session does: the engine must copy.
    for (let i = 0; i < n; i++) frame[i] = pcm[off + i]!;
    session.write(frame, n, startMs + off / 8);
    frame.fill(0x7fff);
    if (++sent >= framesPerBurst) {
      sent = 0;
      await sleep(20);
    }
  }
}

export function silence(ms: number): Int16Array {
  return new Int16Array(ms * 8);
}

/** Collects what a session reports. */
export function collector(): {
  results: TranscriptResult[];
  phrases: PhraseHit[];
  drops: number[];
  restarts: number;
  errors: Error[];
  text(): string;
  callbacks: {
    onResult(r: TranscriptResult): void;
    onPhrase(p: PhraseHit): void;
    onDrop(frames: number): void;
    onRestart(): void;
    onError(err: Error): void;
  };
} {
  const c = {
    results: [] as TranscriptResult[],
    phrases: [] as PhraseHit[],
    drops: [] as number[],
    restarts: 0,
    errors: [] as Error[],
    text: () => c.results.map((r) => r.text).join(' '),
    callbacks: {
      onResult: (r: TranscriptResult) => void c.results.push(r),
      onPhrase: (p: PhraseHit) => void c.phrases.push(p),
      onDrop: (frames: number) => void c.drops.push(frames),
      onRestart: () => void c.restarts++,
      onError: (err: Error) => void c.errors.push(err),
    },
  };
  return c;
}

/** The pid of `parent`'s first child process (Linux /proc), or null. */
export async function childPidOf(parent: number): Promise<number | null> {
  const { readFile } = await import('node:fs/promises');
  try {
    const children = (await readFile(`/proc/${parent}/task/${parent}/children`, 'utf8')).trim();
    return children === '' ? null : Number(children.split(' ')[0]);
  } catch {
    return null;
  }
}
