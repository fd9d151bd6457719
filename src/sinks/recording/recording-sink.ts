/**
 * One stream's recording: the hot path copies frames into a TimelineBuffer; a writer loop, one
 * outstanding write at a time, moves them into `{StreamSid}.wav.partial` and patches the header
 * at most every headerIntervalMs (1 s), so the file on disk is always a valid WAV of everything
 * flushed up to a second ago, and of all of it once closed:
 *
 *   accept(frame) ──copy──► TimelineBuffer ──plan/submit──► FileHandle.write(ring bytes, at pos)
 *        sync, no I/O          bounded ring      ▲                 then header sizes patched
 *                                                └── kicked by the factory's staggered ticker
 *                                                    (every flushIntervalMs) or when the buffer
 *                                                    passes flushThresholdFrames
 *
 * close(): last flush (everything, plus trailing dropped stretches as silence), final header,
 * fsync, rename .partial → .wav (first copied back from the open handle if its directory was
 * removed meanwhile), manifest (atomic), sidecar removed; close() resolves, and the
 * archiver runs in the background (the factory's shutdown() waits for it).
 * A write error degrades the stream: counted and logged once; frames are then refused (and
 * counted as dropped) and close() still finishes the file with what reached the disk.
 */
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import type { MediaFrame, Sink, SinkContext, WireStats } from '../sink.js';
import type { CloseReason, StreamInfo, Track } from '../../core/stream.js';
import type { Archiver } from './archiver.js';
import { exists, fsyncDir, sha256File, writeFully, writeJsonAtomic } from './file-ops.js';
import { reportDiscontinuities, reportGaps, type RecordingManifest, type RecordingSidecar, type RecordingStopReason } from './manifest.js';
import type { RecordingPaths } from './paths.js';
import { Outcome, Plan, TimelineBuffer } from './timeline-buffer.js';
import { MAX_HEADER_BYTES, SAMPLE_RATE, writeWavHeader, type WavLayout } from './wav-header.js';

/** Shared read-only silence for skipped stretches: 16-bit zero and mu-law 0xFF (§2.3). */
const SILENCE_BYTES = 64 * 1024;
const SILENCE_PCM16 = Buffer.alloc(SILENCE_BYTES, 0);
const SILENCE_MULAW = Buffer.alloc(SILENCE_BYTES, 0xff);

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
}

/** The recording sink of one stream. Made by {@link createRecordingSinkFactory}. */
export class RecordingSink implements Sink {
  readonly name = 'recording';
  readonly paths: RecordingPaths;

  readonly #setup: RecordingSinkSetup;
  readonly #buf: TimelineBuffer;
  readonly #header = Buffer.alloc(MAX_HEADER_BYTES);
  readonly #silence: Buffer;
  readonly #threshold: number;
  readonly #openDone: Promise<void>;
  /** Bound once so a kick allocates nothing. */
  readonly #kick = (): void => {
    this.#kickQueued = false;
    this.#schedule();
  };

  #fh: FileHandle | null = null;
  #failed = false;
  #closing = false;
  #pumping = false;
  #pumpDone: Promise<void> = Promise.resolve();
  #kickQueued = false;
  /** Sample frames fully on disk, in timeline order. */
  #dataFrames = 0;
  /** What the on-disk header claims (-1 before the first header). */
  #headerFrames = -1;
  /** performance.now() of the last header patch. */
  #headerAt = 0;
  /** flush() wants the header patched at the end of the next drain, whatever the interval. */
  #headerDue = false;
  #sidecarHasStart = false;
  #queuedShown = 0;
  #error: string | null = null;
  #closed: Promise<void> | null = null;
  #wireDuplicate = 0;
  /** Why the recording stopped taking audio early (disk low, size ceiling), or null. */
  #stopped: RecordingStopReason | null = null;
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
    this.#silence = setup.layout.format === 'pcm16' ? SILENCE_PCM16 : SILENCE_MULAW;
    this.#threshold = setup.flushThresholdFrames;
    this.#openDone = this.#open();
  }

  accept(frame: MediaFrame): void {
    if (this.#closing) return;
    try {
      const stats = this.#setup.ctx.stats;
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
    if (this.#pumping || this.#closing || this.#fh === null || this.#failed) return;
    this.#pumping = true;
    this.#pumpDone = this.#drain(false);
  }

  async #open(): Promise<void> {
    const { paths, layout } = this.#setup;
    try {
      await mkdir(paths.dir, { recursive: true });
      if (await exists(paths.wav)) throw new Error(`${paths.wav} already exists; refusing to overwrite it`);
      // Read-write: should its directory be removed mid-stream, close() reads the file back.
      const fh = await open(paths.partial, 'wx+');
      try {
        // Only once the exclusive open made the files ours: a stream that reuses a live SID must
        // fail above, not overwrite the live stream's sidecar (recovery believes it).
        await writeJsonAtomic(paths.sidecar, this.#sidecar());
        writeWavHeader(this.#header, layout, 0);
        await writeFully(fh, this.#header, 0, layout.headerBytes, 0);
        this.#headerFrames = 0;
      } finally {
        // Only now may the writer start (it rewrites the sidecar too); on error close() still
        // finishes the file it opened.
        this.#fh = fh;
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  /** The writer loop: one write at a time until nothing is left below the horizon. */
  async #drain(final: boolean): Promise<void> {
    const buf = this.#buf;
    const { headerBytes, blockAlign } = this.#setup.layout;
    const maxSilence = Math.floor(SILENCE_BYTES / blockAlign);
    try {
      const fh = this.#fh!;
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
        const at = headerBytes + buf.planPos * blockAlign;
        if (plan === Plan.data) {
          const off = buf.planSlot * blockAlign;
          buf.submitData(n);
          try {
            await writeFully(fh, buf.bytes, off, n * blockAlign, at);
          } finally {
            buf.release(n); // on error the slots are abandoned: the stream is degraded anyway
          }
        } else {
          buf.submitSilence(n);
          await writeFully(fh, this.#silence, 0, n * blockAlign, at);
        }
        this.#dataFrames = buf.filePos;
        this.#showQueued();
      }
      if (this.#dataFrames !== this.#headerFrames && (this.#headerDue || performance.now() - this.#headerAt >= this.#setup.headerIntervalMs)) {
        await this.#patchHeader(false);
      }
      this.#headerDue = false;
      if (!this.#sidecarHasStart && buf.firstTimestampMs !== null) {
        this.#sidecarHasStart = true;
        await writeJsonAtomic(this.#setup.paths.sidecar, this.#sidecar());
      }
    } catch (err) {
      this.#fail(err);
    } finally {
      this.#pumping = false;
    }
  }

  async #patchHeader(final: boolean): Promise<void> {
    const { layout } = this.#setup;
    const dataBytes = this.#dataFrames * layout.blockAlign;
    writeWavHeader(this.#header, layout, dataBytes, final);
    await writeFully(this.#fh!, this.#header, 0, layout.headerBytes, 0);
    this.#headerFrames = this.#dataFrames;
    this.#headerAt = performance.now();
  }

  async #finish(reason: CloseReason): Promise<void> {
    this.#closing = true;
    const wallEnd = Date.now();
    const { paths, layout, ctx } = this.#setup;
    let manifest: RecordingManifest | null = null;
    await this.#openDone;
    await this.#pumpDone;
    try {
      const fh = this.#fh;
      if (fh !== null) {
        if (!this.#failed) {
          this.#pumping = true;
          this.#pumpDone = this.#drain(true);
          await this.#pumpDone;
        }
        // Even after a write error, leave a consistent file holding what reached the disk.
        const dataBytes = this.#dataFrames * layout.blockAlign;
        await fh.truncate(layout.headerBytes + dataBytes);
        if ((dataBytes & 1) === 1) await writeFully(fh, SILENCE_PCM16, 0, 1, layout.headerBytes + dataBytes);
        await this.#patchHeader(true);
        await fh.sync();
        if (!(await exists(paths.partial))) await this.#restorePartial(fh);
        this.#fh = null;
        await fh.close();
        await rename(paths.partial, paths.wav);
        await fsyncDir(paths.dir);
        manifest = await this.#manifest(reason, wallEnd);
        await writeJsonAtomic(paths.manifest, manifest);
        await unlink(paths.sidecar).catch(() => undefined);
        await fsyncDir(paths.dir);
      }
    } catch (err) {
      this.#fail(err);
      manifest = null;
      const fh = this.#fh;
      this.#fh = null;
      // The .partial (if still there) is repaired by recoverPartialRecordings at the next start.
      await fh?.close().catch(() => undefined);
    } finally {
      ctx.stats.queued -= this.#queuedShown;
      this.#queuedShown = 0;
    }
    if (manifest !== null) {
      // The recording is complete and durable here; a slow archive (an upload) must not hold up
      // the stream's end. The factory's shutdown() waits for it.
      this.#setup.background(this.#archive(manifest));
    }
  }

  /**
   * The .partial's directory was removed during the stream (its data lives on through our open
   * handle, unlinked): recreate the directory and copy the file back to its path, so the
   * recording still finishes. Rare, so a plain chunked copy.
   */
  async #restorePartial(fh: FileHandle): Promise<void> {
    const { paths, ctx } = this.#setup;
    await mkdir(paths.dir, { recursive: true });
    const out = await open(paths.partial, 'wx');
    try {
      const size = (await fh.stat()).size;
      const chunk = Buffer.allocUnsafe(1 << 20);
      for (let pos = 0; pos < size; ) {
        const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, size - pos), pos);
        if (bytesRead === 0) throw new Error(`${paths.partial}: could not read back byte ${pos} of ${size}`);
        await writeFully(out, chunk, 0, bytesRead, pos);
        pos += bytesRead;
      }
      await out.sync();
    } finally {
      await out.close();
    }
    ctx.log.warn({ path: paths.partial }, 'recording directory was removed during the stream; recreated it and restored the recording');
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

  async #manifest(reason: CloseReason, wallEnd: number): Promise<RecordingManifest> {
    const { info, paths, layout, trackOfChannel } = this.#setup;
    const buf = this.#buf;
    const first = buf.firstTimestampMs;
    const durationMs = this.#dataFrames / (SAMPLE_RATE / 1000);
    const { gaps, framesLost } = reportGaps(buf.gaps, trackOfChannel, first ?? 0, buf.discontinuities);
    const [st, sha256] = await Promise.all([stat(paths.wav), sha256File(paths.wav)]);
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
      bytes: st.size,
      sha256,
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
      this.#setup.ctx.stats.queued += q - this.#queuedShown;
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
