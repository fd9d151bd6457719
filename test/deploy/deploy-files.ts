/** Reads the alert rules and the dashboard under deploy/ for the tests that check them. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../helpers/process.js';

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface DashboardTarget {
  panel: string;
  expr: string;
  datasource: string | undefined;
}

export async function loadAlertRules(): Promise<AlertRule[]> {
  const doc = parse(await readFile(join(ROOT, 'deploy', 'prometheus', 'alerts.yml'), 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

export async function dashboardTargets(): Promise<DashboardTarget[]> {
  const dash = JSON.parse(await readFile(join(ROOT, 'deploy', 'grafana', 'streamgate.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string; datasource?: { uid: string } }[] }[];
  };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr, datasource: t.datasource?.uid })));
}

/** A dashboard expression with Grafana's variables replaced by what "All" and a 1 s scrape make of them. */
export function concreteExpr(expr: string, rateInterval: string): string {
  return expr.replaceAll('$__rate_interval', rateInterval).replaceAll('$instance', '.*');
}

/**
 * The series names an expression reads: every `streamgate_*` identifier, with a histogram's
 * `_bucket`/`_sum`/`_count` suffix folded to the family name, plus Prometheus's own `up`.
 */
export function metricFamilies(expr: string, histograms: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  for (const m of expr.matchAll(/\b(streamgate_[a-z0-9_]+|up)\b(?=\s*[{[)\s]|$)/g)) {
    let name = m[1]!;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    if (base !== name && histograms.has(base)) name = base;
    out.add(name);
  }
  return [...out];
}
