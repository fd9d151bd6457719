import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RulesError } from '../../src/conditions/errors.js';
import { loadRules, parseRules } from '../../src/conditions/rules.js';
import { ConfigError } from '../../src/errors.js';

/** The problems parseRules reports for `text` (fails the test when it accepts the text). */
function problems(text: string, format: 'yaml' | 'json' = 'yaml'): string[] {
  try {
    parseRules(text, format, 'rules.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(RulesError);
    return [...(err as RulesError).problems];
  }
  throw new Error('parseRules accepted the text');
}

describe('parseRules', () => {
  it('reads the design example into typed rules with defaults', () => {
    const rules = parseRules(
      `rules:
  - name: hang-up-phrase
    when: { phrase: ["end the conference", "goodbye everyone"] }
    action: end-conference
  - name: dead-air
    when: { silenceSeconds: 30 }
  - name: too-long
    when: { maxDurationSeconds: 3600 }
    dryRun: true
  - name: star-hash
    when: { dtmf: "*#" }
    announceUrl: https://example.com/bye.xml
    announceDelaySeconds: 2.5
  - name: rude
    when: { regex: "\\\\bidiot\\\\b", track: outbound }
`,
      'yaml',
    );
    expect(rules.map((r) => [r.name, r.when.kind, r.action, r.dryRun])).toEqual([
      ['hang-up-phrase', 'phrase', 'end-conference', false],
      ['dead-air', 'silence', 'end-conference', false],
      ['too-long', 'max-duration', 'end-conference', true],
      ['star-hash', 'dtmf', 'end-conference', false],
      ['rude', 'regex', 'end-conference', false],
    ]);
    const phrase = rules[0]!.when;
    expect(phrase).toMatchObject({ kind: 'phrase', phrases: ['end the conference', 'goodbye everyone'], normalized: [' end the conference ', ' goodbye everyone '], partial: false, track: null });
    expect(rules[1]!.when).toEqual({ kind: 'silence', seconds: 30 });
    expect(rules[3]).toMatchObject({ announceUrl: 'https://example.com/bye.xml', announceDelayMs: 2500, when: { kind: 'dtmf', sequence: '*#' } });
    const regex = rules[4]!.when;
    expect(regex.kind === 'regex' && regex.regex.test('You IDIOT.')).toBe(true);
    expect(regex).toMatchObject({ track: 'outbound' });
  });

  it('reads JSON, a single phrase string and partial matching', () => {
    const rules = parseRules(JSON.stringify({ rules: [{ name: 'bye', when: { phrase: 'Bye now!', partial: true, track: 'inbound' } }] }), 'json');
    expect(rules[0]!.when).toMatchObject({ kind: 'phrase', phrases: ['Bye now!'], normalized: [' bye now '], partial: true, track: 'inbound', threshold: null });
  });

  it('reads a spotting threshold for a phrase rule', () => {
    const rules = parseRules('rules:\n  - name: bye\n    when: { phrase: goodbye, threshold: 1e+20 }\n', 'yaml');
    expect(rules[0]!.when).toMatchObject({ kind: 'phrase', threshold: 1e20 });
  });

  it('accepts an empty rule list', () => {
    expect(parseRules('rules: []\n', 'yaml')).toEqual([]);
  });

  const cases: [string, string, RegExp][] = [
    ['an unknown rule key (with a hint)', `rules:\n  - name: a\n    when: { silenceSeconds: 3 }\n    dryrun: true\n`, /^rules\.yaml:4: rules\[0\] \(a\): unknown key "dryrun" \(did you mean "dryRun"\?\)/],
    ['an unknown condition', `rules:\n  - name: a\n    when: { silence: 3 }\n`, /^rules\.yaml:3: rules\[0\] \(a\): unknown condition "silence"/],
    ['an unknown top-level key', `rule:\n  - name: a\n`, /^rules\.yaml:1: unknown top-level key "rule"/],
    ['a missing name', `rules:\n  - when: { silenceSeconds: 3 }\n`, /^rules\.yaml:2: rules\[0\]: name is missing$/],
    ['a name of the wrong type', `rules:\n  - name: 12\n    when: { silenceSeconds: 3 }\n`, /rules\[0\]: name must be a string, got number 12$/],
    ['a missing when', `rules:\n  - name: a\n`, /rules\[0\] \(a\): when is missing; give one of phrase, regex, silenceSeconds, maxDurationSeconds, dtmf$/],
    ['a when with two conditions', `rules:\n  - name: a\n    when: { silenceSeconds: 3, dtmf: "1" }\n`, /when has 2 conditions \(silenceSeconds, dtmf\); write one rule per condition$/],
    ['an empty phrase list', `rules:\n  - name: a\n    when: { phrase: [] }\n`, /^rules\.yaml:3: rules\[0\] \(a\): when\.phrase is an empty list; give at least one phrase$/],
    ['a phrase of punctuation only', `rules:\n  - name: a\n    when:\n      phrase:\n        - ok\n        - "?!"\n`, /^rules\.yaml:6: rules\[0\] \(a\): when\.phrase\[1\] "\?!" has no letters or digits to match$/],
    ['a phrase of the wrong type', `rules:\n  - name: a\n    when: { phrase: { text: hi } }\n`, /when\.phrase must be a string or a list of strings, got a mapping$/],
    ['a negative silence', `rules:\n  - name: a\n    when:\n      silenceSeconds: -5\n`, /^rules\.yaml:4: rules\[0\] \(a\): when\.silenceSeconds must be greater than 0, got -5$/],
    ['a zero duration', `rules:\n  - name: a\n    when: { maxDurationSeconds: 0 }\n`, /when\.maxDurationSeconds must be greater than 0, got 0$/],
    ['a duration given as text', `rules:\n  - name: a\n    when: { maxDurationSeconds: "1h" }\n`, /when\.maxDurationSeconds must be a number of seconds, got string "1h"$/],
    ['a negative announcement delay', `rules:\n  - name: a\n    when: { silenceSeconds: 3 }\n    announceUrl: https://x.test/a\n    announceDelaySeconds: -1\n`, /announceDelaySeconds must not be negative, got -1$/],
    ['an unknown action', `rules:\n  - name: a\n    when: { silenceSeconds: 3 }\n    action: hangup\n`, /^rules\.yaml:4: rules\[0\] \(a\): unknown action "hangup"; allowed: end-conference$/],
    ['a bad regex', `rules:\n  - name: a\n    when: { regex: "(unclosed" }\n`, /when\.regex "\(unclosed" is not a valid regular expression: /],
    ['a regex that matches everything', `rules:\n  - name: a\n    when: { regex: "x*" }\n`, /when\.regex "x\*" matches empty text, so it would fire on every transcript$/],
    ['bad dtmf characters', `rules:\n  - name: a\n    when: { dtmf: "12x" }\n`, /when\.dtmf "12x" may hold only the digits 0-9, A-D, \* and #$/],
    ['unquoted dtmf digits', `rules:\n  - name: a\n    when: { dtmf: 0123 }\n`, /when\.dtmf must be a quoted string .*, got number 123$/],
    ['a bad track', `rules:\n  - name: a\n    when: { phrase: hi, track: both }\n`, /track must be inbound or outbound, got string "both"$/],
    ['a track on a silence rule', `rules:\n  - name: a\n    when: { silenceSeconds: 3, track: inbound }\n`, /track applies only to phrase and regex, not silenceSeconds$/],
    ['a threshold on a dtmf rule', `rules:\n  - name: a\n    when: { dtmf: "1", threshold: 1e-5 }\n`, /threshold applies only to phrase, not dtmf$/],
    ['a threshold given as text', `rules:\n  - name: a\n    when: { phrase: hi, threshold: "low" }\n`, /threshold must be a number such as 1e-20, got string "low"$/],
    ['a threshold out of range', `rules:\n  - name: a\n    when: { phrase: hi, threshold: 0 }\n`, /threshold must be between 1e-100 and 1e\+200 .*, got 0$/],
    ['partial of the wrong type', `rules:\n  - name: a\n    when: { phrase: hi, partial: "yes" }\n`, /partial must be true or false, got string "yes"$/],
    ['dryRun of the wrong type', `rules:\n  - name: a\n    when: { silenceSeconds: 3 }\n    dryRun: "no"\n`, /dryRun must be true or false, got string "no"$/],
    ['an announceUrl that is not http', `rules:\n  - name: a\n    when: { silenceSeconds: 3 }\n    announceUrl: ftp://x/a\n`, /announceUrl must be an absolute http\(s\) URL/],
    ['rules that is not a list', `rules: { name: a }\n`, /^rules\.yaml:1: `rules` must be a list, got a mapping$/],
    ['an empty file', ``, /^rules\.yaml: the file is empty; expected a top-level `rules:` list$/],
    ['a YAML duplicate key', `rules:\n  - name: a\n    name: b\n    when: { silenceSeconds: 3 }\n`, /not valid YAML: Map keys must be unique/],
  ];

  it.each(cases)('reports %s as one clear line', (_what, text, line) => {
    const found = problems(text);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(line);
  });

  it('reports invalid YAML with the line of each parser error', () => {
    const found = problems(`rules:\n  - name: a\n   when: [\n`);
    expect(found.length).toBeGreaterThan(0);
    for (const line of found) expect(line).toMatch(/^rules\.yaml:[34]: not valid YAML: /);
  });

  it('reports a duplicate name with the rule that has it first', () => {
    const found = problems(`rules:\n  - name: same\n    when: { silenceSeconds: 3 }\n  - name: same\n    when: { dtmf: "1" }\n`);
    expect(found).toEqual(['rules.yaml:4: rules[1] (same): name "same" is already used by rules[0]']);
  });

  it('collects every mistake of a file, one line each, in file order', () => {
    const found = problems(
      `rules:
  - name: ok
    when: { silenceSeconds: 3 }
  - when: { phrase: [] }
  - name: ok
    when: { dtmf: "9z" }
    action: explode
  - name: neg
    when: { maxDurationSeconds: -1 }
    colour: blue
`,
    );
    expect(found).toEqual([
      'rules.yaml:4: rules[1]: name is missing',
      'rules.yaml:4: rules[1]: when.phrase is an empty list; give at least one phrase',
      'rules.yaml:5: rules[2] (ok): name "ok" is already used by rules[0]',
      'rules.yaml:6: rules[2] (ok): when.dtmf "9z" may hold only the digits 0-9, A-D, * and #',
      'rules.yaml:7: rules[2] (ok): unknown action "explode"; allowed: end-conference',
      'rules.yaml:10: rules[3] (neg): unknown key "colour"; allowed: name, when, action, dryRun, announceUrl, announceDelaySeconds',
      'rules.yaml:9: rules[3] (neg): when.maxDurationSeconds must be greater than 0, got -1',
    ]);
  });

  it('gives JSON mistakes their line too', () => {
    const text = JSON.stringify({ rules: [{ name: 'a', when: { silenceSeconds: -2 } }] }, null, 2);
    const found = problems(text, 'json');
    expect(found).toEqual(['rules.yaml:6: rules[0] (a): when.silenceSeconds must be greater than 0, got -2']);
  });

  it('rejects YAML-only syntax in a JSON file', () => {
    const found = problems('rules:\n  - name: a\n', 'json');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^rules\.yaml: not valid JSON: /);
  });
});

describe('loadRules', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sg-rules-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('picks the format from the extension', async () => {
    await writeFile(join(dir, 'r.json'), JSON.stringify({ rules: [{ name: 'j', when: { dtmf: '*#' } }] }));
    await writeFile(join(dir, 'r.yml'), 'rules:\n  - { name: y, when: { silenceSeconds: 1.5 } }\n');
    expect((await loadRules(join(dir, 'r.json')))[0]!.when).toEqual({ kind: 'dtmf', sequence: '*#' });
    expect((await loadRules(join(dir, 'r.yml')))[0]!.when).toEqual({ kind: 'silence', seconds: 1.5 });
  });

  it('names RULES_FILE and the path in every line, and is a ConfigError (the CLI prints it and exits 1)', async () => {
    const path = join(dir, 'bad.yaml');
    await writeFile(path, 'rules:\n  - name: a\n    when: { silenceSeconds: -1 }\n    action: nope\n');
    const err = await loadRules(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as RulesError).message.split('\n')).toEqual([
      `RULES_FILE ${path}:3: rules[0] (a): when.silenceSeconds must be greater than 0, got -1`,
      `RULES_FILE ${path}:4: rules[0] (a): unknown action "nope"; allowed: end-conference`,
    ]);
  });

  it('reports a missing file in one line', async () => {
    const path = join(dir, 'absent.yaml');
    await expect(loadRules(path)).rejects.toThrow(`RULES_FILE ${path}: cannot read the file (ENOENT)`);
  });
});
