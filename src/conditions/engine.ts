/**
 * The conditions engine: listens to the gateway's event bus, evaluates the rules per conference
 * (streams grouped by `conferenceSid`; a stream without one is its own scope) and ends the
 * conference, or stops the lone stream, at most once.
 *
 *   bus: stream-start/end ─► scopes (membership)          ┌─► dry-run: log + audit + count
 *        level, media-progress ─► track clocks ─► silence, max-duration ─┤
 *        transcript, phrase ─► phrase / regex ──────────────────────────┤
 *        dtmf ─► digit buffer ─► dtmf ──────────────────────────────────┴─► store.tryClaimEnd
 *   wall ticker (250 ms) ─► max-duration fallback, cleanup      ├─ won ─► REST ─► recordOutcome
 *   endConference (admin API) ─────────────────────────────────►┘  lost ─► "suppressed"
 *
 * Every decision is one log line (`conditions decision`) and one audit entry, and counts in
 * `conditions_triggered_total{rule}` (rules only) and `conferences_ended_total{result}`
 * (conference scopes; not for `suppressed`). Bus handlers never await: evaluation is
 * synchronous and the action runs in the background.
 */
import type { Logger } from 'pino';
import type { EndConference } from '../core/conference.js';
import type { EventBus, LevelChange } from '../core/events.js';
import type { StreamInfo, Track } from '../core/stream.js';
import type { PhraseEvent, TranscriptEvent } from '../core/transcript.js';
import { assertSid } from '../twilio/sids.js';
import type { ConditionsTwilio } from './actions.js';
import { Decider, type Draft, type EndOutcome } from './decisions.js';
import { Scope, conferenceSilence, mediaAgeMs, silentSpans, type ScopeStream, type TrackClock } from './evaluate.js';
import { findPhrase, normalizeText } from './match.js';
import type { ConferencePeers, PeerEvent, PeerStream, PeerTrackState } from './peers.js';
import type { DtmfCondition, PhraseCondition, RegexCondition, Rule } from './rules.js';
import { InMemoryConferenceStore, type ConferenceStore } from './store.js';
import type { AuditEntry, ConditionsMetrics, Evidence, ScopeKind, Trigger } from './types.js';

export type { EndOutcome } from './decisions.js';

export interface ConditionsEngineOptions {
  bus: EventBus;
  rules: readonly Rule[];
  log: Logger;
  metrics: ConditionsMetrics;
  /** The REST client; null when no credentials are configured (every action then fails, and says so). */
  twilio: ConditionsTwilio | null;
  /** Default: a new {@link InMemoryConferenceStore}. */
  store?: ConferenceStore;
  /** Wall-clock ticker: max-duration fallback and cleanup. Default 250 ms. */
  tickMs?: number;
  /** No media progress for this long counts as "media stopped" for the max-duration fallback. Default 1000 ms. */
  mediaStallMs?: number;
  /** The wall clock ends a conference this long past its maximum even while media still flows (clock drift). Default 5000 ms. */
  wallSlackMs?: number;
  /** A scope without streams (and an ended one) is forgotten, with its audit, after this long. Default 10 min. */
  retentionMs?: number;
  /**
   * The engines of other processes sharing conferences (REDIS_URL): stream membership and
   * speaking/silent transitions flow both ways, so silence and maximum duration cover every
   * track of a conference wherever it is. Use with a shared `store`, whose end claim keeps the
   * end exactly-once. A rule decision that cannot reach the store is retried every
   * `storeRetryMs` (default 1000) until it can.
   */
  peers?: ConferencePeers;
  storeRetryMs?: number;
}

interface Timed {
  rule: Rule;
  ms: number;
}

const MAX_EVIDENCE_TEXT = 500;

export class ConditionsEngine {
  readonly #bus: EventBus;
  readonly #log: Logger;
  readonly #metrics: ConditionsEngineOptions['metrics'];
  readonly #store: ConferenceStore;
  readonly #decider: Decider;
  readonly #mediaStallMs: number;
  readonly #wallSlackMs: number;
  readonly #retentionMs: number;

  readonly #phraseRules: { rule: Rule; when: PhraseCondition }[] = [];
  readonly #regexRules: { rule: Rule; when: RegexCondition }[] = [];
  readonly #dtmfRules: { rule: Rule; when: DtmfCondition }[] = [];
  readonly #silenceRules: Timed[] = [];
  readonly #durationRules: Timed[] = [];
  readonly #anyPartial: boolean;
  readonly #dtmfMax: number;

  /** Scopes by id (conference SID, or stream SID for a lone stream), and by each live stream. */
  readonly #scopes = new Map<string, Scope>();
  readonly #byStream = new Map<string, Scope>();
  /** Peers' streams by stream SID. */
  readonly #remote = new Map<string, Scope>();
  readonly #peers: ConferencePeers | null;
  readonly #storeRetryMs: number;
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #ticker: NodeJS.Timeout;
  #closed = false;

  constructor(opts: ConditionsEngineOptions) {
    this.#bus = opts.bus;
    this.#log = opts.log;
    this.#metrics = opts.metrics;
    this.#store = opts.store ?? new InMemoryConferenceStore();
    this.#decider = new Decider({ store: this.#store, twilio: opts.twilio, log: opts.log, metrics: opts.metrics });
    this.#mediaStallMs = opts.mediaStallMs ?? 1000;
    this.#wallSlackMs = opts.wallSlackMs ?? 5000;
    this.#retentionMs = opts.retentionMs ?? 10 * 60_000;
    this.#peers = opts.peers ?? null;
    this.#storeRetryMs = opts.storeRetryMs ?? 1000;
    for (const rule of opts.rules) {
      const w = rule.when;
      switch (w.kind) {
        case 'phrase':
          this.#phraseRules.push({ rule, when: w });
          break;
        case 'regex':
          this.#regexRules.push({ rule, when: w });
          break;
        case 'dtmf':
          this.#dtmfRules.push({ rule, when: w });
          break;
        case 'silence':
          this.#silenceRules.push({ rule, ms: w.seconds * 1000 });
          break;
        case 'max-duration':
          this.#durationRules.push({ rule, ms: w.seconds * 1000 });
          break;
      }
    }
    this.#anyPartial = this.#phraseRules.some((r) => r.when.partial);
    this.#dtmfMax = this.#dtmfRules.reduce((n, r) => Math.max(n, r.when.sequence.length), 0);

    const bus = this.#bus;
    this.#unsubscribe.push(
      bus.on('stream-start', (info) => this.#onStreamStart(info)),
      bus.on('stream-end', (info) => this.#onStreamEnd(info)),
      bus.on('media-progress', (info, track, atMs) => this.#onProgress(info, track, atMs)),
      bus.on('level', (change) => this.#onLevel(change)),
      bus.on('dtmf', (info, digit, atMs) => this.#onDtmf(info, digit, atMs)),
      bus.on('transcript', (event) => this.#onTranscript(event)),
      bus.on('phrase', (event) => this.#onPhrase(event)),
      bus.on('conference-end', (event) => this.onConferenceEnded(event.conferenceSid)),
    );
    if (this.#peers !== null) {
      this.#unsubscribe.push(this.#peers.attach({ onEvent: (ev) => this.#onPeer(ev), snapshot: (cf) => this.#snapshot(cf) }));
    }
    this.#ticker = setInterval(() => this.#tick(), opts.tickMs ?? 250);
    this.#ticker.unref();
    if (opts.rules.length > 0) {
      this.#log.info({ rules: opts.rules.map((r) => ({ name: r.name, when: r.when.kind, dryRun: r.dryRun })) }, 'conditions rules loaded');
      if (opts.twilio === null) this.#log.warn('rules are loaded but Twilio REST credentials are not: their actions will fail');
    }
  }

  /** Scopes held (for tests and leak checks). */
  get scopeCount(): number {
    return this.#scopes.size;
  }

  /** The decisions recorded for a conference (or lone stream), oldest first. */
  audit(scopeId: string): Promise<readonly AuditEntry[]> {
    return this.#store.audit(scopeId);
  }

  /**
   * Ends a conference now (the admin API's `POST /v1/conferences/{sid}/end`), through the same
   * once-only claim the rules use: when a rule (or an earlier request, or another instance) has
   * already ended it or is ending it, nothing is sent and the result is `suppressed`, with the
   * winner's outcome in `previous`. Never rejects for Twilio's sake (see `result`); throws
   * InvalidInputError for a malformed SID.
   */
  async endConference(conferenceSid: string, reason: string): Promise<EndOutcome> {
    assertSid('conference', conferenceSid, 'conferenceSid');
    const evidenceAt = performance.now();
    let scope = this.#scopes.get(conferenceSid);
    if (scope === undefined) {
      scope = new Scope(conferenceSid, 'conference', null, Date.now());
      scope.idleSinceMs = Date.now();
      this.#scopes.set(conferenceSid, scope);
    }
    const draft: Draft = { rule: null, by: `api:${reason}`, trigger: 'api', evidence: { kind: 'api', reason }, mediaMs: null, dryRun: false, evidenceAt };
    const outcome = await this.#track(this.#decider.end(scope, draft, null));
    if (outcome.result === 'suppressed' && outcome.previous === null && scope.ending !== null) {
      await scope.ending;
      outcome.previous = await this.#decider.outcomeOf(scope.id);
    }
    return outcome;
  }

  /**
   * {@link endConference} in the shape the admin API calls (core/conference.ts `EndConference`):
   * `completed` → `ended`; `already-ended` and `suppressed` (someone else ended it) →
   * `already-ended`; `not-found` and `failed` reject with the REST client's error.
   */
  endConferenceHook(): EndConference {
    return async (conferenceSid, source) => {
      const o = await this.endConference(conferenceSid, source);
      if (o.result === 'completed') return { conferenceSid, result: 'ended', status: o.status };
      if (o.result === 'already-ended' || o.result === 'suppressed') return { conferenceSid, result: 'already-ended', status: o.status };
      throw o.cause instanceof Error ? o.cause : new Error(o.error ?? `conference end ${o.result}`);
    };
  }

  /**
   * Twilio reported `conference-end` (heard on the bus, where the webhook publishes it): rules stop for the conference, no
   * later end is attempted, and its state is forgotten after the retention period.
   */
  onConferenceEnded(conferenceSid: string): void {
    let scope = this.#scopes.get(conferenceSid);
    if (scope === undefined) {
      // A tombstone, so a late transcript cannot revive the conference and try to end it again.
      scope = new Scope(conferenceSid, 'conference', null, Date.now());
      this.#scopes.set(conferenceSid, scope);
    }
    scope.endedByCallback = true;
    if (scope.state === 'live') scope.state = 'ended';
    if (scope.streams.size === 0) scope.idleSinceMs = Date.now();
    this.#background(this.#store.markEnded(conferenceSid, { result: 'already-ended', by: 'conference-end', atMs: Date.now() }), 'markEnded');
    this.#log.info({ conferenceSid }, 'conference ended (Twilio callback); its rules stop');
  }

  /** Stops listening and the ticker; resolves when actions in flight have finished. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#unsubscribe) off();
    clearInterval(this.#ticker);
    await Promise.allSettled([...this.#inflight]);
  }

  // ── bus handlers (synchronous) ──────────────────────────────────────────────────────────

  #onStreamStart(info: StreamInfo): void {
    const id = info.conferenceSid ?? info.streamSid;
    const scopeKind: ScopeKind = info.conferenceSid === null ? 'stream' : 'conference';
    let scope = this.#scopes.get(id);
    if (scope === undefined) {
      scope = new Scope(id, scopeKind, scopeKind === 'stream' ? info.callSid : null, info.startedAtMs);
      this.#scopes.set(id, scope);
    }
    const added = scope.addStream(info);
    this.#byStream.set(info.streamSid, scope);
    this.#background(this.#store.addStream(id, scopeKind, info.streamSid), 'addStream');
    if (this.#peers !== null && info.conferenceSid !== null) {
      this.#peers.publish({ kind: 'streams', fresh: true, streams: [this.#peerStream(info.conferenceSid, added)] });
    }
  }

  #onStreamEnd(info: StreamInfo): void {
    const scope = this.#byStream.get(info.streamSid);
    if (scope === undefined) return;
    this.#byStream.delete(info.streamSid);
    scope.streams.delete(info.streamSid);
    this.#background(this.#store.removeStream(scope.id, info.streamSid), 'removeStream');
    if (this.#peers !== null && scope.kind === 'conference') {
      this.#peers.publish({ kind: 'end', owner: this.#peers.self, streamSid: info.streamSid, conferenceSid: scope.id });
    }
    if (scope.streams.size === 0) scope.idleSinceMs = Date.now();
    // With one track fewer, the rest may now all be silent long enough.
    else if (scope.state === 'live' && this.#silenceRules.length > 0) this.#checkSilence(scope, null, performance.now());
  }

  #onProgress(info: StreamInfo, track: Track, atMs: number): void {
    const scope = this.#byStream.get(info.streamSid);
    if (scope === undefined || scope.state !== 'live') return;
    const t = scope.track(info.streamSid, track);
    if (t === null || atMs <= t.progressMs) return;
    const first = t.progressMs < 0;
    // A track with no speech yet is silent from its first frame.
    if (first && !t.speaking) t.silentSinceMs = atMs;
    const now = performance.now();
    t.progressMs = atMs;
    t.progressAt = now;
    scope.lastProgressAt = now;
    // Peers count a track from its first frame, as this process does.
    if (first && this.#peers !== null && scope.kind === 'conference') {
      this.#peers.publish({ kind: 'level', owner: this.#peers.self, streamSid: t.streamSid, conferenceSid: scope.id, state: trackState(t), atWallMs: Date.now() });
    }
    if (this.#silenceRules.length > 0) this.#checkSilence(scope, t, now);
    if (this.#durationRules.length > 0) this.#checkMediaDuration(scope, info, t, now);
  }

  #onLevel(change: LevelChange): void {
    const scope = this.#byStream.get(change.info.streamSid);
    if (scope === undefined || scope.state !== 'live') return;
    const t = scope.track(change.info.streamSid, change.track);
    if (t === null) return;
    const now = performance.now();
    t.speaking = change.speaking;
    if (!change.speaking) t.silentSinceMs = change.sinceMs ?? change.atMs;
    if (change.atMs > t.progressMs) {
      t.progressMs = change.atMs;
      t.progressAt = now;
      scope.lastProgressAt = now;
    }
    if (this.#peers !== null && scope.kind === 'conference') {
      const state = trackState(t);
      this.#peers.publish({ kind: 'level', owner: this.#peers.self, streamSid: t.streamSid, conferenceSid: scope.id, state, atWallMs: Date.now() });
    }
    if (!change.speaking && this.#silenceRules.length > 0) this.#checkSilence(scope, t, now);
  }

  #onDtmf(info: StreamInfo, digit: string, atMs: number): void {
    if (this.#dtmfRules.length === 0) return;
    const scope = this.#byStream.get(info.streamSid);
    if (scope === undefined || scope.state !== 'live') return;
    const now = performance.now();
    scope.dtmf = (scope.dtmf + digit).slice(-this.#dtmfMax);
    for (const { rule, when } of this.#dtmfRules) {
      if (scope.fired.has(rule.name) || !scope.dtmf.endsWith(when.sequence)) continue;
      this.#trigger(scope, rule, 'dtmf', { kind: 'dtmf', digits: when.sequence, streamSid: info.streamSid, atMs }, atMs, now);
    }
  }

  #onTranscript(ev: TranscriptEvent): void {
    if (!ev.isFinal && !this.#anyPartial) return;
    if (this.#phraseRules.length === 0 && this.#regexRules.length === 0) return;
    const now = performance.now();
    const scope = this.#scopeOfEvent(ev);
    if (scope.state !== 'live') return;
    let normalized: string | null = null;
    for (const { rule, when } of this.#phraseRules) {
      if (scope.fired.has(rule.name) || (!ev.isFinal && !when.partial) || (when.track !== null && when.track !== ev.track)) continue;
      normalized ??= normalizeText(ev.text);
      const i = findPhrase(normalized, when.normalized);
      if (i < 0) continue;
      this.#trigger(scope, rule, 'phrase', transcriptEvidence(ev, when.phrases[i]!), ev.endMs, now);
    }
    if (!ev.isFinal) return;
    for (const { rule, when } of this.#regexRules) {
      if (scope.fired.has(rule.name) || (when.track !== null && when.track !== ev.track) || !when.regex.test(ev.text)) continue;
      this.#trigger(scope, rule, 'regex', transcriptEvidence(ev, when.pattern), ev.endMs, now);
    }
  }

  /** A phrase the keyword spotter heard: counts like a final transcript containing it. */
  #onPhrase(ev: PhraseEvent): void {
    if (this.#phraseRules.length === 0) return;
    const now = performance.now();
    const scope = this.#scopeOfEvent(ev);
    if (scope.state !== 'live') return;
    const normalized = normalizeText(ev.phrase);
    for (const { rule, when } of this.#phraseRules) {
      if (scope.fired.has(rule.name) || (when.track !== null && when.track !== ev.track)) continue;
      const i = findPhrase(normalized, when.normalized);
      if (i < 0) continue;
      const evidence: Evidence = {
        kind: 'spotted',
        phrase: ev.phrase.slice(0, MAX_EVIDENCE_TEXT),
        matched: when.phrases[i]!,
        track: ev.track,
        streamSid: ev.streamSid,
        callSid: ev.callSid,
        startMs: ev.startMs,
        endMs: ev.endMs,
      };
      this.#trigger(scope, rule, 'phrase', evidence, ev.endMs, now);
    }
  }

  // ── timing conditions ───────────────────────────────────────────────────────────────────

  /**
   * Fires silence rules whose threshold every counted track has reached. The evidence moment is
   * the media-clock crossing on the last track to get there, mapped to wall time through the
   * report that revealed it (`changed`); when something else completed it (a stream left),
   * the moment is now.
   */
  #checkSilence(scope: Scope, changed: TrackClock | null, now: number): void {
    const silence = conferenceSilence(scope, now);
    if (silence === null) return;
    for (const { rule, ms } of this.#silenceRules) {
      if (scope.fired.has(rule.name) || silence.silentMs < ms) continue;
      const lim = silence.limiting;
      const crossingMs = lim.silentSinceMs + ms;
      const overshoot = lim === changed ? Math.max(0, lim.progressMs - crossingMs) : 0;
      const evidence: Evidence = { kind: 'silence', silentMs: silence.silentMs, tracks: silentSpans(scope) };
      this.#trigger(scope, rule, 'silence', evidence, crossingMs, now - overshoot);
    }
  }

  #checkMediaDuration(scope: Scope, info: StreamInfo, t: TrackClock, now: number): void {
    const age = mediaAgeMs(scope, info, t.progressMs);
    for (const { rule, ms } of this.#durationRules) {
      if (scope.fired.has(rule.name) || age < ms) continue;
      const overshoot = age - ms;
      this.#trigger(scope, rule, 'max-duration', { kind: 'duration', clock: 'media', ageMs: age }, t.progressMs - overshoot, now - overshoot);
    }
  }

  /**
   * The wall clock, for when media stops: a conference past its maximum age ends when no track
   * has reported media for `mediaStallMs` (or, with media flowing, `wallSlackMs` past the limit).
   */
  #checkWallDuration(scope: Scope, wallNow: number, now: number): void {
    const wallAge = wallNow - scope.startedAtMs;
    for (const { rule, ms } of this.#durationRules) {
      if (scope.fired.has(rule.name) || wallAge < ms) continue;
      const crossingAt = now - (wallAge - ms);
      const stoppedAt = scope.lastProgressAt === 0 ? Number.NEGATIVE_INFINITY : scope.lastProgressAt + this.#mediaStallMs;
      const slackAt = crossingAt + this.#wallSlackMs;
      if (now < stoppedAt && now < slackAt) continue;
      const evidenceAt = Math.max(crossingAt, Math.min(stoppedAt, slackAt));
      this.#trigger(scope, rule, 'max-duration', { kind: 'duration', clock: 'wall', ageMs: wallAge }, null, evidenceAt);
    }
  }

  #tick(): void {
    const wallNow = Date.now();
    const now = performance.now();
    for (const scope of this.#scopes.values()) {
      if (scope.state === 'live' && this.#durationRules.length > 0 && (scope.kind === 'conference' || scope.streams.size > 0)) {
        this.#checkWallDuration(scope, wallNow, now);
      }
      if (scope.streams.size > 0 || scope.idleSinceMs < 0 || scope.state === 'ending') continue;
      // A live conference with a maximum age is kept until the wall clock ends it: its streams
      // may have been stopped while the conference goes on.
      if (scope.state === 'live' && scope.kind === 'conference' && this.#durationRules.length > 0) continue;
      if (wallNow - scope.idleSinceMs >= this.#retentionMs) this.#forget(scope);
    }
  }

  #forget(scope: Scope): void {
    this.#scopes.delete(scope.id);
    this.#background(this.#store.delete(scope.id), 'delete');
  }

  // ── decisions ───────────────────────────────────────────────────────────────────────────

  #trigger(scope: Scope, rule: Rule, trigger: Trigger, evidence: Evidence, mediaMs: number | null, evidenceAt: number): void {
    if (this.#closed || scope.state !== 'live' || scope.fired.has(rule.name)) return;
    scope.fired.add(rule.name);
    this.#metrics.conditionsTriggered.labels(rule.name).inc();
    const draft: Draft = { rule: rule.name, by: rule.name, trigger, evidence, mediaMs, dryRun: rule.dryRun, evidenceAt };
    if (rule.dryRun) {
      this.#track(this.#decider.dryRun(scope, draft));
      return;
    }
    this.#track(this.#endRetrying(scope, draft, rule));
  }

  /** A rule's end; while the (shared) store cannot be reached, tried again every `storeRetryMs`. */
  async #endRetrying(scope: Scope, draft: Draft, rule: Rule): Promise<EndOutcome | null> {
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.#decider.end(scope, draft, rule, 'defer');
      if (outcome !== null || this.#closed || scope.state !== 'live') return outcome;
      if (attempt === 0) this.#log.warn({ scope: scope.id, rule: rule.name }, 'conditions decision waits for the conference store');
      await new Promise((resolve) => setTimeout(resolve, this.#storeRetryMs).unref());
    }
  }

  // ── peers (other processes, conditions/peers.ts) ───────────────────────────────────────

  #onPeer(ev: PeerEvent): void {
    const self = this.#peers!.self;
    switch (ev.kind) {
      case 'streams': {
        const asked = new Set<string>();
        for (const ps of ev.streams) {
          if (ps.owner === self) continue;
          this.#upsertPeerStream(ps);
          if (ev.fresh) asked.add(ps.conferenceSid);
        }
        // A peer's new stream: tell it ours of the same conference, which it cannot know.
        for (const cf of asked) {
          const mine = this.#snapshot(cf);
          if (mine.length > 0) this.#peers!.publish({ kind: 'streams', fresh: false, streams: mine });
        }
        return;
      }
      case 'level': {
        if (ev.owner === self) return;
        const scope = this.#remote.get(ev.streamSid);
        if (scope === undefined) return;
        const t = scope.track(ev.streamSid, ev.state.track);
        if (t === null) return;
        applyPeerState(t, ev.state, ev.atWallMs);
        if (scope.state === 'live' && !t.speaking && this.#silenceRules.length > 0) this.#checkSilence(scope, null, performance.now());
        return;
      }
      case 'end':
        if (ev.owner !== self) this.#dropPeerStream(ev.streamSid);
        return;
      case 'gone':
        for (const [sid, scope] of [...this.#remote]) if (scope.streams.get(sid)?.owner === ev.owner) this.#dropPeerStream(sid);
        return;
    }
  }

  #upsertPeerStream(ps: PeerStream): void {
    let scope = this.#remote.get(ps.streamSid) ?? this.#scopes.get(ps.conferenceSid);
    if (scope === undefined) {
      scope = new Scope(ps.conferenceSid, 'conference', null, ps.startedAtMs);
      this.#scopes.set(scope.id, scope);
    }
    let s = scope.streams.get(ps.streamSid);
    if (s === undefined) {
      const info = { accountSid: '', callSid: ps.callSid, streamSid: ps.streamSid, tracks: ps.tracks, customParameters: {}, conferenceSid: ps.conferenceSid, startedAtMs: ps.startedAtMs };
      s = scope.addStream(info, ps.owner);
      this.#remote.set(ps.streamSid, scope);
    }
    for (const state of ps.states) {
      const t = s.tracks.find((x) => x.track === state.track);
      if (t !== undefined) applyPeerState(t, state, ps.atWallMs);
    }
  }

  #dropPeerStream(streamSid: string): void {
    const scope = this.#remote.get(streamSid);
    if (scope === undefined) return;
    this.#remote.delete(streamSid);
    scope.streams.delete(streamSid);
    if (scope.streams.size === 0) scope.idleSinceMs = Date.now();
    else if (scope.state === 'live' && this.#silenceRules.length > 0) this.#checkSilence(scope, null, performance.now());
  }

  /** This process's own conference streams, for peers. */
  #snapshot(conferenceSid: string | null): PeerStream[] {
    const out: PeerStream[] = [];
    const scopes = conferenceSid === null ? this.#scopes.values() : [this.#scopes.get(conferenceSid)].filter((s) => s !== undefined);
    for (const scope of scopes) {
      if (scope.kind !== 'conference') continue;
      for (const s of scope.streams.values()) if (s.owner === null) out.push(this.#peerStream(scope.id, s));
    }
    return out;
  }

  #peerStream(conferenceSid: string, s: ScopeStream): PeerStream {
    const { info } = s;
    return {
      owner: this.#peers!.self,
      streamSid: info.streamSid,
      callSid: info.callSid,
      conferenceSid,
      tracks: [...info.tracks],
      startedAtMs: info.startedAtMs,
      states: s.tracks.filter((t) => t.progressMs >= 0).map(trackState),
      atWallMs: Date.now(),
    };
  }

  // ── helpers ─────────────────────────────────────────────────────────────────────────────

  /** The scope of a transcript or spotted phrase; created when the engine never saw its stream start. */
  #scopeOfEvent(ev: { streamSid: string; callSid: string; conferenceSid: string | null }): Scope {
    const known = this.#byStream.get(ev.streamSid) ?? this.#scopes.get(ev.conferenceSid ?? ev.streamSid);
    if (known !== undefined) return known;
    const kind: ScopeKind = ev.conferenceSid === null ? 'stream' : 'conference';
    const scope = new Scope(ev.conferenceSid ?? ev.streamSid, kind, kind === 'stream' ? ev.callSid : null, Date.now());
    scope.idleSinceMs = Date.now();
    this.#scopes.set(scope.id, scope);
    return scope;
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p));
    return p;
  }

  #background(p: Promise<unknown>, what: string): void {
    p.catch((err: unknown) => this.#log.error({ err, operation: what }, 'conference store operation failed'));
  }
}

function trackState(t: TrackClock): PeerTrackState {
  return { track: t.track, speaking: t.speaking, silentSinceMs: t.silentSinceMs, progressMs: t.progressMs };
}

/** A peer's report, placed on this process's `performance.now()` timeline through the wall clock. */
function applyPeerState(t: TrackClock, state: PeerTrackState, atWallMs: number): void {
  t.speaking = state.speaking;
  t.silentSinceMs = state.silentSinceMs;
  t.progressMs = state.progressMs;
  t.progressAt = performance.now() - Math.max(0, Date.now() - atWallMs);
}

function transcriptEvidence(ev: TranscriptEvent, matched: string): Evidence {
  return {
    kind: 'transcript',
    text: ev.text.length > MAX_EVIDENCE_TEXT ? ev.text.slice(0, MAX_EVIDENCE_TEXT) + '…' : ev.text,
    matched,
    final: ev.isFinal,
    track: ev.track,
    streamSid: ev.streamSid,
    callSid: ev.callSid,
    startMs: ev.startMs,
    endMs: ev.endMs,
  };
}
