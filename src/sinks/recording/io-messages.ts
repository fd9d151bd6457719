/** What the event loop, the recording I/O thread (io-thread.ts, io-worker.ts) and its finish thread (finisher.ts) say to each other. */
import type { RecordingFormat } from './wav-header.js';

/** What the I/O thread answers. */
export interface IoReply {
  id: number;
  error?: string;
  code?: string;
  /** open: the file was created before the failure (close() must still finish it). */
  opened?: boolean;
  /** flush: the writes that reached the file, in order (all of them unless `error`). */
  written?: number;
  bytes?: number;
  sha256?: string;
  restored?: boolean;
}

/**
 * The requests of one turn of the event loop, as they travel in one postMessage. A drain of one
 * stream (recording-sink.ts #drain) is one flush, encoded in `flushes` rather than as an object:
 * id (negative: the main thread's flush slot, io-thread.ts), file, dataBytes (the data chunk's
 * size the header is patched to after the writes; -1: no patch), the number of writes, then per
 * write its ring offset (-1: silence of the file's format), length and file position. A flush
 * bucket of 125 streams is then one typed array to clone, not 125 objects with nested arrays.
 * `rings` pairs a flush id with the stream's ring when it changed (the first drain, a resize):
 * passing a SharedArrayBuffer costs a cross-thread registration per message. Everything else
 * (opens, finishes, sidecars, hashes) is `requests`.
 */
export interface IoBatch {
  requests: IoMessage[];
  flushes: Float64Array | null;
  rings: (number | SharedArrayBuffer)[];
}

/** The thread's answers of one turn: the ids of the flushes that succeeded, and every other answer (a failed flush's too) as a reply. */
export interface IoAnswers {
  replies: IoReply[];
  flushed: Float64Array | null;
}

export type IoRequest =
  | {
      op: 'open';
      file: number;
      /** The file's layout: the thread patches the header's sizes itself at each flush. */
      format: RecordingFormat;
      channels: 1 | 2;
      dir: string;
      wav: string;
      partial: string;
      header: Uint8Array;
    }
  /** Written once, with the first media (recording-sink.ts #drain); `dir` is made again if it was removed. */
  | { op: 'sidecar'; dir: string; path: string; json: string }
  | {
      op: 'finish';
      file: number;
      /** Header + data bytes: the file is truncated here. */
      size: number;
      /** One pad byte after `size` (an odd data chunk). */
      pad: boolean;
      header: Uint8Array;
      dir: string;
      partial: string;
      wav: string;
      sidecar: string;
      manifest: string;
      /** The manifest with `bytes` and `sha256` still to fill in (same key order). */
      manifestJson: string;
    }
  | { op: 'close'; file: number }
  | { op: 'hash'; path: string }
  /**
   * Keep spare inodes for `count` starts (per-call directories, files) made ahead in `under`
   * (the data directory) for the recordings root `root` (io-worker.ts "Spare inodes"); 0
   * removes them and stops.
   */
  | { op: 'spares'; root: string; under: string; count: number };

/** A request as it travels: numbered, so its answer finds it. */
export type IoMessage = IoRequest & { id: number };

/** A finish as the I/O thread hands it to its finish thread (finisher.ts): the request and the file's descriptor, which the finisher now owns and closes. */
export interface FinishJob {
  m: Extract<IoMessage, { op: 'finish' }>;
  fd: number;
}

/** The answer to request `id` that failed with `err`. */
export function errorReply(id: number, err: unknown, extra?: Partial<IoReply>): IoReply {
  const e = err as NodeJS.ErrnoException;
  return { id, error: String(e?.message ?? err), code: e?.code, ...extra };
}
