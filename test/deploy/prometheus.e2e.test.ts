/**
 * The dashboard and the alert rules against the real thing: a Prometheus (Debian's package) on
 * loopback scrapes the production gateway while the Twilio emulator streams a conference and a
 * lossy call through it. Every dashboard and alert expression must parse, name only metrics the
 * gateway exports, and the main panels must return data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startStack, startStream, toneMulaw, type Stack } from '../helpers/stack.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/gateway.js';
import { ROOT } from '../helpers/process.js';
import { concreteExpr, dashboardTargets, loadAlertRules, metricFamilies, type AlertRule, type DashboardTarget } from './deploy-files.js';

/** Panels an operator opens first: each of their queries must return at least one series under load. */
const MAIN_PANELS = [
  'Active streams',
  'Streams ended by outcome /s',
  'Upgrades refused by reason /s',
  'Frames /s by track',
  'Lost, duplicate, late frames /s',
  'Ingest lag p50 / p99',
  'Media bytes /s',
  'Sink queue depth (frames)',
  'Sink dropped frames /s',
  'Conferences ended by result',
  'Requests /s by operation and status',
  'Request duration p99 by operation',
  'Stream status callbacks /s',
  'CPU (cores)',
  'Resident memory',
  'Event-loop lag p50 / p99',
  'Targets up',
];
const RATE_INTERVAL = '15s';

interface PromResult {
  status: 'success' | 'error';
  error?: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

let stack: Stack;
let prom: ChildProcess | undefined;
let promUrl: string;
let promDir: string;
let promLog = '';
let exported: Map<string, string>;
let redis: RedisServer | undefined;
let targets: DashboardTarget[];
let alerts: AlertRule[];

async function query(expr: string): Promise<PromResult> {
  const res = await fetch(`${promUrl}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: expr }) });
  return (await res.json()) as PromResult;
}

async function series(expr: string): Promise<PromResult['data']['result']> {
  const r = await query(expr);
  if (r.status !== 'success') throw new Error(`${expr}: ${r.error}`);
  return r.data.result;
}

/** `# TYPE name type` lines of the gateway's exposition. */
async function exportedFamilies(http: string): Promise<Map<string, string>> {
  const text = await (await fetch(`${http}/metrics`)).text();
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** A WebSocket upgrade without X-Twilio-Signature: refused before 101 (upgrade_rejected_total). */
function unsignedUpgrade(http: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(http.replace(/^http/, 'ws') + '/media');
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(0));
  });
}

beforeAll(async () => {
  [targets, alerts] = await Promise.all([dashboardTargets(), loadAlertRules()]);
  // Real time pacing, so streams are live while Prometheus scrapes. The overload guard is set
  // out of reach: start-up work on a shared 2-core machine must not refuse the streams.
  // With REDIS_URL, so the shared-state panels and alerts have their metrics to name.
  redis = await startRedis();
  stack = await startStack({ speed: 1, env: { MAX_EVENT_LOOP_DELAY_MS: '60000', REDIS_URL: redis.url } });

  // Prometheus with the shipped config, pointed at this gateway, scraping every second.
  promDir = await mkdtemp(join(tmpdir(), 'sg-prom-'));
  const config = parse(await readFile(join(ROOT, 'deploy', 'prometheus', 'prometheus.yml'), 'utf8')) as {
    global: Record<string, string>;
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  const job = config.scrape_configs.find((j) => j.job_name === 'streamgate')!;
  job.static_configs = [{ targets: [new URL(stack.http).host] }];
  await writeFile(join(promDir, 'prometheus.yml'), stringify(config));
  await copyFile(join(ROOT, 'deploy', 'prometheus', 'alerts.yml'), join(promDir, 'alerts.yml'));
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prom = spawn(
    'prometheus',
    [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prom.stderr!.on('data', (d: Buffer) => (promLog = (promLog + d.toString()).slice(-4000)));
  const exited = new Promise((resolve) => prom!.once('exit', resolve));
  await Promise.race([
    waitFor(async () => (await fetch(`${promUrl}/-/ready`).catch(() => null))?.ok === true, 20_000, 'prometheus ready'),
    exited.then(() => {
      throw new Error(`prometheus exited: ${promLog}`);
    }),
  ]);

  // Load: a two-party conference the gateway streams on participant-join, and a lone call with
  // lost, duplicated and reordered frames streamed through the admin API; one refused upgrade.
  const conference = await stack.sim.createConference({
    statusCallback: `${stack.http}/twilio/conference-events`,
    statusCallbackEvent: 'start end join leave',
    participants: [
      { label: 'a', audio: { type: 'tone', hz: 440, ms: 60_000 } },
      { label: 'b', audio: { type: 'tone', hz: 660, ms: 60_000 } },
    ],
  });
  const call = await stack.sim.createCall({
    audio: { type: 'mulaw', data: toneMulaw(60_000) },
    streamFaults: { drop: { rate: 0.05 }, duplicate: { rate: 0.05 }, reorder: { rate: 0.05 } },
  });
  await startStream(stack, call.sid);
  expect(await unsignedUpgrade(stack.http)).toBe(403);
  await waitFor(() => stack.started.size === 3, 20_000, 'three streams started');
  await waitFor(async () => (await series('streamgate_streams_active')).some((s) => Number(s.value[1]) === 3), 30_000, 'Prometheus sees 3 live streams');
  // A few seconds of media in the rate window, then the conference ends through the admin API.
  await waitFor(async () => (await series(`rate(streamgate_media_frames_lost_total[${RATE_INTERVAL}])`)).some((s) => Number(s.value[1]) > 0), 30_000, 'lost frames in a rate');
  const end = await fetch(`${stack.http}/v1/conferences/${conference.sid}/end`, { method: 'POST', headers: { 'content-type': 'application/json' } });
  expect(end.status).toBe(200);
  // A counter born at the end needs two scrapes before rate()/increase() see it.
  await waitFor(async () => (await series(`increase(streamgate_conferences_ended_total[${RATE_INTERVAL}])`)).length > 0, 30_000, 'a conference end scraped twice');
  await waitFor(async () => (await series(`rate(streamgate_streams_total[${RATE_INTERVAL}])`)).length > 0, 30_000, 'an ended stream scraped twice');
  exported = await exportedFamilies(stack.http);
}, 120_000);

afterAll(async () => {
  if (prom !== undefined && prom.exitCode === null) {
    const exited = new Promise((resolve) => prom!.once('exit', resolve));
    prom.kill('SIGTERM');
    await exited;
  }
  await stack?.close();
  await redis?.stop();
  if (promDir !== undefined) await rm(promDir, { recursive: true, force: true });
});

describe('Prometheus scraping a gateway under load', () => {
  it('scrapes the gateway as job "streamgate"', async () => {
    const up = await series('up{job="streamgate"}');
    expect(up.map((s) => s.value[1])).toEqual(['1']);
  });

  it('sees the shared state store up and timed, and the shared-state alert quiet', async () => {
    expect((await series('streamgate_state_store_up')).map((s) => s.value[1])).toEqual(['1']);
    expect((await series('sum(streamgate_state_store_latency_seconds_count)')).map((s) => Number(s.value[1]) > 0)).toEqual([true]);
    expect(await series('ALERTS{alertname="StreamgateStateStoreDown"}')).toEqual([]);
  });

  it('names only metrics the gateway exports, in every dashboard and alert expression', () => {
    const histograms = new Set([...exported].filter(([, t]) => t === 'histogram').map(([n]) => n));
    const missing: string[] = [];
    const exprs = [...targets.map((t) => [t.panel, t.expr]), ...alerts.map((a) => [a.alert, a.expr])];
    for (const [where, expr] of exprs) {
      const names = metricFamilies(expr!, histograms);
      expect(names.length, where).toBeGreaterThan(0);
      for (const name of names) if (name !== 'up' && !exported.has(name)) missing.push(`${where}: ${name}`);
    }
    expect(missing).toEqual([]);
  });

  it('parses every dashboard expression, and the main panels return data', async () => {
    const titles = new Set(targets.map((t) => t.panel));
    for (const title of MAIN_PANELS) expect(titles, title).toContain(title);
    for (const t of targets) {
      const r = await query(concreteExpr(t.expr, RATE_INTERVAL));
      expect(r.error, `${t.panel}: ${t.expr}`).toBeUndefined();
      expect(r.status).toBe('success');
      if (MAIN_PANELS.includes(t.panel)) expect(r.data.result.length, `${t.panel}: ${t.expr}`).toBeGreaterThan(0);
    }
  });

  it('shows the load it carried: inbound frames, the lossy call, the refused upgrade, the ended conference', async () => {
    const frames = await series(`sum by (track) (rate(streamgate_media_frames_total[${RATE_INTERVAL}]))`);
    expect(Number(frames.find((s) => s.metric.track === 'inbound')?.value[1])).toBeGreaterThan(0);
    expect(Number((await series('streamgate_media_frames_lost_total'))[0]?.value[1])).toBeGreaterThan(0);
    expect(Number((await series('streamgate_media_frames_duplicate_total'))[0]?.value[1])).toBeGreaterThan(0);
    const refused = await series('streamgate_upgrade_rejected_total');
    expect(refused.map((s) => s.metric.reason)).toContain('signature_missing');
    const ended = await series('streamgate_conferences_ended_total');
    expect(ended.map((s) => s.metric.result)).toContain('completed');
    const creates = await series('streamgate_twilio_requests_total{operation="CreateStream"}');
    expect(creates.map((s) => s.metric.status)).toContain('200');
  });

  it('loads every alert rule, evaluates each without error, and none fires on a healthy gateway', async () => {
    for (const a of alerts) {
      const r = await query(a.expr);
      expect(r.error, `${a.alert}: ${a.expr}`).toBeUndefined();
    }
    type Rules = { data: { groups: { rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[] }[] } };
    const evaluated = async () => {
      const body = (await (await fetch(`${promUrl}/api/v1/rules?type=alert`)).json()) as Rules;
      return body.data.groups.flatMap((g) => g.rules);
    };
    await waitFor(async () => (await evaluated()).every((r) => r.health !== 'unknown'), 20_000, 'every rule evaluated');
    const rules = await evaluated();
    expect(rules.map((r) => r.name).sort()).toEqual(alerts.map((a) => a.alert).sort());
    for (const r of rules) expect({ name: r.name, health: r.health, lastError: r.lastError ?? '' }).toEqual({ name: r.name, health: 'ok', lastError: '' });
    // Pending counts too: nothing in the load above is an incident (the lossy call is 5 %, but
    // StreamgateFramesLost waits 5 minutes; the one refused upgrade is under its threshold).
    const active = await series('ALERTS{alertname=~"StreamgateDown|StreamgateNotScraped|StreamgateUpgradesRefused|StreamgateConferenceEndFailing"}');
    expect(active).toEqual([]);
  });

  it('reports an unknown metric name as missing (the check above can fail)', () => {
    const histograms = new Set(['streamgate_frame_ingest_lag_seconds']);
    expect(metricFamilies('histogram_quantile(0.99, sum by (le) (rate(streamgate_frame_ingest_lag_seconds_bucket[5m])))', histograms)).toEqual([
      'streamgate_frame_ingest_lag_seconds',
    ]);
    expect(metricFamilies('rate(streamgate_no_such_thing_total[5m]) / up{job="streamgate"}', histograms).filter((n) => !exported.has(n))).toEqual([
      'streamgate_no_such_thing_total',
      'up',
    ]);
  });
});
