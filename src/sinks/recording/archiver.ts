/**
 * The archive hook: called once per finished recording, after its manifest is written. The sink
 * logs and counts a failure and leaves the files where they are, so an archiver may fail freely
 * but must never remove a file before its copy is safe.
 */
import { copyFile, link, mkdir, unlink } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { basename, join } from 'node:path';
import type { RecordingManifest } from './manifest.js';
import { assertSid } from '../../twilio/sids.js';

/** A finished recording, as handed to {@link Archiver.archive}. */
export interface ArchivedRecording {
  readonly wavPath: string;
  readonly manifestPath: string;
  readonly manifest: RecordingManifest;
}

/** Where finished recordings go (a directory, an object store, …). */
export interface Archiver {
  archive(rec: ArchivedRecording): Promise<void>;
}

export interface LocalDirectoryArchiverOptions {
  /**
   * Move finished recordings under `{targetDir}/{AccountSid}/{CallSid}/`. Unset (the default):
   * recordings stay where they were written and archive() does nothing.
   */
  readonly targetDir?: string;
}

/**
 * The default archiver. Without a target directory it leaves recordings in place. With one, it
 * moves the .wav and then the manifest there without ever overwriting: a hard link (atomic, fails
 * if the name exists) then unlink of the source, or, across file systems, an exclusive copy to a
 * temp name, rename, then unlink.
 */
export class LocalDirectoryArchiver implements Archiver {
  readonly #targetDir: string | null;

  constructor(opts: LocalDirectoryArchiverOptions = {}) {
    this.#targetDir = opts.targetDir ?? null;
  }

  async archive(rec: ArchivedRecording): Promise<void> {
    if (this.#targetDir === null) return;
    const dir = join(
      this.#targetDir,
      assertSid('account', rec.manifest.accountSid),
      assertSid('call', rec.manifest.callSid),
    );
    await mkdir(dir, { recursive: true });
    await moveNoClobber(rec.wavPath, join(dir, basename(rec.wavPath)));
    await moveNoClobber(rec.manifestPath, join(dir, basename(rec.manifestPath)));
  }
}

async function moveNoClobber(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = `${to}.tmp`;
    await copyFile(from, tmp, fsConstants.COPYFILE_EXCL);
    await link(tmp, to).finally(() => unlink(tmp));
  }
  await unlink(from);
}
