/**
 * The alert rules and the dashboard under deploy/, checked with Prometheus's own tool (Debian's
 * `prometheus` package ships `promtool`): the rules load, their unit tests pass, every alert is
 * unit-tested both ways (fires / stays quiet) and has a runbook section, and the unit tests are
 * sharp enough that moving a threshold breaks them.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../helpers/process.js';
import { dashboardTargets, loadAlertRules, type AlertRule } from './deploy-files.js';

const run = promisify(execFile);
const PROM_DIR = join(ROOT, 'deploy', 'prometheus');

interface UnitTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

async function promtool(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: PROM_DIR });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

let alerts: AlertRule[];
beforeAll(async () => {
  alerts = await loadAlertRules();
});

describe('deploy/prometheus/alerts.yml', () => {
  it('passes `promtool check rules`', async () => {
    const r = await promtool('check', 'rules', 'alerts.yml');
    expect(r.out).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(r.code).toBe(0);
  });

  it('is loaded by deploy/prometheus/prometheus.yml (`promtool check config`)', async () => {
    const r = await promtool('check', 'config', 'prometheus.yml');
    expect(r.out).toContain('SUCCESS: prometheus.yml is valid prometheus config file syntax');
    expect(r.out).toContain('SUCCESS: 1 rule files found');
    expect(r.code).toBe(0);
  });

  it('passes its unit tests (`promtool test rules alerts.test.yml`)', async () => {
    const r = await promtool('test', 'rules', 'alerts.test.yml');
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('unit-tests every alert both ways: an evaluation where it fires and one where it stays quiet', async () => {
    const unit = parse(await readFile(join(PROM_DIR, 'alerts.test.yml'), 'utf8')) as UnitTests;
    expect(unit.rule_files).toEqual(['alerts.yml']);
    const evals = unit.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const { alert } of alerts) {
      const mine = evals.filter((e) => e.alertname === alert);
      expect(mine.some((e) => e.exp_alerts.length > 0), `${alert} fires somewhere`).toBe(true);
      expect(mine.some((e) => e.exp_alerts.length === 0), `${alert} is quiet somewhere`).toBe(true);
    }
    // And no test for an alert that no longer exists.
    for (const e of evals) expect(alerts.map((a) => a.alert)).toContain(e.alertname);
  });

  it('gives every alert a severity, a summary and a runbook section in deploy/RUNBOOK.md', async () => {
    const runbook = await readFile(join(ROOT, 'deploy', 'RUNBOOK.md'), 'utf8');
    const sections = [...runbook.matchAll(/^## (\S+)$/gm)].map((m) => m[1]);
    for (const a of alerts) {
      expect(['page', 'ticket'], a.alert).toContain(a.labels.severity);
      expect(a.annotations.summary, a.alert).toBeTruthy();
      expect(a.annotations.runbook, a.alert).toBe(`deploy/RUNBOOK.md#${a.alert.toLowerCase()}`);
      expect(sections, a.alert).toContain(a.alert);
    }
    // Every section documents an alert that exists.
    expect(sections.sort()).toEqual(alerts.map((a) => a.alert).sort());
  });

  describe('the unit tests catch a moved threshold', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'sg-promtool-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it.each([
      ['ingest lag p99 over 500 ms instead of 50 ms', '> 0.05', '> 0.5'],
      ['frames lost over 5 % instead of 1 %', '> 0.01', '> 0.05'],
      ['StreamgateDown after 20 min instead of 2', 'for: 2m', 'for: 20m'],
    ])('%s fails `promtool test rules`', async (_what, from, to) => {
      const rules = await readFile(join(PROM_DIR, 'alerts.yml'), 'utf8');
      expect(rules).toContain(from);
      await writeFile(join(dir, 'alerts.yml'), rules.replace(from, to));
      await copyFile(join(PROM_DIR, 'alerts.test.yml'), join(dir, 'alerts.test.yml'));
      const r = await promtool('test', 'rules', join(dir, 'alerts.test.yml'));
      expect(r.out).toContain('FAILED');
      expect(r.code).not.toBe(0);
    });
  });
});

describe('deploy/grafana/streamgate.json', () => {
  it('is an importable dashboard whose every panel queries the data source variable', async () => {
    const dash = JSON.parse(await readFile(join(ROOT, 'deploy', 'grafana', 'streamgate.json'), 'utf8')) as {
      uid: string;
      title: string;
      id: unknown;
      templating: { list: { name: string; type: string; query: unknown }[] };
      panels: { id: number; type: string; datasource?: { uid: string } }[];
    };
    expect(dash.uid).toBe('streamgate');
    expect(dash.id).toBeNull(); // import assigns one
    const ds = dash.templating.list.find((v) => v.name === 'datasource');
    expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dash.panels.filter((x) => x.type !== 'row')) expect(p.datasource?.uid, String(p.id)).toBe('${datasource}');
    const targets = await dashboardTargets();
    expect(targets.length).toBeGreaterThan(20);
    for (const t of targets) expect(t.datasource, t.panel).toBe('${datasource}');
  });
});
