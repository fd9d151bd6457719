/** What the event loop and the recording I/O thread (io-thread.ts, io-worker.ts) say to each other. */

/** What the I/O thread answers. */
export interface IoReply {
  id: number;
  error?: string;
  code?: string;
  /** open: the file was created before the failure (close() must still finish it). */
  opened?: boolean;
  bytes?: number;
  sha256?: string;
  restored?: boolean;
}

/**
 * One pwrite of `len` bytes at `pos`: from the file's shared ring at `off`, or of silence of the
 * format; then, if given, the header at 0. `ring` is sent only when the ring changed (the first
 * write, a resize): passing a SharedArrayBuffer costs a cross-thread registration per message.
 */
export interface IoWrite {
  op: 'write';
  file: number;
  ring?: SharedArrayBuffer;
  silence?: 'pcm16' | 'mulaw';
  off: number;
  len: number;
  pos: number;
  header?: Uint8Array;
}

export type IoRequest =
  | { op: 'open'; file: number; dir: string; wav: string; partial: string; sidecar: string; sidecarJson: string; header: Uint8Array }
  | IoWrite
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
