/**
 * Per-scope evaluation state and the timing conditions (silence, duration), kept apart from the
 * engine's wiring so they read as plain functions of the state.
 *
 * Clocks: every stream has its own media clock (Twilio's `media.timestamp`, from 0 at its start).
 * Silence is measured per track on that track's own clock and the conference is silent for the
 * shortest of them, so no two clocks are ever compared. Conference age puts each stream's clock
 * on the conference's timeline through the wall-clock time its `start` arrived.
 */
import type { StreamInfo, Track } from '../core/stream.js';
import type { SilentTrack, ScopeKind } from './types.js';
import type { ActionOutcome } from './actions.js';

/** One track's level and media clock, as the level meter reported them. */
export class TrackClock {
  readonly streamSid: string;
  readonly track: Track;
  speaking = false;
  /** Media-clock start of the current silence; −1 before the track's first frame. */
  silentSinceMs = -1;
  /** Media-clock position reached; −1 before the first frame (the track does not count until then). */
  progressMs = -1;
  /** `performance.now()` when `progressMs` was reported. */
  progressAt = 0;
  /**
   * The track is on another process (conditions/peers.ts): only its transitions arrive, so its
   * media clock is carried forward on the wall clock from `progressAt`.
   */
  remote = false;

  constructor(streamSid: string, track: Track) {
    this.streamSid = streamSid;
    this.track = track;
  }

  /** Media time silent so far (0 while speaking or before the first frame). */
  silentMs(now = 0): number {
    if (this.speaking || this.progressMs < 0) return 0;
    const progress = this.remote ? this.progressMs + Math.max(0, now - this.progressAt) : this.progressMs;
    return progress - this.silentSinceMs;
  }
}

export interface ScopeStream {
  info: StreamInfo;
  tracks: TrackClock[];
  /** The process holding a peer's stream; null for this process's own. */
  owner: string | null;
}

export type ScopeState = 'live' | 'ending' | 'ended';

/** A conference (or a lone stream) as one engine instance sees it. */
export class Scope {
  readonly id: string;
  readonly kind: ScopeKind;
  /** For a stream scope: the call and stream UpdateStream addresses. */
  readonly callSid: string | null;
  /** Wall clock (ms since epoch) of the first stream's start: the conference's time zero. */
  startedAtMs: number;
  readonly streams = new Map<string, ScopeStream>();
  /** Rules that already fired here (each fires at most once per scope). */
  readonly fired = new Set<string>();
  state: ScopeState = 'live';
  /** Twilio said the conference ended (`conference-end`): a failed end must not make it live again. */
  endedByCallback = false;
  /** Recent DTMF digits, newest last, at most the longest rule sequence. */
  dtmf = '';
  /** `performance.now()` of the latest media progress of any track; 0 before any. */
  lastProgressAt = 0;
  /** Wall clock when the scope went idle (no streams) or ended; −1 while neither. */
  idleSinceMs = -1;
  /** The end in flight, for callers that want its result. */
  ending: Promise<ActionOutcome | null> | null = null;

  constructor(id: string, kind: ScopeKind, callSid: string | null, startedAtMs: number) {
    this.id = id;
    this.kind = kind;
    this.callSid = callSid;
    this.startedAtMs = startedAtMs;
  }

  addStream(info: StreamInfo, owner: string | null = null): ScopeStream {
    const tracks = info.tracks.map((t) => new TrackClock(info.streamSid, t));
    for (const t of tracks) t.remote = owner !== null;
    const s = { info, tracks, owner };
    this.streams.set(info.streamSid, s);
    if (info.startedAtMs < this.startedAtMs) this.startedAtMs = info.startedAtMs;
    this.idleSinceMs = -1;
    return s;
  }

  track(streamSid: string, track: Track): TrackClock | null {
    const s = this.streams.get(streamSid);
    if (s === undefined) return null;
    for (const t of s.tracks) if (t.track === track) return t;
    return null;
  }
}

export interface SilenceResult {
  /** Shortest silence over the counted tracks, ms. */
  silentMs: number;
  /** The track with that shortest silence: the last to cross any threshold. */
  limiting: TrackClock;
}

/**
 * The conference's silence: the shortest of its tracks' (those with at least one frame); null
 * when none counts. `now` (`performance.now()`) carries peer tracks' clocks forward.
 */
export function conferenceSilence(scope: Scope, now = 0): SilenceResult | null {
  let limiting: TrackClock | null = null;
  let min = Infinity;
  for (const s of scope.streams.values()) {
    for (const t of s.tracks) {
      if (t.progressMs < 0) continue;
      const silent = t.silentMs(now);
      if (silent < min) {
        min = silent;
        limiting = t;
      }
    }
  }
  return limiting === null ? null : { silentMs: min, limiting };
}

/** Each counted track's silence span, for the audit. */
export function silentSpans(scope: Scope): SilentTrack[] {
  const out: SilentTrack[] = [];
  for (const s of scope.streams.values()) {
    for (const t of s.tracks) {
      if (t.progressMs >= 0) out.push({ streamSid: t.streamSid, track: t.track, fromMs: t.speaking ? t.progressMs : t.silentSinceMs, toMs: t.progressMs });
    }
  }
  return out;
}

/** Conference age on the media clock as reported by one track: its stream's offset in the conference plus its position. */
export function mediaAgeMs(scope: Scope, info: StreamInfo, progressMs: number): number {
  return info.startedAtMs - scope.startedAtMs + progressMs;
}
