import { describe, expect, it } from 'vitest';
import { InMemoryConferenceStore } from '../../src/conditions/store.js';
import type { AuditEntry } from '../../src/conditions/types.js';

const CF = 'CF0123456789abcdef0123456789abcdef';

function entry(n: number): AuditEntry {
  return {
    atMs: n, scope: CF, scopeKind: 'conference', rule: `r${n}`, trigger: 'api', evidence: { kind: 'api', reason: 'x' }, mediaMs: null,
    dryRun: false, result: 'suppressed', decisionLatencyMs: 0, restMs: null, operation: null, httpStatus: null, twilioCode: null, error: null,
  };
}

describe('InMemoryConferenceStore', () => {
  it('lets exactly one of many concurrent claims win', async () => {
    const store = new InMemoryConferenceStore();
    const wins = await Promise.all(Array.from({ length: 20 }, () => store.tryClaimEnd(CF, 'conference')));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect((await store.get(CF))?.endState).toBe('claimed');
  });

  it('reopens the claim after a failed outcome, and closes it for good after any other', async () => {
    const store = new InMemoryConferenceStore();
    expect(await store.tryClaimEnd(CF, 'conference')).toBe(true);
    await store.recordOutcome(CF, { result: 'failed', by: 'r', atMs: 1 });
    expect((await store.get(CF))?.endState).toBe('open');
    expect(await store.tryClaimEnd(CF, 'conference')).toBe(true);
    await store.recordOutcome(CF, { result: 'already-ended', by: 'r', atMs: 2 });
    expect(await store.tryClaimEnd(CF, 'conference')).toBe(false);
    expect((await store.get(CF))?.outcome).toEqual({ result: 'already-ended', by: 'r', atMs: 2 });
  });

  it('refuses claims once the conference is marked ended, even while a claim is held', async () => {
    const store = new InMemoryConferenceStore();
    expect(await store.tryClaimEnd(CF, 'conference')).toBe(true);
    await store.markEnded(CF, { result: 'already-ended', by: 'conference-end', atMs: 3 });
    await store.recordOutcome(CF, { result: 'failed', by: 'r', atMs: 4 });
    expect((await store.get(CF))?.endState).toBe('ended');
    expect(await store.tryClaimEnd(CF, 'conference')).toBe(false);
  });

  it('tracks streams and keeps a bounded audit trail', async () => {
    const store = new InMemoryConferenceStore({ maxAuditEntries: 3 });
    await store.addStream(CF, 'conference', 'MZ1');
    await store.addStream(CF, 'conference', 'MZ2');
    expect(await store.removeStream(CF, 'MZ1')).toBe(1);
    expect((await store.getOrCreate(CF, 'conference', 0)).streams).toEqual(['MZ2']);
    for (let i = 0; i < 5; i++) await store.appendAudit(CF, entry(i));
    expect((await store.audit(CF)).map((e) => e.rule)).toEqual(['r2', 'r3', 'r4']);
    await store.delete(CF);
    expect(store.size).toBe(0);
    expect(await store.audit(CF)).toEqual([]);
  });
});
