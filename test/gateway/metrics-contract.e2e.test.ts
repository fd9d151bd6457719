/**
 * The metric names are part of the public contract (docs/design.md, "Metrics"): dashboards and alerts
 * are built on them. The production gateway (createAppGateway, recording on) must expose every
 * one, with the contract's labels, after a real call.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createAppGateway } from '../../src/gateway/app.js';
import { loadConfig } from '../../src/gateway/config.js';
import { createLogger } from '../../src/gateway/logger.js';
import type { Gateway } from '../../src/gateway/server.js';
import { captureLines } from '../helpers/capture.js';
import { metricValue, replay, waitFor } from '../helpers/gateway.js';

/** docs/design.md's list, with the labels each carries (prefix streamgate_). */
const CONTRACT: [name: string, type: string, labels: string[]][] = [
  ['streams_active', 'gauge', []],
  ['streams_total', 'counter', ['outcome']],
  ['media_frames_total', 'counter', ['track']],
  ['media_bytes_total', 'counter', []],
  ['media_frames_lost_total', 'counter', []],
  ['protocol_errors_total', 'counter', ['reason']],
  ['upgrade_rejected_total', 'counter', ['reason']],
  ['frame_ingest_lag_seconds', 'histogram', []],
  ['sink_queue_depth', 'gauge', ['sink']],
  ['sink_dropped_frames_total', 'counter', ['sink']],
  ['sink_errors_total', 'counter', ['sink']],
  ['transcripts_total', 'counter', ['kind']],
  ['conditions_triggered_total', 'counter', ['rule']],
  ['conferences_ended_total', 'counter', ['result']],
  ['twilio_requests_total', 'counter', ['operation', 'status']],
  ['twilio_request_duration_seconds', 'histogram', ['operation']],
];

let gateway: Gateway | undefined;
let dataDir: string | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe('/metrics contract', () => {
  it("exposes every metric docs/design.md names, with its type and labels, and the process metrics", async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sg-metrics-'));
    const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', STREAMGATE_DATA_DIR: dataDir, TRANSCRIPTION: 'none', LOG_LEVEL: 'warn' });
    const quiet = new Writable({ write: (_c, _e, cb) => cb() });
    gateway = await createAppGateway(config, { log: createLogger(config.logLevel, quiet) });
    const http = await gateway.listen(0, '127.0.0.1');
    const ws = http.replace(/^http/, 'ws') + '/media';
    await replay(ws, captureLines(), { closeAfter: true });
    await waitFor(async () => (await metricValue(http, 'streamgate_streams_total', { outcome: 'stopped' })) === 1, 5000, 'stream ended');

    const text = await (await fetch(`${http}/metrics`)).text();
    for (const [name, type, labels] of CONTRACT) {
      expect(text, name).toContain(`# TYPE streamgate_${name} ${type}`);
      // Every sample line of the metric carries exactly the contract's labels (none per call).
      const samples = text.split('\n').filter((l) => l.startsWith(`streamgate_${name}{`) || l.startsWith(`streamgate_${name} `));
      for (const line of samples) {
        if (type === 'histogram') continue; // le/sum/count lines add `le`
        const got = [...line.matchAll(/(\w+)="/g)].map((m) => m[1]).sort();
        expect(got, line).toEqual([...labels].sort());
      }
    }
    expect(text).toMatch(/^streamgate_process_cpu_seconds_total /m);
    expect(text).toMatch(/^streamgate_nodejs_eventloop_lag_seconds /m);
    // Values after the real call, recording on.
    expect(await metricValue(http, 'streamgate_media_frames_total', { track: 'inbound' })).toBe(363);
    expect(await metricValue(http, 'streamgate_sink_queue_depth', { sink: 'recording' })).toBe(0);
    // The unpaced replay outruns the recording buffer before its file is even open: whatever it
    // dropped is counted in the metric and in the manifest alike.
    const manifest = JSON.parse(
      await readFile(join(dataDir, 'recordings', 'AC437bfe093bc08b7c0e971c080618c83e', 'CAc17e4a124d5375ccacd5f673ac6764b4', 'MZ726559aad844c8e924c9d32545e4e46f.json'), 'utf8'),
    ) as { framesReceived: number; framesDropped: number };
    expect(manifest.framesReceived).toBe(363);
    expect(await metricValue(http, 'streamgate_sink_dropped_frames_total', { sink: 'recording' })).toBe(manifest.framesDropped);
    expect(await metricValue(http, 'streamgate_frame_ingest_lag_seconds_count')).toBe(363);
    // No per-call label anywhere: no SID appears in the exposition.
    expect(text).not.toMatch(/(AC|CA|MZ|CF)[0-9a-f]{32}/);
  });
});
