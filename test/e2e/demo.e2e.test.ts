/**
 * The whole loop, as `npm run demo` runs it: two emulated phones run <Dial><Conference> TwiML →
 * participant-join webhook →
 * CreateStream → signed /media → recording and transcript on disk → spoken phrase (real
 * pocketsphinx) → exactly one UpdateConference → stop → conference-end.
 */
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo.js';
import { soxInfo } from '../sinks/recording/helpers.js';

describe('streamgate demo', () => {
  it('ends the conference by a spoken phrase, with recordings and transcripts on disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sg-demo-'));
    process.env.STREAMGATE_DATA_DIR = dir;
    // A loaded test machine must not make the gateway refuse upgrades as overloaded.
    process.env.MAX_EVENT_LOOP_DELAY_MS = '60000';
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const code = await runDemo([], out);
    expect(text).toContain('result: OK');
    expect(code).toBe(0);
    expect(text).toMatch(/phrase spotted: "end the conference"/);
    expect(text.match(/Twilio received UpdateConference \{"Status":"completed"\} -> HTTP 200/g)).toHaveLength(1);
    expect(text).toMatch(/ended \(stopped\)/);
    // The rule that ended it is the phrase rule, and only it (not the 60 s maximum).
    expect(text).toMatch(/^ {2}rules fired: hang-up-phrase$/m);
    // Twilio's conference-end callback reached the gateway, for this conference, once.
    // The participants dialled in through TwiML (<Dial><Conference statusCallback=…>).
    const conferenceSid = /dialled into conference (CF[0-9a-f]{32}) \(<Dial><Conference>\)/.exec(text)?.[1];
    expect(conferenceSid).toBeDefined();
    expect(text.match(/gateway received conference-end for (CF[0-9a-f]{32})/g)).toEqual([`gateway received conference-end for ${conferenceSid}`]);
    expect(text).toMatch(/^ {2}conference-end callback received by the gateway: yes$/m);

    const files = await readdir(join(dir, 'demo'), { recursive: true });
    const wavs = files.filter((f) => f.endsWith('.wav'));
    const jsonls = files.filter((f) => f.endsWith('.jsonl'));
    expect(wavs).toHaveLength(2);
    expect(jsonls.length).toBeGreaterThanOrEqual(1);
    for (const w of wavs) {
      const manifest = JSON.parse(await readFile(join(dir, 'demo', w.replace(/\.wav$/, '.json')), 'utf8'));
      expect(manifest.framesLost).toBe(0);
      expect(manifest.durationMs).toBeGreaterThan(3000);
      // The file plays: sox reads its header as 8 kHz 16-bit mono PCM, and its length in
      // samples is the manifest's duration (the media-clock span) to the sample.
      const info = await soxInfo(join(dir, 'demo', w));
      expect(info).toMatchObject({ Channels: '1', 'Sample Rate': '8000', Precision: '16-bit', 'Sample Encoding': '16-bit Signed Integer PCM' });
      const samples = Number(/= (\d+) samples/.exec(info['Duration'] ?? '')?.[1]);
      expect(samples).toBe((manifest.durationMs * 8000) / 1000);
      expect(samples).toBe((manifest.mediaEndMs - manifest.mediaStartMs) * 8);
    }
    const lines = (await Promise.all(jsonls.map((f) => readFile(join(dir, 'demo', f), 'utf8')))).join('');
    // Alice's flite sentence is transcribed nearly word for word by the generic model.
    expect(lines).toMatch(/alice calling about the quarterly report/);
  }, 120_000);
});
