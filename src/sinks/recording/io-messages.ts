/** What the event loop and the recording I/O thread (io-thread.ts, io-worker.ts) say to each other. */
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
 * One drain of one stream (recording-sink.ts #drain): its writes in file order, then, if
 * `dataBytes` is not -1, the header patched to say so. The writes are flat triples in `writes`:
 * ring offset (-1: silence of the file's format), length, file position. A drain is one
 * request and one answer however many writes it has (a ring wrap, skipped silence): a request
 * object, a promise and a structured clone each cost the event loop more than the pwrite costs
 * the thread. `ring` is sent only when the ring changed (the first drain, a resize): passing a
 * SharedArrayBuffer costs a cross-thread registration per message.
 */
export interface IoFlush {
  op: 'flush';
  file: number;
  ring?: SharedArrayBuffer;
  writes: number[];
  /** The data chunk's size the header is patched to after the writes; -1: no patch. */
  dataBytes: number;
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
      sidecar: string;
      sidecarJson: string;
      header: Uint8Array;
    }
  | IoFlush
  | { op: 'sidecar'; path: string; json: string }
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
  | { op: 'hash'; path: string };

/** A request as it travels: numbered, so its answer finds it. */
export type IoMessage = IoRequest & { id: number };
