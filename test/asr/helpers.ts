/**
 * The production gateway (createAppGateway) with a remote speech engine pointed at a stand-in,
 * and the Twilio emulator as the caller: streams start through the admin API (startStream), the emulator
 * plays tone speech (tone-speech.ts) and hangs up at its end.
 */
import { readFile } from 'node:fs/promises';
import type { TranscriptEvent } from '../../src/core/transcript.js';
import { transcriptPath, type TranscriptLine } from '../../src/sinks/transcription/index.js';
import { waitFor } from '../helpers/wait.js';
import { readManifest, recordingBase, startStack, type Stack } from '../helpers/stack.js';
import type { StandinConnection } from './standin.js';
import type { PlannedWord } from './tone-speech.js';

/** The emulator's first media.timestamp (its default, as in real captures). */
export const FIRST_TIMESTAMP_MS = 99;

export interface AsrStack extends Stack {
  events: TranscriptEvent[];
}

/** The whole app (test/helpers/stack.ts) logging at info; the emulator at `speed` (default 2×), with `rules`. */
export async function startAsrStack(env: Record<string, string>, opts: { speed?: number; rules?: string } = {}): Promise<AsrStack> {
  // The overload guard would refuse the first upgrade while a loaded machine compiles the suite.
  const base = await startStack({ speed: opts.speed ?? 2, rules: opts.rules, env: { LOG_LEVEL: 'info', MAX_EVENT_LOOP_DELAY_MS: '60000', ...env } });
  const events: TranscriptEvent[] = [];
  base.gateway.bus.on('transcript', (t) => events.push(t));
  return Object.assign(base, { events });
}

/** Waits for the stream's end and the transcription sink's close (its last JSONL line written). */
export async function untilEnded(stack: Stack, streamSid: string, ms = 30_000): Promise<void> {
  // On a timeout, say where the stream is, for a CI log.
  await waitFor(() => stack.ends.has(streamSid), ms, () => {
    const lines = stack.lines.filter((l) => l.streamSid === streamSid || (l.level as number) >= 40).slice(-8).map((l) => String(l.msg));
    return `stream-end of ${streamSid}; emulator: ${stack.sim.stream(streamSid)?.status ?? '?'}; started: ${stack.started.has(streamSid)}; log: ${JSON.stringify(lines)}`;
  });
}

export async function transcriptLines(stack: Stack, callSid: string, streamSid: string): Promise<TranscriptLine[]> {
  let text: string;
  try {
    text = await readFile(transcriptPath(stack.dataDir, stack.sim.accountSid, callSid, streamSid), 'utf8');
  } catch {
    return [];
  }
  return text.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as TranscriptLine);
}

export async function manifest(stack: Stack, callSid: string, streamSid: string) {
  return readManifest(recordingBase(stack, callSid, streamSid));
}

/**
 * Checks final words against the plan: the same words in order, each on the media clock
 * (first timestamp + its place in the call's audio) within `toleranceMs`.
 */
export function expectWordsOnMediaClock(lines: TranscriptLine[], plan: PlannedWord[], toleranceMs = 25): string[] {
  const problems: string[] = [];
  const words = lines.filter((l) => l.hole !== true).flatMap((l) => l.words);
  if (words.map((w) => w.word).join(' ') !== plan.map((w) => w.word).join(' ')) {
    problems.push(`words ${JSON.stringify(words.map((w) => w.word))} != ${JSON.stringify(plan.map((w) => w.word))}`);
    return problems;
  }
  words.forEach((w, i) => {
    const p = plan[i]!;
    const start = FIRST_TIMESTAMP_MS + p.startMs;
    const end = FIRST_TIMESTAMP_MS + p.endMs;
    if (Math.abs(w.startMs - start) > toleranceMs || Math.abs(w.endMs - end) > toleranceMs) {
      problems.push(`${w.word} #${i}: ${w.startMs}-${w.endMs} ms, planned ${start}-${end}`);
    }
  });
  return problems;
}

/** The messages a connection got, parsed. */
export function sentJson(c: StandinConnection): Record<string, unknown>[] {
  return c.sent.filter((s) => s.startsWith('{')).map((s) => JSON.parse(s) as Record<string, unknown>);
}
