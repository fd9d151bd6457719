import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordingPaths } from '../../../src/sinks/recording/paths.js';

const AC = `AC${'a'.repeat(32)}`;
const CA = `CA${'b'.repeat(32)}`;
const MZ = `MZ${'c'.repeat(32)}`;

describe('recordingPaths', () => {
  it('names the same files path.join would, for any way of writing the data directory', () => {
    for (const dataDir of ['/var/lib/sg', '/var/lib/sg/', 'data', './data/../data2', '/tmp//x/./y', '/var/lib/sg']) {
      const dir = join(dataDir, 'recordings', AC, CA);
      expect(recordingPaths(dataDir, AC, CA, MZ), dataDir).toEqual({
        dir,
        partial: join(dir, `${MZ}.wav.partial`),
        sidecar: join(dir, `${MZ}.partial.json`),
        wav: join(dir, `${MZ}.wav`),
        manifest: join(dir, `${MZ}.json`),
      });
    }
  });

  it('refuses a SID that could walk out of the data directory', () => {
    expect(() => recordingPaths('/d', AC, '../../etc', MZ)).toThrow();
    expect(() => recordingPaths('/d', AC, CA, `MZ${'c'.repeat(31)}/`)).toThrow();
    expect(() => recordingPaths('/d', 'AC..', CA, MZ)).toThrow();
  });
});
