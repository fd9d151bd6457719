import { describe, expect, it } from 'vitest';
import { runSimCli } from '../../src/emulator/index.js';
import { newSid } from '../../src/twilio/sids.js';
import { waitFor } from '../helpers/wait.js';

function sink(): { write(s: string): boolean; text: () => string } {
  let text = '';
  return {
    write(s: string) {
      text += s;
      return true;
    },
    text: () => text,
  };
}

describe('streamgate sim', () => {
  it('generates and prints credentials when none are set, serves, and stops when told', async () => {
    const out = sink();
    const ac = new AbortController();
    const done = runSimCli(['--port', '0', '--log-level', 'silent'], { env: {}, stdout: out, stderr: sink(), signal: ac.signal });
    await waitFor(() => out.text().includes('control API'), 10_000, 'the start-up banner');
    const url = /TWILIO_API_URL=(\S+)/.exec(out.text())![1]!;
    const sid = /TWILIO_ACCOUNT_SID=(AC[0-9a-f]{32})/.exec(out.text())![1]!;
    const token = /TWILIO_AUTH_TOKEN=([0-9a-f]{32}) {3}\(generated\)/.exec(out.text())![1]!;
    const res = await fetch(`${url}/2010-04-01/Accounts/${sid}/Conferences.json`, {
      headers: { Authorization: 'Basic ' + Buffer.from(`${sid}:${token}`).toString('base64') },
    });
    expect(res.status).toBe(200);
    ac.abort();
    expect(await done).toBe(0);
    expect(out.text()).toContain('stopped');
  });

  it('takes credentials from the environment and never prints a given token', async () => {
    const out = sink();
    const ac = new AbortController();
    const sid = newSid('account');
    const done = runSimCli(['--port=0', '--log-level=silent', '--speed', '0'], {
      env: { TWILIO_ACCOUNT_SID: sid, TWILIO_AUTH_TOKEN: 'env-secret-token' },
      stdout: out,
      stderr: sink(),
      signal: ac.signal,
    });
    await waitFor(() => out.text().includes('control API'), 10_000, 'the start-up banner');
    expect(out.text()).toContain(`TWILIO_ACCOUNT_SID=${sid}`);
    expect(out.text()).not.toContain('env-secret-token');
    const url = /TWILIO_API_URL=(\S+)/.exec(out.text())![1]!;
    const state = (await (await fetch(`${url}/sim/state`)).json()) as { accountSid: string; speed: number };
    expect(state).toMatchObject({ accountSid: sid, speed: 0 });
    ac.abort();
    expect(await done).toBe(0);
  });

  it('prefers flags over the environment', async () => {
    const out = sink();
    const ac = new AbortController();
    const sid = newSid('account');
    ac.abort();
    const code = await runSimCli(['--port', '0', '--account-sid', sid, '--auth-token', 't', '--log-level', 'silent'], {
      env: { TWILIO_ACCOUNT_SID: newSid('account') },
      stdout: out,
      stderr: sink(),
      signal: ac.signal,
    });
    expect(code).toBe(0);
    expect(out.text()).toContain(`TWILIO_ACCOUNT_SID=${sid}`);
  });

  it('prints usage and rejects bad arguments', async () => {
    const out = sink();
    const err = sink();
    expect(await runSimCli(['--help'], { stdout: out, stderr: err })).toBe(0);
    expect(out.text()).toMatch(/^usage: streamgate sim/);
    // --help names every control route, as GET /sim/ lists them.
    for (const route of ['GET /sim/:', 'POST /sim/calls:', 'POST /sim/calls/{CallSid}/digits:', 'GET /sim/streams:', 'POST /sim/faults:']) {
      expect(out.text()).toContain(route);
    }
    expect(await runSimCli(['--port', 'x'], { stdout: out, stderr: err })).toBe(2);
    expect(await runSimCli(['--bogus'], { stdout: out, stderr: err })).toBe(2);
    expect(await runSimCli(['--port', '0', '--account-sid', 'nope', '--log-level', 'silent'], { stdout: out, stderr: err, env: {} })).toBe(1);
    expect(err.text()).toContain('accountSid must match');
  });
});
