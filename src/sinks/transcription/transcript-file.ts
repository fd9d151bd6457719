/**
 * A stream's transcript file, `${dataDir}/transcripts/{AccountSid}/{CallSid}/{StreamSid}.jsonl`
 * (docs/design.md, Files): one JSON line per final result, appended in order, off the hot path.
 * SIDs are checked before they become path parts.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assertSid } from '../../twilio/sids.js';
import type { Track } from '../../core/stream.js';
import type { TranscriptWord } from '../../core/transcript.js';

/** One line of the file. */
export interface TranscriptLine {
  streamSid: string;
  callSid: string;
  track: Track;
  text: string;
  startMs: number;
  endMs: number;
  words: TranscriptWord[];
  /**
   * Present (true) only on a line marking audio that was never recognised (a speech service
   * unreachable for longer than its replay window); `text` is empty there.
   */
  hole?: true;
}

/** The file's path; throws InvalidInputError when a SID is malformed. */
export function transcriptPath(dataDir: string, accountSid: string, callSid: string, streamSid: string): string {
  return join(
    dataDir,
    'transcripts',
    assertSid('account', accountSid, 'accountSid'),
    assertSid('call', callSid, 'callSid'),
    `${assertSid('stream', streamSid, 'streamSid')}.jsonl`,
  );
}

/**
 * Appends lines to one transcript file, in call order, through a promise chain (one write in
 * flight). The directory is made on the first line, so a stream without speech leaves no file.
 */
export class TranscriptFile {
  readonly path: string;
  readonly #onError: (err: unknown) => void;
  #chain: Promise<void> = Promise.resolve();
  #dirReady = false;

  constructor(path: string, onError: (err: unknown) => void) {
    this.path = path;
    this.#onError = onError;
  }

  append(line: TranscriptLine): void {
    const text = JSON.stringify(line) + '\n';
    this.#chain = this.#chain.then(() => this.#write(text)).catch(this.#onError);
  }

  /** Resolves when every appended line is written (or has failed and been reported). */
  flush(): Promise<void> {
    return this.#chain;
  }

  async #write(text: string): Promise<void> {
    if (!this.#dirReady) {
      await mkdir(dirname(this.path), { recursive: true });
      this.#dirReady = true;
    }
    await appendFile(this.path, text);
  }
}
