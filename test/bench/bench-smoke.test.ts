/**
 * Keeps the benches working: runs `bench/run.ts --quick` from source (tsx, no build) the way CI
 * would, then checks the report has every table and that nothing was lost at a small N. No
 * performance thresholds: a shared 2-core CI box cannot hold them for a few-second run.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { BurstResult } from '../../bench/burst.bench.js';
import type { IngestResult } from '../../bench/ingest.bench.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'streamgate-bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runQuick(): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', '--quick', '--json', join(dir, 'results.json'), '--results', join(dir, 'RESULTS.md'), '--out', join(dir, 'out')],
      { cwd: root, timeout: 150_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => (err ? reject(Object.assign(err, { stderr })) : resolve({ stdout, stderr })),
    );
  });
}

describe('bench/run.ts --quick', () => {
  it('runs every bench and reports tables, with 0 frames lost at a small N', { timeout: 180_000 }, async () => {
    const { stdout } = await runQuick();
    for (const heading of ['### mu-law decode', '### Per frame: receive and sinks', '### Ingest', '### Profile', '| decoder (160-byte frame) |', '| per media message', '| server | tracks | streams |', 'streamgate cross-checks', 'Machine: ']) {
      expect(stdout).toContain(heading);
    }
    for (const name of ['mulaw-js decode', 'alawmulaw mulaw.decode', 'g711 ulawToPCM', 'fast path', 'MediaFrameReader', 'TimelineBuffer.accept', 'LevelSink.accept']) expect(stdout).toContain(name);
    // The same report went into the results file, between the generator's markers.
    const written = readFileSync(join(dir, 'RESULTS.md'), 'utf8');
    expect(written).toContain('<!-- bench/run.ts:begin');
    expect(written).toContain('<!-- bench/run.ts:end -->');

    const json = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { ingest: IngestResult };
    const levels = json.ingest.levels;
    expect(new Set(levels.map((l) => l.server))).toEqual(new Set(['streamgate', 'tcp-floor', 'discard', 'naive']));
    expect(levels.some((l) => l.server === 'streamgate' && l.variant === 'both_tracks')).toBe(true);
    for (const l of levels) {
      expect(l.connected, `${l.server} ${l.variant}`).toBe(l.streams);
      expect(l.sent, `${l.server} ${l.variant}`).toBeGreaterThan(0);
      expect(l.lost, `${l.server} ${l.variant}`).toBe(0);
      expect(l.generator.closedEarly).toBe(0);
      expect(Number.isFinite(l.cpuUsPerMsg)).toBe(true);
    }
    // One alternated round at the compared level (inbound N=20): each of the three servers once,
    // and the CPU targets judged on it.
    const alternated = json.ingest.alternated ?? [];
    expect(alternated.map((a) => [a.variant, a.streams, a.rounds.length])).toEqual([['inbound', 20, 1]]);
    expect(alternated[0]!.rounds[0]!.map((r) => r.server)).toEqual(['streamgate', 'tcp-floor', 'discard']);
    for (const r of alternated[0]!.rounds[0]!) expect([r.streams, r.lost, r.connected]).toEqual([20, 0, 20]);
    expect(stdout).toContain('**inbound, N=20, alternated rounds**');
    expect(stdout).toMatch(/CPU\/message ≤ 1\.5× the raw-TCP floor \(inbound, N=20: median of 1 alternated round /);
    for (const l of levels.filter((x) => x.server === 'streamgate')) {
      expect(l.metricsFrames).toBe(l.sent);
      expect(l.recordingDropped ?? 0).toBe(0);
      // With the recording sink wired, every stream left a manifest counting every frame.
      if (l.manifests !== null) {
        expect(l.manifests.count).toBe(l.streams);
        expect(l.manifests.framesReceived).toBe(l.sent);
      }
    }
  });
});

describe('bench/burst.bench.ts', () => {
  it('opens, streams and stops a small burst on streamgate and the TCP floor: three phases each, both probes answered, 0 lost', { timeout: 90_000 }, async () => {
    const { runBurst } = await import('../../bench/burst.bench.js');
    const results: BurstResult[] = await runBurst({ servers: ['streamgate', 'tcp-floor'], streams: 20, steadyMs: 1000, outDir: dir });
    expect(results.map((r) => r.server)).toEqual(['streamgate', 'tcp-floor']);
    for (const r of results) {
      expect(r.connected, r.server).toBe(20);
      expect(r.sent, r.server).toBeGreaterThan(0);
      expect(r.received, r.server).toBe(r.sent);
      for (const p of ['start', 'steady', 'stop'] as const) {
        // Both probes (kept-alive and new connection) against both servers, the floor included.
        for (const probe of [r.phases[p].probe, r.phases[p].probeNew!]) {
          expect(probe.count, `${r.server} ${p}`).toBeGreaterThan(0);
          // A probe that failed or timed out is recorded as 5000 ms: none may have.
          expect(probe.maxMs, `${r.server} ${p}`).toBeLessThan(5000);
        }
        expect(Number.isFinite(r.phases[p].loop.maxMs)).toBe(true);
      }
      expect(r.phases.steady.lag.count, r.server).toBeGreaterThan(0);
    }
    // Every frame reached the recording too (its I/O thread ran in the bench's child).
    expect(results[0]!.recording).toEqual({ dropped: 0, errors: 0 });
    expect(results[1]!.recording).toBeNull();
  });
});

describe('bench/session-setup.bench.ts', () => {
  it('starts and stops a small burst of real sessions with the production sinks: every stream ends, nothing dropped', { timeout: 60_000 }, async () => {
    const { runSetup } = await import('../../bench/session-setup.bench.js');
    const r = await runSetup(root, 20, 'ts');
    expect(r).toMatchObject({ dropped: 0, errors: 0 });
    for (const ms of [r.startTurnMs, r.startLaterMs, r.stopMs]) expect(ms).toBeGreaterThan(0);
  });
});
