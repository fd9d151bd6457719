/**
 * The import rules of ARCHITECTURE.md "Layers", checked over the real import graph of `src/`
 * (type-only imports included): no cycle anywhere, and every import goes down the layer list.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findCycles, readImportGraph, type ImportGraph } from './import-graph.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Bottom first. A module belongs to the first layer whose prefix its path starts with. */
const LAYERS: readonly { name: string; prefixes: readonly string[]; mayImport: readonly string[] }[] = [
  { name: 'core', prefixes: ['src/core/', 'src/errors.ts'], mayImport: [] },
  { name: 'twilio', prefixes: ['src/twilio/'], mayImport: ['core'] },
  { name: 'emulator', prefixes: ['src/emulator/'], mayImport: ['core', 'twilio'] },
  { name: 'sinks', prefixes: ['src/sinks/'], mayImport: ['core', 'twilio'] },
  { name: 'conditions', prefixes: ['src/conditions/'], mayImport: ['core', 'twilio', 'sinks'] },
  // Shared state across processes (REDIS_URL): implementations of the conditions' store and the gateway's shared views.
  { name: 'state', prefixes: ['src/state/'], mayImport: ['core', 'twilio', 'conditions'] },
  // Inside the gateway: the per-frame path needs no rule, no Redis and no control plane (it is handed `checkStart`);
  // HTTP plumbing needs neither; the control plane reads sessions; the top (assembly, config, metrics) joins them.
  { name: 'gateway-media', prefixes: ['src/gateway/media/'], mayImport: ['core', 'twilio', 'sinks', 'gateway'] },
  { name: 'gateway-http', prefixes: ['src/gateway/http/'], mayImport: ['core', 'twilio', 'gateway'] },
  { name: 'gateway-control', prefixes: ['src/gateway/control/'], mayImport: ['core', 'twilio', 'sinks', 'conditions', 'state', 'gateway', 'gateway-media'] },
  { name: 'gateway', prefixes: ['src/gateway/'], mayImport: ['core', 'twilio', 'sinks', 'conditions', 'state', 'gateway-media', 'gateway-http', 'gateway-control'] },
  {
    name: 'entry',
    prefixes: ['src/cli.ts', 'src/demo.ts', 'src/cluster.ts', 'src/warm-up.ts'],
    mayImport: ['core', 'twilio', 'emulator', 'sinks', 'conditions', 'state', 'gateway', 'gateway-media', 'gateway-http', 'gateway-control'],
  },
];

function layerOf(module: string): string | null {
  return LAYERS.find((l) => l.prefixes.some((p) => module.startsWith(p)))?.name ?? null;
}

/** `from → to` for every import that leaves its layer for one it may not use. */
export function forbiddenImports(graph: ImportGraph): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    const layer = LAYERS.find((l) => l.name === layerOf(from));
    for (const to of targets) {
      const toLayer = layerOf(to);
      if (layer === undefined || toLayer === layer.name) continue;
      if (toLayer === null || !layer.mayImport.includes(toLayer)) out.push(`${from} (${layer.name}) -> ${to} (${toLayer ?? 'no layer'})`);
    }
  }
  return out;
}

describe('module layers', () => {
  const graph = readImportGraph(ROOT);

  it('reads the real source tree, type-only imports included', () => {
    expect(graph.size).toBeGreaterThan(100);
    // conditions/engine.ts imports the bus for its types only.
    expect(graph.get('src/conditions/engine.ts')).toContain('src/core/events.ts');
    for (const [from, targets] of graph) for (const to of targets) expect(graph.has(to), `${from} imports missing ${to}`).toBe(true);
  });

  it('puts every module of src/ in a layer', () => {
    expect([...graph.keys()].filter((m) => layerOf(m) === null)).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(findCycles(graph)).toEqual([]);
  });

  it('imports only downwards: nothing under core, twilio, sinks, conditions or the emulator reaches above its layer, and the media path does not reach the control plane', () => {
    expect(forbiddenImports(graph)).toEqual([]);
  });

  it('catches a cycle and an upward import when one is added', () => {
    const bad: ImportGraph = new Map(graph);
    bad.set('src/sinks/sink.ts', [...(graph.get('src/sinks/sink.ts') ?? []), 'src/gateway/server.ts']);
    expect(forbiddenImports(bad)).toContain('src/sinks/sink.ts (sinks) -> src/gateway/server.ts (gateway)');
    expect(findCycles(bad).some((c) => c.includes('src/sinks/sink.ts') && c.includes('src/gateway/server.ts'))).toBe(true);
    bad.set('src/gateway/media/stream-session.ts', [...(graph.get('src/gateway/media/stream-session.ts') ?? []), 'src/gateway/control/token-ledger.ts']);
    expect(forbiddenImports(bad)).toContain('src/gateway/media/stream-session.ts (gateway-media) -> src/gateway/control/token-ledger.ts (gateway-control)');
  });
});
