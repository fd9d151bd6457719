/**
 * A phrase rule with `spot: true` beside a remote engine: the Deepgram stand-in transcribes (it
 * knows only the tone language, so it never hears the phrase), and the gateway's own pocketsphinx
 * spotter, started for that rule alone, hears "end the conference" in real speech. Without the
 * flag the same call fires nothing.
 */
import { describe, expect, it } from 'vitest';
import { parseRules } from '../../src/conditions/rules.js';
import { isPocketsphinxInstalled, readClipMulaw, speechClip, type PhraseEvent } from '../../src/sinks/transcription/index.js';
import { metricValue } from '../helpers/gateway.js';
import { DeepgramStandin } from './deepgram-standin.js';
import { startAsrStack, untilEnded, type AsrStack } from './helpers.js';
import { closeAfterEach } from '../helpers/closing.js';
import { startStream } from '../helpers/stack.js';

const KEY = 'dg-spot-key-0123456789';
const closeLater = closeAfterEach();

/** One call saying "i think it is time to end the conference", then a second of silence. */
async function callWithRule(spot: boolean): Promise<{ s: AsrStack; d: DeepgramStandin; phrases: PhraseEvent[]; streamSid: string }> {
  const dg = closeLater(await new DeepgramStandin(KEY).listen());
  const rules = `rules:\n  - name: spoken-end\n    when: { phrase: "end the conference", spot: ${spot} }\n    dryRun: true\n`;
  const s = closeLater(await startAsrStack({ TRANSCRIPTION: 'deepgram', DEEPGRAM_API_KEY: KEY, DEEPGRAM_URL: `${dg.url}/v1/listen` }, { speed: 1, rules }));
  const phrases: PhraseEvent[] = [];
  s.gateway.bus.on('phrase', (p) => phrases.push(p));
  const audio = Buffer.concat([readClipMulaw(speechClip('phrase-flite-2')), Buffer.alloc(8000, 0xff)]);
  const c = await s.sim.createCall({ audio: { type: 'mulaw', data: audio.subarray(0, audio.length - (audio.length % 160)) } });
  const streamSid = await startStream(s, c.sid);
  await untilEnded(s, streamSid);
  return { s, d: dg, phrases, streamSid };
}

describe('phrase rules with spot: true beside a remote engine', () => {
  it('parses spot as a phrase-only boolean', () => {
    const [rule] = parseRules('rules:\n  - name: a\n    when: { phrase: "x y", spot: true }\n', 'yaml');
    expect(rule!.when).toMatchObject({ kind: 'phrase', spot: true });
    expect(() => parseRules('rules:\n  - name: a\n    when: { regex: "x", spot: true }\n', 'yaml')).toThrow(/spot applies only to phrase, not regex/);
    expect(() => parseRules('rules:\n  - name: a\n    when: { phrase: "x", spot: "yes" }\n', 'yaml')).toThrow(/spot must be true or false/);
  });

  it.runIf(isPocketsphinxInstalled())('spot: true: the local spotter hears the phrase the remote transcript does not have, and the rule fires on that evidence', async () => {
    const { s, d, phrases, streamSid } = await callWithRule(true);
    expect(d.violations()).toEqual([]);
    expect(d.connections).toHaveLength(1);
    // The remote transcripts never contain the phrase (the stand-in only knows tone words).
    expect(s.events.some((e) => e.text.includes('conference'))).toBe(false);
    expect(phrases.map((p) => p.phrase)).toContain('end the conference');
    const decision = s.lines.find((l) => l.msg === 'conditions decision');
    expect(decision).toMatchObject({ streamSid, rule: 'spoken-end', trigger: 'phrase', dryRun: true, result: 'dry-run', evidence: { kind: 'spotted', matched: 'end the conference' } });
    expect(await metricValue(s.http, 'streamgate_conditions_triggered_total', { rule: 'spoken-end' })).toBe(1);
  }, 90_000);

  it.runIf(isPocketsphinxInstalled())('spot: false: the same call spots nothing and fires nothing (the remote transcript is all there is)', async () => {
    const { s, phrases } = await callWithRule(false);
    expect(phrases).toEqual([]);
    expect(s.lines.filter((l) => l.msg === 'conditions decision')).toEqual([]);
    expect(await metricValue(s.http, 'streamgate_conditions_triggered_total', { rule: 'spoken-end' })).toBe(0);
  }, 90_000);
});
