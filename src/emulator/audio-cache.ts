/**
 * Shares decoded audio files between the calls of one Sim: a load run that starts a thousand
 * calls playing the same WAV decodes it (and base64-encodes its frames) once. Sources are
 * immutable, so sharing is safe; an entry is keyed by path, size and mtime, so a file that
 * changes on disk is read again.
 */
import { stat } from 'node:fs/promises';
import { InvalidInputError } from '../errors.js';
import { loadAudio, type AudioSource } from './audio-source.js';
import type { AudioSpec } from './types.js';

/** Files kept decoded at once; the oldest entry goes first. */
const MAX_ENTRIES = 64;

export class AudioCache {
  readonly #entries = new Map<string, Promise<AudioSource>>();

  async load(spec: AudioSpec | undefined, loop = false): Promise<AudioSource> {
    const path = typeof spec === 'string' ? spec : spec?.type === 'file' ? spec.path : null;
    if (path === null) return loadAudio(spec, loop);
    let key: string;
    try {
      const st = await stat(path);
      key = `${path}\0${st.size}\0${st.mtimeMs}\0${loop}`;
    } catch (err) {
      throw new InvalidInputError(`cannot read audio file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = loadAudio(spec, loop);
      this.#entries.set(key, entry);
      entry.catch(() => this.#entries.delete(key));
      if (this.#entries.size > MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
    }
    return entry;
  }
}
