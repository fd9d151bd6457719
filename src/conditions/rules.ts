/**
 * Rules from `RULES_FILE` (docs/design.md "Rules"): YAML or JSON, read and checked once at start-up.
 *
 * ```yaml
 * rules:
 *   - name: hang-up-phrase                 # required, unique; [A-Za-z0-9][A-Za-z0-9_.:-]{0,63}
 *     when:                                # exactly one condition, plus its modifiers
 *       phrase: ["end the conference", "goodbye everyone"]   # or one string
 *       partial: false                     # phrase only: also match partial transcripts
 *       spot: false                        # phrase only: with a remote engine, also keyword-spot it locally (pocketsphinx)
 *       track: inbound                     # phrase/regex only: inbound | outbound (default both)
 *       threshold: 1e-20                   # phrase only: keyword-spotting threshold (default from the phrase)
 *     action: end-conference               # the default and only action
 *     dryRun: false                        # log, audit and count, but do not act
 *     announceUrl: https://example.com/bye.xml   # played (UpdateConference AnnounceUrl) first
 *     announceDelaySeconds: 3              # wait between the announcement and the end (default 0)
 *   - { name: dead-air,  when: { silenceSeconds: 30 } }        # every track silent this long
 *   - { name: too-long,  when: { maxDurationSeconds: 3600 } }  # conference age
 *   - { name: star-hash, when: { dtmf: "*#" } }                # digits in a row (0-9 A-D * #)
 *   - { name: abuse,     when: { regex: "\\b(idiot|stupid)\\b" } }  # final transcripts, case-insensitive
 * ```
 *
 * Every mistake is reported, not just the first: {@link RulesError} carries one line per
 * mistake, each naming the file, the line, the rule and the fix.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Track } from '../core/stream.js';
import { RulesError } from './errors.js';
import { normalizeText } from './match.js';

export const RULE_ACTIONS = ['end-conference'] as const;
export type RuleAction = (typeof RULE_ACTIONS)[number];

export type RuleFormat = 'yaml' | 'json';

export interface PhraseCondition {
  kind: 'phrase';
  /** As written in the file. */
  phrases: readonly string[];
  /** {@link normalizeText} of each phrase, same order. */
  normalized: readonly string[];
  /** Also match partial (interim) transcripts. */
  partial: boolean;
  /** Only this track; null for both. */
  track: Track | null;
  /**
   * With a remote engine (deepgram, vosk), also keyword-spot the phrases locally with
   * pocketsphinx. (pocketsphinx as the engine spots every rule phrase anyway.)
   */
  spot: boolean;
  /** Keyword-spotting threshold for these phrases; null for the engine's default per phrase. */
  threshold: number | null;
}

export interface RegexCondition {
  kind: 'regex';
  pattern: string;
  /** Compiled case-insensitive, without the `g` flag (so `test` keeps no state). */
  regex: RegExp;
  track: Track | null;
}

export interface SilenceCondition {
  kind: 'silence';
  seconds: number;
}

export interface MaxDurationCondition {
  kind: 'max-duration';
  seconds: number;
}

export interface DtmfCondition {
  kind: 'dtmf';
  /** Digits in order, from 0-9 A-D * #. */
  sequence: string;
}

export type Condition = PhraseCondition | RegexCondition | SilenceCondition | MaxDurationCondition | DtmfCondition;

export interface Rule {
  readonly name: string;
  readonly when: Condition;
  readonly action: RuleAction;
  readonly dryRun: boolean;
  readonly announceUrl: string | null;
  readonly announceDelayMs: number;
}

const RULE_KEYS = ['name', 'when', 'action', 'dryRun', 'announceUrl', 'announceDelaySeconds'];
const TRIGGERS = ['phrase', 'regex', 'silenceSeconds', 'maxDurationSeconds', 'dtmf'];
const MODIFIERS = ['partial', 'track', 'threshold', 'spot'];
const WHEN_KEYS = [...TRIGGERS, ...MODIFIERS];
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
/** The digits a Media Streams `dtmf` event carries (twilio/protocol.ts accepts the same). */
const DTMF = /^[0-9A-D*#]+$/;
const MAX_DTMF = 32;
/** `when.threshold` bounds: pocketsphinx spotting scores lie well inside (bench/RESULTS.md). */
const MIN_THRESHOLD = 1e-100;
const MAX_THRESHOLD = 1e200;

/** Reads and checks a rules file; the format follows the extension (`.json`, else YAML). */
export async function loadRules(path: string): Promise<Rule[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new RulesError([`RULES_FILE ${path}: cannot read the file (${typeof code === 'string' ? code : String(err)})`]);
  }
  return parseRules(text, formatOf(path), `RULES_FILE ${path}`);
}

/** `json` for a `.json` file, `yaml` otherwise. */
export function formatOf(path: string): RuleFormat {
  return extname(path).toLowerCase() === '.json' ? 'json' : 'yaml';
}

/**
 * Parses and checks rules text. Throws {@link RulesError} listing every mistake; `source` starts
 * each line (default `RULES_FILE`).
 */
export function parseRules(text: string, format: RuleFormat, source = 'RULES_FILE'): Rule[] {
  const lineCounter = new LineCounter();
  if (format === 'json') {
    try {
      JSON.parse(text);
    } catch (err) {
      throw new RulesError([`${source}: not valid JSON: ${(err as Error).message}`]);
    }
  }
  // JSON is YAML 1.2, so one parser serves both and gives line numbers for either.
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new RulesError(
      doc.errors.map((e) => {
        const line = e.pos === undefined ? undefined : lineCounter.linePos(e.pos[0]).line;
        return `${source}${line === undefined ? '' : `:${line}`}: not valid ${format === 'json' ? 'JSON' : 'YAML'}: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const lines = lineIndex(doc.contents, lineCounter);
  const checker = new Checker(source, lines);
  const rules = checker.file(doc.toJS({ maxAliasCount: 100 }) as unknown);
  if (checker.problems.length > 0) throw new RulesError(checker.problems);
  return rules;
}

/** Maps each key path (`rules[1].when.silenceSeconds`) to its 1-based line. */
function lineIndex(root: unknown, lc: LineCounter): Map<string, number> {
  const map = new Map<string, number>();
  const at = (node: unknown): number | undefined => (isNode(node) && node.range ? lc.linePos(node.range[0]).line : undefined);
  const walk = (node: unknown, path: string): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const p = path === '' ? key : `${path}.${key}`;
        const line = at(pair.key) ?? at(pair.value);
        if (line !== undefined) map.set(p, line);
        walk(pair.value, p);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const p = `${path}[${i}]`;
        const line = at(item);
        if (line !== undefined) map.set(p, line);
        walk(item, p);
      });
    }
  };
  walk(root, '');
  return map;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${String(v)}`;
}

class Checker {
  readonly problems: string[] = [];
  readonly #source: string;
  readonly #lines: Map<string, number>;

  constructor(source: string, lines: Map<string, number>) {
    this.#source = source;
    this.#lines = lines;
  }

  /** Records a mistake at `path` (the nearest enclosing path that has a line gives the line). */
  #problem(path: string, label: string, message: string): void {
    let p = path;
    let line = this.#lines.get(p);
    while (line === undefined) {
      const parent = p.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
      if (parent === p) break;
      p = parent;
      line = this.#lines.get(p);
    }
    this.problems.push(`${this.#source}${line === undefined ? '' : `:${line}`}: ${label}${message}`);
  }

  file(root: unknown): Rule[] {
    if (root === null || root === undefined) {
      this.#problem('', '', 'the file is empty; expected a top-level `rules:` list');
      return [];
    }
    if (!isObj(root)) {
      this.#problem('', '', `expected a mapping with a top-level \`rules:\` list, got ${show(root)}`);
      return [];
    }
    const unknown = Object.keys(root).filter((key) => key !== 'rules');
    for (const key of unknown) {
      this.#problem(key, '', `unknown top-level key ${JSON.stringify(key)}${hint(key, ['rules'])}; only \`rules\` is allowed`);
    }
    const list = root.rules;
    if (list === undefined) {
      // "rule:" already said it all.
      if (unknown.length === 0) this.#problem('', '', 'missing the top-level `rules:` list');
      return [];
    }
    if (!Array.isArray(list)) {
      this.#problem('rules', '', `\`rules\` must be a list, got ${show(list)}`);
      return [];
    }
    const rules: Rule[] = [];
    const seen = new Map<string, number>();
    list.forEach((item, i) => {
      const rule = this.#rule(item, i, seen);
      if (rule !== null) rules.push(rule);
    });
    return rules;
  }

  #rule(item: unknown, i: number, seen: Map<string, number>): Rule | null {
    const path = `rules[${i}]`;
    if (!isObj(item)) {
      this.#problem(path, `${path}: `, `a rule must be a mapping (name, when, action), got ${show(item)}`);
      return null;
    }
    const rawName = item.name;
    const label = `${path}${typeof rawName === 'string' && rawName !== '' ? ` (${rawName})` : ''}: `;
    const p = (key: string, message: string) => this.#problem(key === '' ? path : `${path}.${key}`, label, message);
    const before = this.problems.length;

    for (const key of Object.keys(item)) {
      if (!RULE_KEYS.includes(key)) this.#problem(`${path}.${key}`, label, `unknown key ${JSON.stringify(key)}${hint(key, RULE_KEYS)}; allowed: ${RULE_KEYS.join(', ')}`);
    }

    let name = '';
    if (rawName === undefined) p('', 'name is missing');
    else if (typeof rawName !== 'string') p('name', `name must be a string, got ${show(rawName)}`);
    else if (!NAME.test(rawName)) p('name', `name ${JSON.stringify(rawName)} must be 1-64 letters, digits, "_", ".", ":" or "-", starting with a letter or digit`);
    else if (seen.has(rawName)) p('name', `name ${JSON.stringify(rawName)} is already used by rules[${seen.get(rawName)}]`);
    else {
      name = rawName;
      seen.set(rawName, i);
    }

    const when = this.#when(item.when, `${path}.when`, label);

    let action: RuleAction = 'end-conference';
    if (item.action !== undefined) {
      if (typeof item.action !== 'string' || !(RULE_ACTIONS as readonly string[]).includes(item.action)) {
        p('action', `unknown action ${item.action === null || typeof item.action !== 'string' ? show(item.action) : JSON.stringify(item.action)}; allowed: ${RULE_ACTIONS.join(', ')}`);
      } else action = item.action as RuleAction;
    }

    let dryRun = false;
    if (item.dryRun !== undefined) {
      if (typeof item.dryRun !== 'boolean') p('dryRun', `dryRun must be true or false, got ${show(item.dryRun)}`);
      else dryRun = item.dryRun;
    }

    let announceUrl: string | null = null;
    if (item.announceUrl !== undefined) {
      if (typeof item.announceUrl !== 'string' || !isHttpUrl(item.announceUrl)) p('announceUrl', `announceUrl must be an absolute http(s) URL, got ${show(item.announceUrl)}`);
      else announceUrl = item.announceUrl;
    }

    let announceDelayMs = 0;
    if (item.announceDelaySeconds !== undefined) {
      const s = item.announceDelaySeconds;
      if (typeof s !== 'number' || !Number.isFinite(s)) p('announceDelaySeconds', `announceDelaySeconds must be a number, got ${show(s)}`);
      else if (s < 0) p('announceDelaySeconds', `announceDelaySeconds must not be negative, got ${s}`);
      else if (s > 600) p('announceDelaySeconds', `announceDelaySeconds must be at most 600, got ${s}`);
      else if (item.announceUrl === undefined) p('announceDelaySeconds', 'announceDelaySeconds needs announceUrl');
      else announceDelayMs = Math.round(s * 1000);
    }

    if (this.problems.length > before || when === null) return null;
    return { name, when, action, dryRun, announceUrl, announceDelayMs };
  }

  #when(when: unknown, path: string, label: string): Condition | null {
    const p = (key: string, message: string) => this.#problem(key === '' ? path : `${path}.${key}`, label, message);
    if (when === undefined) {
      p('', `when is missing; give one of ${TRIGGERS.join(', ')}`);
      return null;
    }
    if (!isObj(when)) {
      p('', `when must be a mapping (e.g. { silenceSeconds: 30 }), got ${show(when)}`);
      return null;
    }
    const before = this.problems.length;
    for (const key of Object.keys(when)) {
      if (!WHEN_KEYS.includes(key)) p(key, `unknown condition ${JSON.stringify(key)}${hint(key, WHEN_KEYS)}; allowed: ${WHEN_KEYS.join(', ')}`);
    }
    const triggers = TRIGGERS.filter((k) => when[k] !== undefined);
    if (triggers.length === 0) {
      // A misspelt condition was reported above; "needs one of" would repeat it.
      if (this.problems.length === before) p('', `when needs one of ${TRIGGERS.join(', ')}`);
      return null;
    }
    if (triggers.length > 1) {
      p('', `when has ${triggers.length} conditions (${triggers.join(', ')}); write one rule per condition`);
      return null;
    }
    const trigger = triggers[0]!;

    let track: Track | null = null;
    if (when.track !== undefined) {
      if (trigger !== 'phrase' && trigger !== 'regex') p('track', `track applies only to phrase and regex, not ${trigger}`);
      else if (when.track !== 'inbound' && when.track !== 'outbound') p('track', `track must be inbound or outbound, got ${show(when.track)}`);
      else track = when.track;
    }
    let partial = false;
    if (when.partial !== undefined) {
      if (trigger !== 'phrase') p('partial', `partial applies only to phrase, not ${trigger}`);
      else if (typeof when.partial !== 'boolean') p('partial', `partial must be true or false, got ${show(when.partial)}`);
      else partial = when.partial;
    }

    let threshold: number | null = null;
    if (when.threshold !== undefined) {
      const t = when.threshold;
      if (trigger !== 'phrase') p('threshold', `threshold applies only to phrase, not ${trigger}`);
      else if (typeof t !== 'number' || !Number.isFinite(t)) p('threshold', `threshold must be a number such as 1e-20, got ${show(t)}`);
      else if (t < MIN_THRESHOLD || t > MAX_THRESHOLD) p('threshold', `threshold must be between 1e-100 and 1e+200 (lower spots more, and more falsely), got ${t}`);
      else threshold = t;
    }

    let spot = false;
    if (when.spot !== undefined) {
      if (trigger !== 'phrase') p('spot', `spot applies only to phrase, not ${trigger}`);
      else if (typeof when.spot !== 'boolean') p('spot', `spot must be true or false, got ${show(when.spot)}`);
      else spot = when.spot;
    }

    let condition: Condition | null = null;
    switch (trigger) {
      case 'phrase':
        condition = this.#phrase(when.phrase, `${path}.phrase`, label, partial, track, threshold, spot);
        break;
      case 'regex':
        condition = this.#regex(when.regex, `${path}.regex`, label, track);
        break;
      case 'silenceSeconds': {
        const seconds = this.#seconds(when.silenceSeconds, `${path}.silenceSeconds`, label, 'when.silenceSeconds');
        if (seconds !== null) condition = { kind: 'silence', seconds };
        break;
      }
      case 'maxDurationSeconds': {
        const seconds = this.#seconds(when.maxDurationSeconds, `${path}.maxDurationSeconds`, label, 'when.maxDurationSeconds');
        if (seconds !== null) condition = { kind: 'max-duration', seconds };
        break;
      }
      case 'dtmf':
        condition = this.#dtmf(when.dtmf, `${path}.dtmf`, label);
        break;
    }
    return this.problems.length > before ? null : condition;
  }

  #phrase(v: unknown, path: string, label: string, partial: boolean, track: Track | null, threshold: number | null, spot: boolean): PhraseCondition | null {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list)) {
      this.#problem(path, label, `when.phrase must be a string or a list of strings, got ${show(v)}`);
      return null;
    }
    if (list.length === 0) {
      this.#problem(path, label, 'when.phrase is an empty list; give at least one phrase');
      return null;
    }
    const phrases: string[] = [];
    const normalized: string[] = [];
    list.forEach((item, i) => {
      const at = Array.isArray(v) ? `${path}[${i}]` : path;
      const which = Array.isArray(v) ? `when.phrase[${i}]` : 'when.phrase';
      if (typeof item !== 'string') {
        this.#problem(at, label, `${which} must be a string, got ${show(item)}`);
        return;
      }
      const n = normalizeText(item);
      if (n === '') {
        this.#problem(at, label, `${which} ${JSON.stringify(item)} has no letters or digits to match`);
        return;
      }
      phrases.push(item);
      normalized.push(n);
    });
    return phrases.length === list.length ? { kind: 'phrase', phrases, normalized, partial, track, threshold, spot } : null;
  }

  #regex(v: unknown, path: string, label: string, track: Track | null): RegexCondition | null {
    if (typeof v !== 'string' || v === '') {
      this.#problem(path, label, `when.regex must be a non-empty string, got ${show(v)}`);
      return null;
    }
    let regex: RegExp;
    try {
      regex = new RegExp(v, 'i');
    } catch (err) {
      this.#problem(path, label, `when.regex ${JSON.stringify(v)} is not a valid regular expression: ${(err as Error).message}`);
      return null;
    }
    if (regex.test('')) {
      this.#problem(path, label, `when.regex ${JSON.stringify(v)} matches empty text, so it would fire on every transcript`);
      return null;
    }
    return { kind: 'regex', pattern: v, regex, track };
  }

  #seconds(v: unknown, path: string, label: string, what: string): number | null {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.#problem(path, label, `${what} must be a number of seconds, got ${show(v)}`);
      return null;
    }
    if (v <= 0) {
      this.#problem(path, label, `${what} must be greater than 0, got ${v}`);
      return null;
    }
    return v;
  }

  #dtmf(v: unknown, path: string, label: string): DtmfCondition | null {
    if (typeof v === 'number') {
      this.#problem(path, label, `when.dtmf must be a quoted string (leading zeros and * # need quotes), got ${show(v)}`);
      return null;
    }
    if (typeof v !== 'string' || v === '') {
      this.#problem(path, label, `when.dtmf must be a non-empty string of 0-9, A-D, * and #, got ${show(v)}`);
      return null;
    }
    if (!DTMF.test(v)) {
      this.#problem(path, label, `when.dtmf ${JSON.stringify(v)} may hold only the digits 0-9, A-D, * and #`);
      return null;
    }
    if (v.length > MAX_DTMF) {
      this.#problem(path, label, `when.dtmf is ${v.length} digits long; at most ${MAX_DTMF}`);
      return null;
    }
    return { kind: 'dtmf', sequence: v };
  }
}

/** ` (did you mean "dryRun"?)` when `key` differs from an allowed key only by case, `-` or `_`. */
function hint(key: string, allowed: readonly string[]): string {
  const fold = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const match = allowed.find((a) => fold(a) === fold(key));
  return match === undefined ? '' : ` (did you mean ${JSON.stringify(match)}?)`;
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}
