/**
 * The media socket's frame reader: takes the WebSocket's byte stream before ws's receiver and
 * hands each plain text frame's payload straight to the session, as a range of the chunk the
 * socket delivered (unmasked in place; no Buffer view, no event emitter, no copy).
 *
 * "Plain" is all Twilio sends (docs/twilio-protocol.md §1): one unfragmented text frame per
 * message, masked, no extension bits, a 7- or 16-bit length within maxPayload. The first frame
 * that is anything else (a close, a ping, a fragment, binary, RSV bits set, no mask, a 64-bit
 * length, one longer than maxPayload) is handed to ws's own 'data' listener together with every
 * byte after it, and ws reads the rest of the connection as it would have from the start: its
 * receiver has seen no byte before, so it begins at that frame's first byte, and every error
 * code and close handshake stays ws's (test/gateway/frame-reader.test.ts). A frame split across
 * reads waits here (at most maxPayload + 8 bytes, bounded by the length check first), read again
 * only once as many bytes as it needs have come, so one trickled in a byte at a time is copied
 * a few times, not once per read (which would cost its size squared).
 *
 * Saves ws's Writable write, per-message Buffer views, fragments array and the two 'message'
 * emits (receiver, then WebSocket); bench/ws-frame.bench.ts measures the two side by side.
 */
import type { Duplex } from 'node:stream';
// Imported, not the global: the global `performance` is a lazy getter.
import { performance } from 'node:perf_hooks';

/**
 * Takes one text message: the bytes [start, end) of `chunk`, valid during the call only, read
 * from the socket at `receivedAt` (performance.now()). An object with a method, not a closure:
 * the session itself, reached with one load instead of a closure and its context per frame.
 */
export interface TextSink {
  onTextBytes(chunk: Buffer, receivedAt: number, start: number, end: number): void;
}

type DataListener = (chunk: Buffer) => void;

export class MediaFrameReader {
  readonly #socket: Duplex;
  readonly #wsOnData: DataListener;
  readonly #maxPayload: number;
  readonly #onText: TextSink;
  /** The start of a frame that has not fully arrived yet: copies of the reads since, in order. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** Bytes to hold before that frame is read again: its header's, then its whole length. */
  #need = 0;
  /** Bound once: the socket's 'data' listener while this reader owns the stream. */
  readonly #onData = (chunk: Buffer): void => this.#read(chunk);
  /** True once ws reads the stream again (from the first frame this reader did not take). */
  handedOver = false;

  /**
   * Takes over `socket`'s 'data' events from ws (whose listener, set by handleUpgrade, is the
   * only one), or returns null and leaves ws in place when that is not how the socket looks.
   */
  static attach(socket: Duplex, maxPayload: number, onText: TextSink): MediaFrameReader | null {
    const listeners = socket.listeners('data');
    if (listeners.length !== 1) return null;
    return new MediaFrameReader(socket, listeners[0] as DataListener, maxPayload, onText);
  }

  private constructor(socket: Duplex, wsOnData: DataListener, maxPayload: number, onText: TextSink) {
    this.#socket = socket;
    this.#wsOnData = wsOnData;
    this.#maxPayload = maxPayload;
    this.#onText = onText;
    socket.removeListener('data', wsOnData);
    socket.on('data', this.#onData);
  }

  #read(chunk: Buffer): void {
    let buf = chunk;
    if (this.#heldBytes > 0) {
      // Copied: a view would keep the whole read buffer (often 64 KiB) alive until the rest comes.
      this.#held.push(Buffer.from(chunk));
      this.#heldBytes += chunk.length;
      if (this.#heldBytes < this.#need) return;
      buf = Buffer.concat(this.#held, this.#heldBytes);
      this.#held = [];
      this.#heldBytes = 0;
    }
    const end = buf.length;
    let at = 0;
    let need = 2;
    // Once per read, not per frame (~80 ns a call on this host's kvm-clock): the frames of one
    // read arrived together.
    const receivedAt = performance.now();
    while (end - at >= 2) {
      const b1 = buf[at + 1]!;
      // FIN + text, no RSV bits, masked.
      if (buf[at] !== 0x81 || b1 < 0x80) return this.#handOver(buf, at);
      let len = b1 & 0x7f;
      let maskAt = at + 2;
      if (len === 126) {
        if (end - at < 4) {
          need = 4;
          break;
        }
        len = (buf[at + 2]! << 8) | buf[at + 3]!;
        maskAt = at + 4;
      } else if (len === 127) return this.#handOver(buf, at);
      if (len > this.#maxPayload) return this.#handOver(buf, at);
      const dataAt = maskAt + 4;
      const dataEnd = dataAt + len;
      if (dataEnd > end) {
        need = dataEnd - at;
        break;
      }
      unmask(buf, dataAt, dataEnd, maskAt);
      at = dataEnd;
      this.#onText.onTextBytes(buf, receivedAt, dataAt, dataEnd);
      need = 2;
    }
    if (at < end) {
      this.#held.push(Buffer.from(buf.subarray(at)));
      this.#heldBytes = end - at;
      this.#need = need;
    }
  }

  /** ws reads the connection from `buf[at]` on. */
  #handOver(buf: Buffer, at: number): void {
    this.handedOver = true;
    const socket = this.#socket;
    socket.removeListener('data', this.#onData);
    socket.on('data', this.#wsOnData);
    this.#wsOnData.call(socket, at === 0 ? buf : buf.subarray(at));
  }
}

/** XORs buf[from, to) with the 4-byte mask at buf[maskAt] (RFC 6455 §5.3). */
export function unmask(buf: Buffer, from: number, to: number, maskAt: number): void {
  const m0 = buf[maskAt]!;
  const m1 = buf[maskAt + 1]!;
  const m2 = buf[maskAt + 2]!;
  const m3 = buf[maskAt + 3]!;
  let i = from;
  const whole = from + ((to - from) & ~3);
  for (; i < whole; i += 4) {
    buf[i] = buf[i]! ^ m0;
    buf[i + 1] = buf[i + 1]! ^ m1;
    buf[i + 2] = buf[i + 2]! ^ m2;
    buf[i + 3] = buf[i + 3]! ^ m3;
  }
  const tail = to - i;
  if (tail > 0) buf[i] = buf[i]! ^ m0;
  if (tail > 1) buf[i + 1] = buf[i + 1]! ^ m1;
  if (tail > 2) buf[i + 2] = buf[i + 2]! ^ m2;
}
