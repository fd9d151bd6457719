/**
 * The free-space floor of the data directory (DATA_DIR_MIN_FREE_MB). One statfs per interval for
 * the whole process, never per frame: below the floor new streams are refused (the factory's
 * admission answer) and live recordings are told to stop taking audio; above it again, new
 * streams are admitted (recordings already stopped stay stopped).
 */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

export interface DiskGuardOptions {
  /** The data directory (or the nearest existing ancestor, before it is created). */
  readonly path: string;
  readonly minFreeBytes: number;
  readonly intervalMs: number;
  /** Called once each time free space falls below the floor. */
  readonly onLow: (freeBytes: number) => void;
  readonly log?: Pick<Logger, 'warn' | 'info'>;
}

export class DiskGuard {
  /** Free space was below the floor at the last check. */
  low = false;
  /** Bytes available to us at the last check (-1 before the first). */
  freeBytes = -1;
  readonly #opts: DiskGuardOptions;
  #timer: NodeJS.Timeout | null = null;
  #checking: Promise<void> | null = null;

  constructor(opts: DiskGuardOptions) {
    this.#opts = opts;
  }

  /** Checks now, then every intervalMs (an unref'd timer). */
  start(): void {
    if (this.#timer !== null) return;
    void this.check();
    this.#timer = setInterval(() => void this.check(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One check (concurrent calls share it). Never rejects: a failed statfs leaves the state as it was. */
  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => (this.#checking = null));
    return this.#checking;
  }

  async #check(): Promise<void> {
    const o = this.#opts;
    const free = await freeBytes(o.path);
    if (free === null) return;
    this.freeBytes = free;
    const low = free < o.minFreeBytes;
    if (low === this.low) return;
    this.low = low;
    const fields = { freeMb: Math.floor(free / 2 ** 20), minFreeMb: Math.floor(o.minFreeBytes / 2 ** 20), path: o.path };
    if (low) {
      o.log?.warn(fields, 'data directory below its free-space floor: new streams refused, live recordings stopped');
      o.onLow(free);
    } else {
      o.log?.info(fields, 'data directory above its free-space floor again: new streams admitted');
    }
  }
}

/** Bytes an unprivileged writer may still use where `path` is (or would be created); null if unknown. */
async function freeBytes(path: string): Promise<number | null> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const st = await statfs(p);
      return Number(st.bavail) * Number(st.bsize);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(p) === p) return null;
    }
  }
}
