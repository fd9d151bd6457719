/**
 * The whole loop, as `npm run demo` runs it: emulator conference → participant-join webhook →
 * CreateStream → signed /media → recording and transcript on disk → spoken phrase (real
 * pocketsphinx) → exactly one UpdateConference → stop → conference-end.
 */
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo.js';

describe('streamgate demo', () => {
  it('ends the conference by a spoken phrase, with recordings and transcripts on disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sg-demo-'));
    process.env.STREAMGATE_DATA_DIR = dir;
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const code = await runDemo([], out);
    expect(text).toContain('result: OK');
    expect(code).toBe(0);
    expect(text).toMatch(/phrase spotted: "end the conference"/);
    expect(text.match(/Twilio received UpdateConference \{"Status":"completed"\} -> HTTP 200/g)).toHaveLength(1);
    expect(text).toMatch(/ended \(stopped\)/);

    const files = await readdir(join(dir, 'demo'), { recursive: true });
    const wavs = files.filter((f) => f.endsWith('.wav'));
    const jsonls = files.filter((f) => f.endsWith('.jsonl'));
    expect(wavs).toHaveLength(2);
    expect(jsonls.length).toBeGreaterThanOrEqual(1);
    for (const w of wavs) {
      const manifest = JSON.parse(await readFile(join(dir, 'demo', w.replace(/\.wav$/, '.json')), 'utf8'));
      expect(manifest.framesLost).toBe(0);
      expect(manifest.durationMs).toBeGreaterThan(3000);
    }
    const lines = (await Promise.all(jsonls.map((f) => readFile(join(dir, 'demo', f), 'utf8')))).join('');
    // Alice's flite sentence is transcribed nearly word for word by the generic model.
    expect(lines).toMatch(/alice calling about the quarterly report/);
  }, 120_000);
});
