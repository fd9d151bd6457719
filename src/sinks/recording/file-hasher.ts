/**
 * SHA-256 of finished files, computed on the recording I/O thread (io-thread.ts), never on the
 * event loop: hashing an hour of pcm16 reads and digests 57.6 MB (~100-200 ms of CPU), which on
 * the main thread would stall every live stream while a burst of calls ends. Recovery at start-up
 * uses it; a closing sink has its file hashed by the same thread as part of its finish request.
 */
import { ioRequest } from './io-thread.js';

/** SHA-256 (hex) of a file's bytes, read and digested off the event loop. */
export async function sha256FileOffThread(path: string): Promise<string> {
  return (await ioRequest({ op: 'hash', path })).sha256!;
}
