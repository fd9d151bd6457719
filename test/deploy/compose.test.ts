/**
 * deploy/docker-compose.yml, checked without a Docker engine: its parts fit together (the
 * services Prometheus scrapes exist and listen where the Dockerfile says, both gateways share one
 * Redis, every file it mounts is in the repository, every variable it sets is one the README
 * documents).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../helpers/process.js';

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
}

const DEPLOY = join(ROOT, 'deploy');
let compose: { services: Record<string, Service>; volumes: Record<string, unknown> };
let dockerfile: string;
let readme: string;

beforeAll(async () => {
  // `merge: true` applies the `<<: *streamgate` keys as Compose does.
  compose = parse(await readFile(join(DEPLOY, 'docker-compose.yml'), 'utf8'), { merge: true }) as typeof compose;
  dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  readme = await readFile(join(ROOT, 'README.md'), 'utf8');
});

const gateways = () => Object.entries(compose.services).filter(([, s]) => s.image === 'streamgate:local');

describe('deploy/docker-compose.yml', () => {
  it('runs two gateways built from the repository Dockerfile, sharing one REDIS_URL that names the redis service', () => {
    const gw = gateways();
    expect(gw.map(([name]) => name)).toEqual(['streamgate-1', 'streamgate-2']);
    for (const [, s] of gw) {
      expect(existsSync(join(resolve(DEPLOY, s.build!.context), s.build!.dockerfile))).toBe(true);
      expect(s.environment?.REDIS_URL).toBe('redis://redis:6379');
      expect(s.depends_on).toMatchObject({ redis: { condition: 'service_healthy' } });
    }
    expect(compose.services.redis?.healthcheck?.test).toContain('ping');
  });

  it('sets only variables the README documents', () => {
    for (const [name, s] of gateways()) {
      for (const key of Object.keys(s.environment ?? {})) expect(readme, `${name}: ${key}`).toContain(`\`${key}\``);
    }
  });

  it('maps each gateway to the port the image listens on', () => {
    const port = /^ENV .*\bPORT=(\d+)/m.exec(dockerfile)?.[1];
    expect(port).toBe('8080');
    for (const [, s] of gateways()) expect(s.ports?.[0]).toMatch(new RegExp(`:${port}$`));
  });

  it('points Prometheus at both gateways with the shipped config and rules', async () => {
    expect(compose.services.prometheus!.volumes).toContain('./prometheus:/etc/prometheus:ro');
    const config = parse(await readFile(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    for (const f of config.rule_files) expect(existsSync(join(DEPLOY, 'prometheus', f)), f).toBe(true);
    const job = config.scrape_configs.find((j) => j.job_name === 'streamgate');
    expect(job?.static_configs.flatMap((c) => c.targets).sort()).toEqual(gateways().map(([name]) => `${name}:8080`));
  });

  it('provisions Grafana with the Prometheus data source and the dashboard', async () => {
    const mounts = compose.services.grafana!.volumes!.map((v) => v.split(':'));
    const dashboard = mounts.find(([src]) => src === './grafana/streamgate.json');
    expect(dashboard).toBeDefined();
    const provider = parse(await readFile(join(DEPLOY, 'grafana', 'provisioning', 'dashboards', 'streamgate.yml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    expect(dirname(dashboard![1]!)).toBe(provider.providers[0]!.options.path);
    const ds = parse(await readFile(join(DEPLOY, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'), 'utf8')) as {
      datasources: { type: string; url: string }[];
    };
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    expect(compose.services.prometheus!.ports?.[0]).toMatch(/:9090$/);
  });

  it('mounts only files and directories that exist, and declares every named volume', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const v of s.volumes ?? []) {
        const src = v.split(':')[0]!;
        if (src.startsWith('.')) expect(existsSync(resolve(DEPLOY, src)), `${name}: ${src}`).toBe(true);
        else expect(Object.keys(compose.volumes), `${name}: ${src}`).toContain(src);
      }
    }
  });
});
