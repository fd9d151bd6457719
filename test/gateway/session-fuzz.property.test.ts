/**
 * Hostile input through the real parser and session state machine, in process: thousands of
 * StreamSessions (real metrics, event bus, level sink and a collecting sink, as media-socket.ts
 * wires them) each get a fast-check script of messages, and every message is judged against a
 * model of what the session must do with it:
 *
 *   unknown event            counted in unknown_events_total, nothing else
 *   media / dtmf / mark      sequence accounting (new, duplicate, late, lost) as the model says;
 *                            media reaches the sinks unless a duplicate or empty, byte-exact
 *   out of order / malformed closes the socket once, with the expected code and reason, counted
 *                            once in protocol_errors_total under that reason
 *   anything after a close   ignored: no count, no frame, no second close
 *   stop / peer gone         ends the stream (stopped / aborted), nothing counted as an error
 *
 * A session ends at its first fatal message, so scripts are mostly non-fatal hostile messages and
 * the test counts only those judged while the session was open: at least 100,000 of them. The last
 * message of a script may be arbitrary text (random or a mutated valid message); for it only the
 * accounting invariants are checked, not a predicted outcome.
 */
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/gateway/config.js';
import { EventBus } from '../../src/core/events.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { CLOSE, StreamSession } from '../../src/gateway/media/stream-session.js';
import { STATE, type SessionState } from '../../src/gateway/media/stream-state.js';
import { createLevelSinkFactory } from '../../src/sinks/level/level-sink.js';
import type { Track } from '../../src/core/stream.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { connected } from '../helpers/messages.js';

const SESSIONS = 3500;
const MIN_JUDGED = 100_000;
const MAX_COUNTER = 999_999_999_999_999; // 15 digits: the longest counter Twilio's strings may have
const KNOWN_EVENTS = new Set(['connected', 'start', 'media', 'stop', 'dtmf', 'mark']);
const PARSE_ERRORS = ['missing_field', 'invalid_field', 'invalid_sid', 'unsupported_media_format'];

// --- SIDs and payloads from a seed (fast, and reproducible when fast-check replays a failure) ---

function lcg(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
}
function sid(prefix: string, seed: number): string {
  const next = lcg(seed);
  let s = prefix;
  for (let i = 0; i < 4; i++) s += next().toString(16).padStart(8, '0');
  return s;
}
function payload(len: number, seed: number): Uint8Array {
  const next = lcg(seed);
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = next() >>> 24;
  return b;
}

interface Ids {
  accountSid: string;
  callSid: string;
  streamSid: string;
}
const idsOf = (seed: number): Ids => ({ accountSid: sid('AC', seed), callSid: sid('CA', seed + 1), streamSid: sid('MZ', seed + 2) });

// --- message builders (the wire shapes of docs/twilio-protocol.md §2, in several spellings) ---

type Form = 'fast' | 'shuffled' | 'numeric' | 'spaced';

/** `fast` is Twilio's own key order (the session's fast path); the others take the strict parser. */
function spell(obj: Record<string, unknown>, form: Form): string {
  if (form === 'spaced') return JSON.stringify(obj, null, 1);
  if (form === 'shuffled') return JSON.stringify(Object.fromEntries(Object.entries(obj).reverse().map(([k, v]) => [k, v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v])));
  return JSON.stringify(obj);
}
const num = (n: number, form: Form) => (form === 'numeric' ? n : String(n));

function mediaObj(streamSid: string, seq: number, chunk: number, ts: number, bytes: Uint8Array, track: Track, form: Form) {
  return {
    event: 'media',
    sequenceNumber: num(seq, form),
    media: { track, chunk: num(chunk, form), timestamp: num(ts, form), payload: Buffer.from(bytes).toString('base64') },
    streamSid,
  };
}
function startObj(ids: Ids, seq: number, tracks: Track[]) {
  return {
    event: 'start',
    sequenceNumber: String(seq),
    start: { accountSid: ids.accountSid, streamSid: ids.streamSid, callSid: ids.callSid, tracks, customParameters: { a: 'b' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
    streamSid: ids.streamSid,
  };
}
const stopObj = (ids: Ids, seq: number) => ({ event: 'stop', sequenceNumber: String(seq), streamSid: ids.streamSid, stop: { accountSid: ids.accountSid, callSid: ids.callSid } });
const dtmfObj = (streamSid: string, seq: number, digit: string) => ({ event: 'dtmf', sequenceNumber: String(seq), streamSid, dtmf: { track: 'inbound_track', digit } });
const markObj = (streamSid: string, seq: number, name: string) => ({ event: 'mark', sequenceNumber: String(seq), streamSid, mark: { name } });

// --- generators ---

/** Never a valid counter (a decimal string of 1..15 digits or a non-negative safe integer). */
const notACounter = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double().filter((d) => !(Number.isSafeInteger(d) && d >= 0)),
  fc.integer({ max: -1 }),
  fc.array(fc.nat(), { maxLength: 2 }),
  fc.constant({}),
  fc.string({ maxLength: 20 }).filter((s) => !/^\d{1,15}$/.test(s)),
  fc.constant('1'.repeat(16)),
);
const notAString = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.array(fc.nat(), { maxLength: 2 }), fc.constant({}));

const unknownEvent = fc
  .record({
    name: fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom('Media', 'MEDIA', 'media ', 'stop\u0000', 'clear', 'dtmf\n', 'connected!', '')),
    junk: fc.dictionary(fc.string({ maxLength: 10 }).filter((k) => k !== 'event'), fc.oneof(fc.jsonValue({ maxDepth: 2 }), notACounter), { maxKeys: 4 }),
  })
  .filter((r) => !KNOWN_EVENTS.has(r.name))
  .map((r) => JSON.stringify({ ...r.junk, event: r.name }));
/** Unknown events are drawn from a pool: generating one per message would dominate the run time. */
const UNKNOWN_POOL = fc.sample(unknownEvent, { seed: 11, numRuns: 4000 });

const seqArb = fc.record({
  mode: fc.constantFrom('next', 'next', 'next', 'next', 'jump', 'dup', 'back', 'far', 'zero', 'top'),
  k: fc.nat({ max: 40 }),
});
type SeqChoice = { mode: string; k: number };
const formArb = fc.constantFrom<Form>('fast', 'fast', 'fast', 'shuffled', 'numeric', 'spaced');
const tsArb = fc.oneof(fc.nat({ max: 10_000_000 }), fc.constant(0), fc.integer({ min: 0, max: MAX_COUNTER }));
const lenArb = fc.oneof({ weight: 8, arbitrary: fc.constant(160) }, { weight: 2, arbitrary: fc.nat({ max: 400 }) });

/** One field of a valid message, made wrong (or removed): always a parse error. */
const badFieldArb = fc.oneof(
  fc.record({ kind: fc.constant('media'), path: fc.constantFrom('sequenceNumber', 'media.chunk', 'media.timestamp'), value: fc.option(notACounter, { nil: undefined }) }),
  fc.record({ kind: fc.constant('media'), path: fc.constant('streamSid'), value: fc.option(fc.oneof(notACounter, fc.constant('MZ' + 'g'.repeat(32))), { nil: undefined }) }),
  fc.record({ kind: fc.constant('media'), path: fc.constant('media'), value: fc.option(notACounter, { nil: undefined }) }),
  fc.record({ kind: fc.constant('media'), path: fc.constant('media.track'), value: fc.option(fc.oneof(notAString, fc.constantFrom('Inbound', 'both', '')), { nil: undefined }) }),
  fc.record({ kind: fc.constant('media'), path: fc.constant('media.payload'), value: fc.option(notAString, { nil: undefined }) }),
  fc.record({ kind: fc.constant('start'), path: fc.constantFrom('start.accountSid', 'start.callSid', 'start.streamSid'), value: fc.option(fc.oneof(notACounter, fc.constant('MZ' + '0'.repeat(32))), { nil: undefined }) }),
  fc.record({ kind: fc.constant('start'), path: fc.constant('start.tracks'), value: fc.option(fc.oneof(notAString, fc.constantFrom([], ['inbound', 'inbound'], ['x'], ['inbound', 'outbound', 'inbound'])), { nil: undefined }) }),
  fc.record({ kind: fc.constant('start'), path: fc.constant('start.customParameters'), value: fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant([]), fc.constant({ k: 1 })) }),
  fc.record({ kind: fc.constant('start'), path: fc.constant('start.mediaFormat'), value: fc.option(fc.constantFrom(null, 5, { encoding: 'audio/x-alaw', sampleRate: 8000, channels: 1 }, { encoding: 'audio/x-mulaw', sampleRate: 16000, channels: 1 }, { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 2 }), { nil: undefined }) }),
  fc.record({ kind: fc.constant('dtmf'), path: fc.constant('dtmf.digit'), value: fc.option(fc.oneof(notAString, fc.constantFrom('E', '10', '', 'a')), { nil: undefined }) }),
  fc.record({ kind: fc.constant('mark'), path: fc.constantFrom('mark', 'mark.name'), value: fc.option(fc.oneof(fc.constant(null), fc.integer(), fc.boolean()), { nil: undefined }) }),
  fc.record({ kind: fc.constant('stop'), path: fc.constant('stop'), value: fc.oneof(fc.constant(null), fc.integer(), fc.string(), fc.boolean()) }),
  fc.record({ kind: fc.constant('connected'), path: fc.constantFrom('version', 'protocol'), value: notAString }),
);

type Step =
  | { t: 'unknown'; i: number }
  | { t: 'media'; seq: SeqChoice; ts: number; len: number; seed: number; track: 'inbound' | 'outbound' | 'any'; form: Form; otherSid: boolean }
  | { t: 'dtmf' | 'mark'; seq: SeqChoice; otherSid: boolean }
  | { t: 'connected' | 'start' | 'binary' }
  | { t: 'stop'; seq: SeqChoice }
  | { t: 'badBase64'; payload: string }
  | { t: 'notJson'; text: string }
  | { t: 'truncated'; cut: number }
  | { t: 'notObject'; text: string }
  | { t: 'noEvent'; obj: Record<string, unknown> }
  | { t: 'badField'; kind: string; path: string; value: unknown };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 400, arbitrary: fc.nat({ max: UNKNOWN_POOL.length - 1 }).map((i) => ({ t: 'unknown' as const, i })) },
  {
    weight: 450,
    arbitrary: fc
      .record({
        seq: seqArb,
        ts: tsArb,
        len: lenArb,
        seed: fc.nat(),
        // outbound when the stream announced it; now and then regardless (unannounced_track)
        track: fc.oneof({ weight: 150, arbitrary: fc.constantFrom('inbound' as const, 'any' as const) }, { weight: 1, arbitrary: fc.constant('outbound' as const) }),
        form: formArb,
        otherSid: fc.nat({ max: 299 }).map((n) => n === 0),
      })
      .map((m) => ({ t: 'media' as const, ...m })),
  },
  { weight: 30, arbitrary: fc.record({ t: fc.constantFrom('dtmf' as const, 'mark' as const), seq: seqArb, otherSid: fc.nat({ max: 99 }).map((n) => n === 0) }) },
  { weight: 2, arbitrary: fc.constantFrom({ t: 'connected' as const }, { t: 'start' as const }, { t: 'binary' as const }) },
  { weight: 2, arbitrary: seqArb.map((seq) => ({ t: 'stop' as const, seq })) },
  { weight: 1, arbitrary: fc.constantFrom('!!!!', 'AAA', 'A===', '=AAA', 'AB C', 'AAAA\n').map((p) => ({ t: 'badBase64' as const, payload: p })) },
  {
    weight: 4,
    arbitrary: fc.oneof(
      fc
        .string({ maxLength: 200 })
        .filter((s) => !parses(s))
        .map((text) => ({ t: 'notJson' as const, text })),
      fc.double({ min: 0, max: 1, maxExcluded: true }).map((cut) => ({ t: 'truncated' as const, cut })),
      fc
        .jsonValue({ maxDepth: 2 })
        .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))
        .map((v) => ({ t: 'notObject' as const, text: JSON.stringify(v) })),
      fc
        .tuple(fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== 'event'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }), fc.option(notAString, { nil: undefined }))
        .map(([obj, event]) => ({ t: 'noEvent' as const, obj: event === undefined ? obj : { ...obj, event } })),
      badFieldArb.map((b) => ({ t: 'badField' as const, ...b })),
    ),
  },
);

/** The last message of a script: anything at all, judged only by the accounting invariants. */
const anyTextArb = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 100 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.record({ at: fc.double({ min: 0, max: 1, maxExcluded: true }), cut: fc.nat({ max: 6 }), insert: fc.string({ maxLength: 4 }), kind: fc.constantFrom('media', 'start', 'stop', 'dtmf', 'mark', 'connected') }),
);

const sessionArb = fc.record({
  seed: fc.nat(),
  tracks: fc.constantFrom<Track[]>(['inbound'], ['inbound'], ['inbound', 'outbound']),
  prefix: fc.constantFrom('none', 'connected', 'started', 'started', 'started', 'started', 'started', 'started'),
  startSeq: fc.constantFrom(1, 1, 1, 0, 7),
  /** Most steps to take; a fatal one usually ends the session first. */
  length: fc.integer({ min: 20, max: 250 }),
  // Drawn lazily: a session's length is only known as it runs.
  steps: fc.infiniteStream(stepArb),
  last: fc.option(anyTextArb, { freq: 3 }),
  trailing: fc.array(fc.oneof(stepArb, fc.constant<Step>({ t: 'binary' })), { maxLength: 3 }),
});

function parses(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

// --- the model: what a session must do with each message ---

type Expect =
  | { kind: 'ok' }
  | { kind: 'unknown' }
  | { kind: 'frame'; deliver: boolean; late: boolean; track: Track; ts: number; bytes: Uint8Array }
  | { kind: 'dtmf' }
  | { kind: 'stopped' }
  | { kind: 'fatal'; code: number; reasons: string[] };

/** Sequence accounting over the stream-wide sequenceNumber, window of 32 (docs/twilio-protocol.md §2.4). */
class Model {
  state: SessionState = STATE.OPEN;
  tracks: Track[] = [];
  max = 0;
  readonly seen = new Set<number>();
  lost = 0;
  duplicate = 0;
  late = 0;
  frames = 0;
  unknown = 0;
  dtmf = 0;
  /** How the stream ended, when a message ended it. */
  failed = false;
  stopped = false;

  /** 0 new, 1 duplicate, 2 late. */
  sequence(seq: number): 0 | 1 | 2 {
    if (seq > this.max) {
      if (this.max > 0) this.lost += seq - this.max - 1;
      this.max = seq;
      this.seen.add(seq);
      return 0;
    }
    const back = this.max - seq;
    if (back < 32 && this.seen.has(seq)) {
      this.duplicate++;
      return 1;
    }
    if (back < 32) this.seen.add(seq);
    this.late++;
    if (this.lost > 0) this.lost--;
    return 2;
  }

  resolve(c: SeqChoice): number {
    let v: number;
    switch (c.mode) {
      case 'jump':
        v = this.max + 2 + c.k;
        break;
      case 'dup':
        v = Math.max(0, this.max - (c.k % 4));
        break;
      case 'back':
        v = Math.max(0, this.max - 1 - c.k);
        break;
      case 'far':
        v = this.max + 1000 + c.k * 1_000_000;
        break;
      case 'zero':
        v = 0;
        break;
      case 'top':
        v = MAX_COUNTER - c.k;
        break;
      default:
        v = this.max + 1;
    }
    return Math.min(v, MAX_COUNTER);
  }

  /** A valid numbered message: its sequence number is accounted, then `exp` holds. */
  accept(seq: number, exp: Expect): Expect {
    this.sequence(seq);
    return exp;
  }

  fatal(reason: string, code: number): Extract<Expect, { kind: 'fatal' }> {
    this.state = STATE.CLOSED;
    this.failed = true;
    return { kind: 'fatal', code, reasons: [reason] };
  }

  /** A checked message with a sequence number, from a started stream's own SID. */
  numbered(kind: 'media' | 'dtmf' | 'mark' | 'stop', otherSid: boolean): Expect | null {
    if (this.state !== STATE.STARTED) return this.fatal(`${kind}_before_start`, CLOSE.PROTOCOL_ERROR);
    if (otherSid) return this.fatal('stream_sid_mismatch', CLOSE.PROTOCOL_ERROR);
    return null;
  }
}

// --- the session under test, wired as media-socket.ts wires it ---

const MAX_FRAME_BYTES = loadConfig({}).maxMessageBytes;

function harness() {
  const log = pino({ level: 'silent' });
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const bus = new EventBus(log);
  const collect = collectingSinkFactory();
  const h = { closes: [] as { code: number; reason: string }[], started: 0, stopped: 0, ended: 0, dtmf: 0 };
  bus.on('dtmf', () => h.dtmf++);
  const session = new StreamSession({
    log,
    metrics,
    bus,
    sinkFactories: [createLevelSinkFactory({ bus }), collect],
    maxFrameBytes: MAX_FRAME_BYTES,
    checkStart: null,
    closeSocket: (code, reason) => h.closes.push({ code, reason }),
    onStarted: () => h.started++,
    onStopped: () => h.stopped++,
    onEnded: () => h.ended++,
  });
  const frames = () => collect.streams[0]?.frames ?? [];
  return { h, session, metrics, frames };
}

async function counted(metrics: GatewayMetrics) {
  const errors = (await metrics.protocolErrors.get()).values.filter((v) => v.value > 0).map((v) => ({ reason: String(v.labels.reason), value: v.value }));
  const unknown = (await metrics.unknownEvents.get()).values[0]?.value ?? 0;
  const outcomes = (await metrics.streamsTotal.get()).values.filter((v) => v.value > 0).map((v) => ({ outcome: String(v.labels.outcome), value: v.value }));
  return { errors, unknown, outcomes };
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  const last = keys[keys.length - 1]!;
  if (value === undefined) delete o[last];
  else o[last] = value;
}

let judged = 0;
let trailing = 0;
const byKind = new Map<string, number>();

/** Plain checks: vitest's expect costs ~17 µs a call, more than judging a message. */
function check(ok: boolean, what: () => string): void {
  if (!ok) throw new Error(what());
}

type Scenario = typeof sessionArb extends fc.Arbitrary<infer T> ? T : never;

/** One session through its script; throws on the first message the session mishandled. */
async function runSession(sc: Scenario, taken: unknown[]): Promise<void> {
  const ids = idsOf(sc.seed);
  const other = idsOf(sc.seed + 7);
  const x = harness();
  const { session, h } = x;
  const model = new Model();
  let chunk = 0;
  const text = (t: string) => () => session.onTextBytes(Buffer.from(t), performance.now());

  /**
   * Sends one message and checks the session did what `exp` says. `wasOpen`: the model's state
   * before the message (building `exp` already moved the model on).
   */
  const judge = (send: () => void, exp: Expect | null, label: string, wasOpen = true): void => {
    const closes = h.closes.length;
    const frames = x.frames().length;
    send();
    if (!wasOpen) {
      // After the end nothing is judged: no close, no frame, no count (counts checked at the end).
      trailing++;
      check(session.state === STATE.CLOSED && h.closes.length === closes && x.frames().length === frames, () => `${label} after the end changed the session`);
      return;
    }
    judged++;
    byKind.set(label, (byKind.get(label) ?? 0) + 1);
    if (exp === null) return; // arbitrary text: the caller checks the invariants
    if (exp.kind === 'fatal') {
      const c = h.closes.slice(closes);
      check(c.length === 1 && c[0]!.code === exp.code && exp.reasons.includes(c[0]!.reason), () => `${label}: expected one close ${exp.code} ${exp.reasons.join('|')}, got ${JSON.stringify(c)}`);
      check(session.state === STATE.CLOSED && session.closeReason === 'protocol-error', () => `${label}: closed socket but session ${session.state}/${session.closeReason}`);
      return;
    }
    check(h.closes.length === closes, () => `${label} (${exp.kind}): unexpected close ${JSON.stringify(h.closes.slice(closes))}`);
    if (exp.kind === 'stopped') {
      check(session.state === STATE.CLOSED && session.closeReason === 'stopped', () => `stop: session ${session.state}/${session.closeReason}`);
      model.state = STATE.CLOSED;
      model.stopped = true;
      return;
    }
    check(session.state === model.state, () => `${label}: state ${session.state}, model ${model.state}`);
    if (exp.kind === 'unknown') model.unknown++;
    if (exp.kind === 'dtmf') model.dtmf++;
    const got = x.frames();
    if (exp.kind === 'frame' && exp.deliver) {
      model.frames++;
      const f = got[frames];
      check(got.length === frames + 1 && f !== undefined, () => `${label}: frame not delivered`);
      check(
        f!.track === exp.track && f!.timestampMs === exp.ts && f!.samples === exp.bytes.length && f!.late === exp.late && Buffer.from(f!.mulaw).equals(Buffer.from(exp.bytes)),
        () => `${label}: delivered ${JSON.stringify({ track: f!.track, ts: f!.timestampMs, samples: f!.samples, late: f!.late })}, expected ${JSON.stringify({ track: exp.track, ts: exp.ts, samples: exp.bytes.length, late: exp.late })} (or other bytes)`,
      );
    } else check(got.length === frames, () => `${label}: a frame was delivered`);
  };

  const step = (st: Step): void => {
    taken.push(st);
    const open = model.state !== STATE.CLOSED;
    let exp: Expect = { kind: 'ok' };
    let send: () => void;
    switch (st.t) {
      case 'unknown':
        send = text(UNKNOWN_POOL[st.i]!);
        exp = { kind: 'unknown' };
        break;
      case 'media': {
        const seq = model.resolve(st.seq);
        const track: Track = st.track === 'outbound' || (st.track === 'any' && sc.tracks.includes('outbound') && (st.seed & 1) === 1) ? 'outbound' : 'inbound';
        const bytes = payload(st.len, st.seed);
        send = text(spell(mediaObj(st.otherSid ? other.streamSid : ids.streamSid, seq, ++chunk, st.ts, bytes, track, st.form), st.form));
        if (open) exp = model.numbered('media', st.otherSid) ?? (model.tracks.includes(track) ? frameExpect(model, seq, track, st.ts, bytes) : model.fatal('unannounced_track', CLOSE.PROTOCOL_ERROR));
        break;
      }
      case 'dtmf':
      case 'mark': {
        const seq = model.resolve(st.seq);
        const streamSid = st.otherSid ? other.streamSid : ids.streamSid;
        send = text(JSON.stringify(st.t === 'dtmf' ? dtmfObj(streamSid, seq, '5') : markObj(streamSid, seq, 'm')));
        if (open) exp = model.numbered(st.t, st.otherSid) ?? model.accept(seq, st.t === 'dtmf' ? { kind: 'dtmf' } : { kind: 'ok' });
        break;
      }
      case 'stop': {
        const seq = model.resolve(st.seq);
        send = text(JSON.stringify(stopObj(ids, seq)));
        if (open) exp = model.numbered('stop', false) ?? model.accept(seq, { kind: 'stopped' });
        break;
      }
      case 'connected':
        send = text(connected());
        if (open && model.state === STATE.OPEN) model.state = STATE.CONNECTED;
        else if (open) exp = model.fatal('unexpected_connected', CLOSE.PROTOCOL_ERROR);
        break;
      case 'start': {
        const seq = model.resolve({ mode: 'next', k: 0 });
        send = text(JSON.stringify(startObj(ids, seq, sc.tracks)));
        if (open && model.state !== STATE.STARTED) {
          model.state = STATE.STARTED;
          model.tracks = sc.tracks;
          model.sequence(seq);
        } else if (open) exp = model.fatal('duplicate_start', CLOSE.PROTOCOL_ERROR);
        break;
      }
      case 'binary':
        send = () => session.onBinary();
        if (open) exp = model.fatal('binary_frame', CLOSE.UNSUPPORTED_DATA);
        break;
      case 'badBase64': {
        const obj = mediaObj(ids.streamSid, model.resolve({ mode: 'next', k: 0 }), ++chunk, 0, new Uint8Array(0), 'inbound', 'fast');
        obj.media.payload = st.payload;
        send = text(JSON.stringify(obj));
        if (open) exp = model.numbered('media', false) ?? model.fatal('invalid_base64', CLOSE.INVALID_PAYLOAD);
        break;
      }
      default: {
        // Parse errors: fatal in any state, before the state is looked at.
        let t: string;
        let reasons: string[];
        if (st.t === 'notJson') [t, reasons] = [st.text, ['invalid_json']];
        else if (st.t === 'notObject') [t, reasons] = [st.text, ['not_an_object']];
        else if (st.t === 'truncated') {
          const whole = spell(mediaObj(ids.streamSid, 5, 1, 100, payload(160, 3), 'inbound', 'fast'), 'fast');
          [t, reasons] = [whole.slice(0, Math.floor(st.cut * whole.length)), ['invalid_json']];
        } else if (st.t === 'noEvent') [t, reasons] = [JSON.stringify(st.obj), [st.obj.event === undefined ? 'missing_field' : 'invalid_field']];
        else {
          const obj = structuredClone(validMessage(st.kind, ids, model.resolve({ mode: 'next', k: 0 }), sc.tracks));
          setPath(obj, st.path, st.value);
          [t, reasons] = [JSON.stringify(obj), PARSE_ERRORS];
        }
        send = text(t);
        if (open) exp = { ...model.fatal('', CLOSE.INVALID_PAYLOAD), reasons };
      }
    }
    judge(send, exp, st.t, open);
  };

  // The state the script starts from.
  if (sc.prefix !== 'none') {
    model.state = STATE.CONNECTED;
    judge(text(connected()), { kind: 'ok' }, 'connected');
  }
  if (sc.prefix === 'started') {
    model.state = STATE.STARTED;
    model.tracks = sc.tracks;
    model.sequence(sc.startSeq);
    judge(text(JSON.stringify(startObj(ids, sc.startSeq, sc.tracks))), { kind: 'ok' }, 'start');
  }
  let n = 0;
  for (const st of sc.steps) {
    if (n++ >= sc.length || model.state === STATE.CLOSED) break;
    step(st);
  }

  // Out-of-order accounting as the model has it (before arbitrary text can change it).
  const sum = session.summary();
  const want = { frames: model.frames, lost: model.lost, duplicate: model.duplicate, late: model.late };
  const have = { frames: sum.frames, lost: sum.lost, duplicate: sum.duplicate, late: sum.late };
  check(JSON.stringify(have) === JSON.stringify(want), () => `summary ${JSON.stringify(have)}, model ${JSON.stringify(want)}`);
  check(h.dtmf === model.dtmf, () => `dtmf events ${h.dtmf}, model ${model.dtmf}`);

  // The last message: arbitrary text. Whatever it is, the accounting must hold.
  if (sc.last !== null && model.state !== STATE.CLOSED) {
    let t: string;
    if (typeof sc.last === 'string') t = sc.last;
    else {
      const whole = JSON.stringify(validMessage(sc.last.kind, ids, model.max + 1, sc.tracks));
      const at = Math.floor(sc.last.at * whole.length);
      t = whole.slice(0, at) + sc.last.insert + whole.slice(at + sc.last.cut);
    }
    taken.push({ last: t });
    const closes = h.closes.length;
    judge(text(t), null, 'arbitrary');
    if (isUnknownEvent(t)) {
      check(session.state === model.state, () => `unknown event ${t} moved the session to ${session.state}`);
      model.unknown++;
    }
    if (session.state === STATE.CLOSED) {
      model.state = STATE.CLOSED;
      if (session.closeReason === 'protocol-error') {
        model.failed = true;
        const c = h.closes.slice(closes);
        check(c.length === 1 && ([CLOSE.PROTOCOL_ERROR, CLOSE.UNSUPPORTED_DATA, CLOSE.INVALID_PAYLOAD] as number[]).includes(c[0]!.code), () => `arbitrary text closed with ${JSON.stringify(c)}`);
      } else {
        check(session.closeReason === 'stopped' && h.closes.length === closes, () => `arbitrary text ended the session as ${session.closeReason}`);
        model.stopped = true;
      }
    } else check(h.closes.length === closes, () => 'arbitrary text closed the socket of a session still open');
  }

  // The peer keeps sending after our close frame: nothing changes. Or it goes away: aborted.
  // (Not after a `stop`: what the session should count for messages after it is open; see
  // message_after_stop in stream-session.ts.)
  if (model.failed) for (const st of sc.trailing) step(st);
  else if (model.state !== STATE.CLOSED) session.onSocketClose(1005);

  await session.ending; // the end under way: resolves when the sinks closed
  const c = await counted(x.metrics);
  // At most one close; one protocol error counted per close, under the reason it was sent.
  check(h.closes.length === (model.failed ? 1 : 0), () => `closes ${JSON.stringify(h.closes)}, model failed=${model.failed}`);
  check(JSON.stringify(c.errors) === JSON.stringify(h.closes.map((cl) => ({ reason: cl.reason, value: 1 }))), () => `protocol_errors_total ${JSON.stringify(c.errors)} for closes ${JSON.stringify(h.closes)}`);
  const outcome = model.failed ? 'protocol-error' : model.stopped ? 'stopped' : 'aborted';
  check(session.closeReason === outcome, () => `ended as ${session.closeReason}, model ${outcome}`);
  check(c.unknown === model.unknown, () => `unknown_events_total ${c.unknown}, model ${model.unknown}`);
  check(h.ended === 1 && h.stopped === h.started && h.started === (session.started ? 1 : 0), () => `registry calls ${JSON.stringify(h)}`);
  check(JSON.stringify(c.outcomes) === JSON.stringify(session.started ? [{ outcome, value: 1 }] : []), () => `streams_total ${JSON.stringify(c.outcomes)}`);
  // The real sinks took hostile (but valid) media without failing.
  check(x.metrics.sinkStats('level').errors === 0 && x.metrics.sinkStats('collect').errors === 0, () => 'a sink failed');
}

describe('StreamSession under hostile input', () => {
  it(`judges ${MIN_JUDGED.toLocaleString('en')}+ hostile messages across ${SESSIONS} sessions: never throws, every fatal one closes with its counted reason, unknown events counted`, async () => {
    const t0 = performance.now();
    await fc.assert(
      fc.asyncProperty(sessionArb, async (sc) => {
        const taken: unknown[] = [];
        try {
          await runSession(sc, taken);
        } catch (err) {
          // The step stream does not print; the steps the session got do.
          throw new Error(`${err instanceof Error ? err.message : String(err)}\nsteps taken: ${JSON.stringify(taken)}`, { cause: err });
        }
      }),
      { numRuns: SESSIONS },
    );
    const ms = Math.round(performance.now() - t0);
    console.log(`session fuzz: ${SESSIONS} sessions, ${judged} messages judged (${[...byKind].map(([k, v]) => `${k} ${v}`).join(', ')}), ${trailing} more after the end, ${ms} ms`);
    expect(judged).toBeGreaterThanOrEqual(MIN_JUDGED);
  }, 60_000);
});

/** A valid message of `kind` on the stream `ids`. */
function validMessage(kind: string, ids: Ids, seq: number, tracks: Track[]): Record<string, unknown> {
  switch (kind) {
    case 'media':
      return mediaObj(ids.streamSid, seq, 1, 0, payload(160, 1), 'inbound', 'fast');
    case 'start':
      return startObj(ids, seq, tracks);
    case 'stop':
      return stopObj(ids, seq);
    case 'dtmf':
      return dtmfObj(ids.streamSid, seq, '1');
    case 'mark':
      return markObj(ids.streamSid, seq, 'x');
    default:
      return JSON.parse(connected()) as Record<string, unknown>;
  }
}

/** The oracle for arbitrary text: a JSON object whose `event` is a string we do not know. */
function isUnknownEvent(t: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return false;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const event = (v as { event?: unknown }).event;
  return typeof event === 'string' && !KNOWN_EVENTS.has(event);
}

/** A valid media message on a started stream's own SID and announced track. */
function frameExpect(model: Model, seq: number, track: Track, ts: number, bytes: Uint8Array): Expect {
  const order = model.sequence(seq);
  return { kind: 'frame', deliver: order !== 1 && bytes.length > 0, late: order === 2, track, ts, bytes };
}
