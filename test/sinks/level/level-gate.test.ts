import { describe, expect, it } from 'vitest';
import { LevelGate, MIN_DBFS, dbfsToMeanSquare, energyToDbfs } from '../../../src/sinks/dsp/level.js';
import { decodeMulaw } from '../../../src/twilio/mulaw.js';

/** The energy of a 160-sample frame whose RMS is `dbfs`. */
const at = (dbfs: number) => dbfsToMeanSquare(dbfs) * 160;

describe('energyToDbfs', () => {
  it('reads the loudest mu-law codes near 0 dBFS and code 0xFF as digital silence', () => {
    const pcm = new Int16Array(160);
    const loud = new Uint8Array(160).map((_, i) => (i % 2 === 0 ? 0x00 : 0x80));
    expect(energyToDbfs(decodeMulaw(loud, 160, pcm), 160)).toBeCloseTo(-0.17, 1);
    expect(energyToDbfs(decodeMulaw(new Uint8Array(160).fill(0xff), 160, pcm), 160)).toBe(MIN_DBFS);
  });

  it('round-trips through dbfsToMeanSquare', () => {
    for (const db of [-3, -40, -45, -90]) expect(energyToDbfs(at(db), 160)).toBeCloseTo(db, 9);
  });
});

describe('LevelGate', () => {
  /** Feeds 20 ms frames at the given levels from media time `t0`; returns the changes as [speaking, sinceMs, atMs]. */
  function run(levels: number[], gate = new LevelGate(), t0 = 0): [boolean, number, number][] {
    const changes: [boolean, number, number][] = [];
    levels.forEach((db, i) => {
      if (gate.update(at(db), 160, t0 + 20 * i)) changes.push([gate.speaking, gate.sinceMs, gate.changedAtMs]);
    });
    return changes;
  }
  const repeat = (db: number, frames: number) => Array<number>(frames).fill(db);

  it('turns to speech after 60 ms above -40 dBFS, dated from the first loud frame', () => {
    expect(run([...repeat(-90, 5), ...repeat(-20, 3)])).toEqual([[true, 100, 160]]);
  });

  it('ignores a 40 ms click', () => {
    expect(run([...repeat(-90, 5), ...repeat(-10, 2), ...repeat(-90, 20)])).toEqual([]);
  });

  it('turns silent only after 300 ms below -45 dBFS, dated from the first quiet frame', () => {
    expect(run([...repeat(-20, 10), ...repeat(-70, 14), ...repeat(-20, 1), ...repeat(-70, 15)])).toEqual([
      [true, 0, 60],
      [false, 500, 800], // 280 ms of quiet, a loud frame at 480, then 300 ms from 500
    ]);
  });

  it('does not flap on line noise hovering between the thresholds', () => {
    // Noise wandering -47..-38 dBFS: each loud stretch is shorter than the attack, so no speech.
    const noise = Array.from({ length: 500 }, (_, i) => [-47, -42, -38, -41, -44, -38, -46][i % 7]!);
    expect(run(noise)).toEqual([]);
    // Once speaking, the same noise (mostly above -45) never counts as 300 ms of silence.
    const gate = new LevelGate();
    expect(run(repeat(-20, 5), gate)).toHaveLength(1);
    expect(run(noise, gate, 100)).toEqual([]);
    expect(gate.speaking).toBe(true);
  });

  it('takes its thresholds and durations from options', () => {
    const gate = new LevelGate({ onDbfs: -30, offDbfs: -50, attackMs: 20, hangoverMs: 40 });
    expect(run([-35, -25, -45, -55, -55], gate)).toEqual([
      [true, 20, 40],
      [false, 60, 100],
    ]);
    expect(() => new LevelGate({ onDbfs: -50, offDbfs: -40 })).toThrow(RangeError);
  });
});
