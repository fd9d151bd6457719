/**
 * RULES_FILE as the production composition (createAppGateway) uses it: a bad file stops
 * start-up with one line per mistake; a good one runs the level sink and the engine, and the
 * admin API's POST /v1/conferences/{sid}/end goes through the engine's once-only end.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RulesError } from '../../src/conditions/errors.js';
import { createAppGateway } from '../../src/gateway/app.js';
import { loadConfig } from '../../src/gateway/config.js';
import { createLogger } from '../../src/gateway/logger.js';
import type { Gateway } from '../../src/gateway/server.js';
import { startSim, type Sim } from '../../src/emulator/index.js';
import { newSid } from '../../src/twilio/sids.js';

let dir: string | undefined;
let gateway: Gateway | undefined;
let sim: Sim | undefined;
afterEach(async () => {
  await gateway?.close();
  await sim?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  gateway = sim = dir = undefined;
});

async function config(rules: string, env: Record<string, string> = {}) {
  dir = await mkdtemp(join(tmpdir(), 'sg-app-rules-'));
  const rulesFile = join(dir, 'rules.yaml');
  await writeFile(rulesFile, rules);
  return loadConfig({ HOST: '127.0.0.1', PORT: '0', TRANSCRIPTION: 'none', LOG_LEVEL: 'silent', STREAMGATE_DATA_DIR: dir, RULES_FILE: rulesFile, ...env });
}

describe('createAppGateway with RULES_FILE', () => {
  it('refuses to start on a bad rules file, one line per mistake', async () => {
    const c = await config('rules:\n  - name: a\n    when: { silenceSeconds: -3 }\n  - name: a\n    when: { dtmf: "*x" }\n');
    const err = await createAppGateway(c, { log: createLogger('silent') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RulesError);
    expect((err as RulesError).message.split('\n')).toEqual([
      `RULES_FILE ${c.rulesFile}:3: rules[0] (a): when.silenceSeconds must be greater than 0, got -3`,
      `RULES_FILE ${c.rulesFile}:4: rules[1] (a): name "a" is already used by rules[0]`,
      `RULES_FILE ${c.rulesFile}:5: rules[1] (a): when.dtmf "*x" may hold only the digits 0-9, A-D, * and #`,
    ]);
  });

  it('runs the level sink, and ends a conference from the admin API at most once', async () => {
    const accountSid = newSid('account');
    const authToken = 'app-wiring-token';
    sim = await startSim({ accountSid, authToken, speed: 0 });
    const c = await config('rules:\n  - name: bye\n    when: { phrase: goodbye }\n', { TWILIO_ACCOUNT_SID: accountSid, TWILIO_AUTH_TOKEN: authToken, TWILIO_API_URL: sim.url });
    gateway = await createAppGateway(c, { log: createLogger('silent') });
    expect(gateway.sinkFactories.map((f) => f.name)).toContain('level');
    const http = await gateway.listen(0, '127.0.0.1');
    const cf = (await sim.createConference({ participants: [{}, {}] })).sid;

    // No ADMIN_TOKEN: a state-changing call must say JSON (admin-access.ts).
    const end = (sid = cf) => fetch(`${http}/v1/conferences/${sid}/end`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    const first = await end();
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ conferenceSid: cf, result: 'ended', status: 'completed' });
    const second = await end();
    expect(await second.json()).toMatchObject({ conferenceSid: cf, result: 'already-ended' });

    // A rule that fires afterwards is suppressed too: still one UpdateConference in all.
    gateway.bus.emit('transcript', { accountSid, callSid: newSid('call'), streamSid: newSid('stream'), conferenceSid: cf, track: 'inbound', text: 'goodbye', isFinal: true, words: [], startMs: 0, endMs: 500 });
    // The positive signal: another conference ended through the same engine afterwards. A wrong
    // second UpdateConference for the first would have been sent before this one.
    const other = (await sim.createConference({ participants: [{}] })).sid;
    expect((await end(other)).status).toBe(200);
    const updates = sim.requests({ operation: 'UpdateConference' }).map((r) => [r.path.includes(cf) ? 'first' : 'other', r.status]);
    expect(updates).toEqual([
      ['first', 200],
      ['other', 200],
    ]);
    expect(sim.conference(cf)?.status).toBe('completed');
  });
});
