/**
 * One stream's recording: the hot path copies frames into a TimelineBuffer; a writer loop, one
 * batch of requests at a time, hands the recording I/O thread (io-thread.ts) the ranges to move
 * into `{StreamSid}.wav.partial` and, at most every headerIntervalMs (1 s), the header sizes to
 * patch with them, so the file on disk is always a valid WAV of everything flushed up to a second
 * ago, and of all of it once closed. The event loop never calls fs for a recording:
 *
 *   accept(frame) ──copy──► TimelineBuffer ──plan/submit──► I/O thread: pwrite(shared ring
 *        sync, no I/O          bounded ring      ▲             bytes, at pos) + header patch
 *                                                └── kicked by the factory's staggered ticker
 *                                                    (every flushIntervalMs) or when the buffer
 *                                                    passes flushThresholdFrames
 *
 * close(): last flush (everything, plus trailing dropped stretches as silence), then one finish
 * request: final header, hash, fsync, manifest written over the sidecar, renames .partial → .wav
 * (first copied back from the open handle if its directory was removed meanwhile) and sidecar →
 * manifest; close() resolves, and the archiver runs in the background (the factory's shutdown()
 * waits for it).
 * A write error degrades the stream: counted and logged once; frames are then refused (and
 * counted as dropped) and close() still finishes the file with what reached the disk.
 */
import type { MediaFrame, Sink, SinkContext, SinkStats, WireStats } from '../sink.js';
import type { CloseReason, StreamInfo, Track } from '../../core/stream.js';
import type { Archiver } from './archiver.js';
import { jsonFileText } from './file-ops.js';
import { IoError, ioFlush, ioRequest, newIoFile, type IoReply } from './io-thread.js';
import { reportDiscontinuities, reportGaps, type RecordingManifest, type RecordingSidecar, type RecordingStopReason } from './manifest.js';
import type { RecordingPaths } from './paths.js';
import { Outcome, Plan, TimelineBuffer } from './timeline-buffer.js';
import type { TurnQueue } from '../../core/turn-queue.js';
import { MAX_HEADER_BYTES, SAMPLE_RATE, writeWavHeader, type WavLayout } from './wav-header.js';

/** The I/O thread's silence block (16-bit zero or mu-law 0xFF, §2.3): a silence write's largest size. */
const SILENCE_BYTES = 64 * 1024;

const FRAME_SAMPLES = 160;

/** What the factory decided for one stream. */
export interface RecordingSinkSetup {
  readonly info: StreamInfo;
  readonly ctx: SinkContext;
  readonly paths: RecordingPaths;
  readonly layout: WavLayout;
  /** Track of each channel, left first. */
  readonly trackOfChannel: readonly Track[];
  readonly channelOfTrack: readonly [number, number];
  readonly capacityFrames: number;
  /** Ring size to start with; it grows toward capacityFrames when the disk falls behind. */
  readonly initialFrames: number;
  readonly lagFrames: number;
  readonly flushThresholdFrames: number;
  /** Least time between two header patches while recording (the final one is always made). */
  readonly headerIntervalMs: number;
  /** Longest timestamp jump written as silence (sample frames); see TimelineBuffer. */
  readonly maxGapFrames: number;
  /** Largest file (bytes, at most 4095 MiB): the recording stops taking audio there. */
  readonly maxBytes: number;
  /** Told once when the recording stops early (disk low, size ceiling). */
  readonly onStopped: (reason: RecordingStopReason) => void;
  readonly archiver: Archiver;
  /** Told once, when close() is first called, with the promise close() returns. */
  readonly onClosing: (sink: RecordingSink, done: Promise<void>) => void;
  /** Takes work that outlives close() (archiving); shutdown() waits for it. Never rejects. */
  readonly background: (work: Promise<void>) => void;
  /**
   * Where the open and the finish wait their turn (the factory's, shared by its streams): a
   * burst of starts or stops is spread over turns of the event loop, not run in one.
   */
  readonly turns: TurnQueue;
  /** Where the open waits (the factory's): a few opens at a time reach the I/O thread. */
  readonly opens: TurnQueue;
}

/** The recording sink of one stream. Made by {@link createRecordingSinkFactory}. */
export class RecordingSink implements Sink {
  // What accept() reads, first: one or two of the object's cache lines per frame
  // (timeline-buffer.ts, on field order).
  #closing = false;
  #failed = false;
  /** Why the recording stopped taking audio early (disk low, size ceiling), or null. */
  #stopped: RecordingStopReason | null = null;
  readonly #buf: TimelineBuffer;
  /** setup.ctx.stats, read per frame from here: two fewer cold objects per frame (stream-session.ts). */
  readonly #stats: SinkStats;
  #queuedShown = 0;
  readonly #threshold: number;
  #kickQueued = false;

  readonly name = 'recording';
  readonly paths: RecordingPaths;
  readonly #setup: RecordingSinkSetup;
  readonly #header = Buffer.alloc(MAX_HEADER_BYTES);
  readonly #openDone: Promise<void>;
  /** Bound once so a kick allocates nothing. */
  readonly #kick = (): void => {
    this.#kickQueued = false;
    this.#schedule();
  };

  /** The I/O thread's number for our .partial, once it exists (null before, and after finish). */
  #file: number | null = null;
  /** The ring the I/O thread holds for our file (it is sent again only when the ring changes). */
  #ringSent: SharedArrayBuffer | null = null;
  #pumping = false;
  #pumpDone: Promise<void> = Promise.resolve();
  /** The drain's writes (flat triples, IoFlush) and the file position each completes; reused, one drain at a time. */
  readonly #writes: number[] = [];
  readonly #ends: number[] = [];
  /** Sample frames fully on disk, in timeline order. */
  #dataFrames = 0;
  /** What the on-disk header claims (-1 before the first header). */
  #headerFrames = -1;
  /** performance.now() of the last header patch. */
  #headerAt = 0;
  /** flush() wants the header patched at the end of the next drain, whatever the interval. */
  #headerDue = false;
  /** The sidecar was sent (once, with the first media timestamp). */
  #sidecarWritten = false;
  #error: string | null = null;
  #closed: Promise<void> | null = null;
  #wireDuplicate = 0;
  readonly #limitFrames: number;

  constructor(setup: RecordingSinkSetup) {
    this.#setup = setup;
    this.paths = setup.paths;
    this.#buf = new TimelineBuffer({
      format: setup.layout.format,
      channels: setup.layout.channels,
      channelOfTrack: setup.channelOfTrack,
      capacityFrames: setup.capacityFrames,
      initialFrames: setup.initialFrames,
      lagFrames: setup.lagFrames,
      maxGapFrames: setup.maxGapFrames,
    });
    // Data frames that fit under maxBytes with the header and a possible pad byte.
    this.#limitFrames = Math.floor((setup.maxBytes - setup.layout.headerBytes - 1) / setup.layout.blockAlign);
    this.#threshold = setup.flushThresholdFrames;
    this.#stats = setup.ctx.stats;
    // Frames that arrive before the open's turn wait in the buffer, as they wait for any open.
    this.#openDone = setup.opens.run(() => this.#open());
  }

  accept(frame: MediaFrame): void {
    if (this.#closing) return;
    try {
      const stats = this.#stats;
      if (this.#failed || this.#stopped !== null) {
        this.#buf.refuse();
        stats.dropped++;
        return;
      }
      if (this.#buf.accept(frame) === Outcome.dropped) stats.dropped++;
      this.#showQueued();
      if (this.#buf.unsubmitted >= this.#threshold && !this.#kickQueued) {
        // After the current message, not inside it: accept() stays copy-only.
        this.#kickQueued = true;
        queueMicrotask(this.#kick);
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * Stops taking audio (the disk guard, or the size ceiling): later frames are refused and
   * counted as dropped, what is buffered is still written (up to the ceiling), and close()
   * finishes the file as usual with the manifest's `stopped` saying why.
   */
  stopRecording(reason: RecordingStopReason): void {
    if (this.#stopped !== null) return;
    this.#stopped = reason;
    this.#setup.onStopped(reason);
    this.#setup.ctx.log.warn({ reason, durationMs: this.#dataFrames / 8 }, 'recording stopped before the stream ended');
  }

  /** Sample frames the buffer's ring holds now (it grows when the disk falls behind). */
  get ringFrames(): number {
    return this.#buf.allocatedFrames;
  }

  /** Timer tick from the factory: hands buffered audio to the disk if the writer is idle. */
  flushTick(): void {
    this.#schedule();
  }

  /**
   * Writes everything up to the current horizon and resolves when it is on disk (in the page
   * cache) with the header patched. For tests and for callers that want a checkpoint.
   */
  async flush(): Promise<void> {
    await this.#openDone;
    await this.#pumpDone;
    this.#headerDue = true; // read at the end of whichever drain runs now
    this.#schedule();
    await this.#pumpDone;
  }

  close(reason: CloseReason, wire?: WireStats): Promise<void> {
    if (this.#closed === null) {
      // Wire duplicates never reach a sink (the session drops them by sequenceNumber), so the
      // manifest adds the session's count to the ones this buffer saw itself.
      this.#wireDuplicate = wire?.duplicate ?? 0;
      this.#closed = this.#finish(reason);
      this.#setup.onClosing(this, this.#closed);
    }
    return this.#closed;
  }

  #schedule(): void {
    if (this.#pumping || this.#closing || this.#file === null || this.#failed) return;
    this.#pumping = true;
    this.#pumpDone = this.#drain(false);
  }

  async #open(): Promise<void> {
    const { paths, layout } = this.#setup;
    const file = newIoFile();
    writeWavHeader(this.#header, layout, 0);
    try {
      // The I/O thread makes the directory, refuses an existing .wav, opens the .partial
      // exclusively and writes the header. The sidecar waits for the first media (#drain): a
      // stream that reuses a live SID fails here and never writes one (recovery believes it).
      await ioRequest({ op: 'open', file, format: layout.format, channels: layout.channels, dir: paths.dir, wav: paths.wav, partial: paths.partial, header: this.#headerCopy() });
      this.#headerFrames = 0;
      this.#file = file;
      // Frames that arrived while the file was being made may already pass the threshold.
      if (this.#buf.unsubmitted >= this.#threshold) this.#schedule();
    } catch (err) {
      // On error close() still finishes a file the thread created.
      if (err instanceof IoError && err.opened) this.#file = file;
      this.#fail(err);
    }
  }

  /** The header's bytes as a request carries them (a copy: the next patch reuses #header). */
  #headerCopy(): Uint8Array {
    return new Uint8Array(this.#header.subarray(0, this.#setup.layout.headerBytes));
  }

  /**
   * The writer: plans everything up to the horizon (or, at close, the end) and sends it as one
   * flush request: the writes in file order, then the header's new sizes, which the I/O thread
   * patches after them (so the header never claims more than the file holds). The slots are
   * released when the answer says they are on disk.
   */
  async #drain(final: boolean): Promise<void> {
    const buf = this.#buf;
    const { headerBytes, blockAlign } = this.#setup.layout;
    const maxSilence = Math.floor(SILENCE_BYTES / blockAlign);
    const file = this.#file!;
    // Reused: ioFlush encodes them at once, and the next drain starts after the answer.
    const writes = this.#writes;
    const ends = this.#ends;
    writes.length = 0;
    ends.length = 0;
    let submitted = 0;
    // The sidecar, once, as soon as the first media timestamp is known: in the same batch as
    // this drain's writes and ahead of them (the thread runs requests first), so no audio is
    // on disk without it. Settled to its error (or null) so a failed flush leaves no rejection.
    let sidecar: Promise<unknown> | null = null;
    if (!this.#sidecarWritten && buf.firstTimestampMs !== null) {
      this.#sidecarWritten = true;
      const { dir, sidecar: path } = this.#setup.paths;
      sidecar = ioRequest({ op: 'sidecar', dir, path, json: jsonFileText(this.#sidecar()) }).then(
        () => null,
        (err: unknown) => err ?? new Error('sidecar write failed'),
      );
    }
    try {
      while (true) {
        const plan = final ? buf.plan(buf.frontier, buf.finalEnd, maxSilence) : buf.plan(buf.horizon(), 0, maxSilence);
        if (plan === Plan.none) break;
        let n = buf.planFrames;
        const room = this.#limitFrames - buf.filePos; // planPos is filePos: the file grows in order
        if (n >= room) {
          this.stopRecording('size_limit');
          if (room <= 0) break;
          n = room;
        }
        const pos = headerBytes + buf.planPos * blockAlign;
        if (plan === Plan.data) {
          writes.push(buf.sharedOffset + buf.planSlot * blockAlign, n * blockAlign, pos);
          buf.submitData(n);
          submitted += n;
        } else {
          writes.push(-1, n * blockAlign, pos);
          buf.submitSilence(n);
        }
        ends.push(buf.filePos);
      }
      const patch = buf.filePos !== this.#headerFrames && (this.#headerDue || performance.now() - this.#headerAt >= this.#setup.headerIntervalMs);
      this.#headerDue = false;
      if (ends.length > 0 || patch) {
        let ring: SharedArrayBuffer | undefined;
        if (buf.shared !== this.#ringSent) ring = this.#ringSent = buf.shared;
        let err: unknown = null;
        try {
          await ioFlush(file, ring, writes, patch ? buf.filePos * blockAlign : -1);
        } catch (e) {
          err = e;
        }
        // What reached the disk: every write up to the first that failed.
        const written = err === null ? ends.length : err instanceof IoError ? err.written : 0;
        if (written > 0) this.#dataFrames = ends[written - 1]!;
        if (err === null && patch) {
          this.#headerFrames = this.#dataFrames;
          this.#headerAt = performance.now();
        }
        this.#showQueued();
        if (err !== null) throw err;
      }
      if (sidecar !== null) {
        const err = await sidecar;
        if (err !== null) throw err;
      }
    } catch (err) {
      this.#fail(err);
    } finally {
      // Written or abandoned (the stream is degraded then): the slots are free again.
      if (submitted > 0) buf.release(submitted);
      this.#pumping = false;
    }
  }

  async #finish(reason: CloseReason): Promise<void> {
    this.#closing = true;
    const wallEnd = Date.now();
    const { paths, ctx } = this.#setup;
    let manifest: RecordingManifest | null = null;
    await this.#openDone;
    await this.#pumpDone;
    try {
      const file = this.#file;
      if (file !== null) {
        const turns = this.#setup.turns;
        if (!this.#failed) {
          // The last plan and its writes, in a turn of their own (a burst of stops queues 500).
          await turns.run(() => {
            this.#pumping = true;
            return (this.#pumpDone = this.#drain(true));
          });
        }
        const finishing = await turns.run(() => this.#requestFinish(file, reason, wallEnd));
        const done = await finishing.reply;
        manifest = { ...finishing.manifest, bytes: done.bytes!, sha256: done.sha256! };
        if (done.restored === true) ctx.log.warn({ path: paths.partial }, 'recording directory was removed during the stream; recreated it and restored the recording');
      }
    } catch (err) {
      // The I/O thread closed the file; a .partial still there is repaired by
      // recoverPartialRecordings at the next start.
      this.#fail(err);
      manifest = null;
    } finally {
      ctx.stats.queued -= this.#queuedShown;
      this.#queuedShown = 0;
      // No write is in flight and none follows: the ring's memory serves the next stream.
      this.#buf.dispose();
    }
    if (manifest !== null) {
      // The recording is complete and durable here; a slow archive (an upload) must not hold up
      // the stream's end. The factory's shutdown() waits for it.
      this.#setup.background(this.#archive(manifest));
    }
  }

  /**
   * The finish request: final header (even after a write error: a consistent file of what
   * reached the disk), manifest, and one request that truncates, syncs, renames and hashes.
   */
  #requestFinish(file: number, reason: CloseReason, wallEnd: number): { manifest: RecordingManifest; reply: Promise<IoReply> } {
    const { paths, layout } = this.#setup;
    const dataBytes = this.#dataFrames * layout.blockAlign;
    writeWavHeader(this.#header, layout, dataBytes, true);
    const manifest = this.#manifest(reason, wallEnd);
    this.#file = null;
    const reply = ioRequest({
      op: 'finish',
      file,
      size: layout.headerBytes + dataBytes,
      pad: (dataBytes & 1) === 1,
      header: this.#headerCopy(),
      dir: paths.dir,
      partial: paths.partial,
      wav: paths.wav,
      sidecar: paths.sidecar,
      manifest: paths.manifest,
      manifestJson: JSON.stringify(manifest),
    });
    return { manifest, reply };
  }

  async #archive(manifest: RecordingManifest): Promise<void> {
    const { paths, ctx, archiver } = this.#setup;
    try {
      await archiver.archive({ wavPath: paths.wav, manifestPath: paths.manifest, manifest });
    } catch (err) {
      ctx.stats.errors++;
      ctx.log.error({ err, wavPath: paths.wav }, 'recording archive failed; the files stay where they are');
    }
  }

  /** The manifest but for `bytes` and `sha256`, which the I/O thread fills in after the rename. */
  #manifest(reason: CloseReason, wallEnd: number): RecordingManifest {
    const { info, layout, trackOfChannel } = this.#setup;
    const buf = this.#buf;
    const first = buf.firstTimestampMs;
    const durationMs = this.#dataFrames / (SAMPLE_RATE / 1000);
    const { gaps, framesLost } = reportGaps(buf.gaps, trackOfChannel, first ?? 0, buf.discontinuities);
    return {
      version: 1,
      accountSid: info.accountSid,
      callSid: info.callSid,
      streamSid: info.streamSid,
      conferenceSid: info.conferenceSid,
      tracks: trackOfChannel,
      customParameters: info.customParameters,
      format: layout.format,
      sampleRate: SAMPLE_RATE,
      channels: layout.channels,
      mediaStartMs: first,
      mediaEndMs: first === null ? null : first + durationMs + buf.skippedFrames / (SAMPLE_RATE / 1000),
      wallStart: isoTime(info.startedAtMs),
      wallEnd: isoTime(wallEnd),
      durationMs,
      framesReceived: buf.framesReceived,
      framesLost,
      framesDuplicate: buf.framesDuplicate + this.#wireDuplicate,
      framesLate: buf.framesLate,
      framesLateDropped: buf.framesLateDropped,
      framesDropped: buf.framesDropped,
      framesIgnored: buf.framesIgnored,
      gaps,
      discontinuities: reportDiscontinuities(buf.discontinuities, first ?? 0),
      stopped: this.#stopped,
      bytes: 0,
      sha256: '',
      recovered: false,
      closeReason: reason,
      error: this.#error,
    };
  }

  #sidecar(): RecordingSidecar {
    const { info, layout, trackOfChannel } = this.#setup;
    return {
      version: 1,
      accountSid: info.accountSid,
      callSid: info.callSid,
      streamSid: info.streamSid,
      conferenceSid: info.conferenceSid,
      tracks: trackOfChannel,
      customParameters: info.customParameters,
      format: layout.format,
      channels: layout.channels,
      wallStart: isoTime(info.startedAtMs) ?? '',
      mediaStartMs: this.#buf.firstTimestampMs,
    };
  }

  /** Keeps the kind-wide `queued` gauge in 20 ms frames per track of buffered audio. */
  #showQueued(): void {
    const q = Math.ceil((this.#buf.occupied * this.#buf.channels) / FRAME_SAMPLES);
    if (q !== this.#queuedShown) {
      this.#stats.queued += q - this.#queuedShown;
      this.#queuedShown = q;
    }
  }

  /** Counts every error; logs the first of the stream; degrades the stream. */
  #fail(err: unknown): void {
    const { ctx, paths } = this.#setup;
    ctx.stats.errors++;
    if (this.#error === null) {
      this.#error = err instanceof Error ? err.message : String(err);
      ctx.log.error({ err, path: paths.partial }, 'recording degraded: write failed, further frames are dropped');
    }
    this.#failed = true;
    ctx.stats.queued -= this.#queuedShown;
    this.#queuedShown = 0;
  }
}

/** ISO time of an epoch-ms value; null for a value no Date can hold (never throws). */
function isoTime(ms: number): string | null {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}
