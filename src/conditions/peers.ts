/**
 * What the conditions engine tells, and hears from, the engines of other processes that share
 * conferences with it (REDIS_URL; src/state/peer-link.ts carries it over Redis pub/sub). Only
 * what a rule over the whole conference needs, and never per frame:
 *
 * - a conference stream started here (with its tracks' speaking state), or the streams of a
 *   conference this process holds, in answer to a peer's new stream or a peer's (re)connect;
 * - a track turned speaking or silent (transitions only), with its media-clock position;
 * - a stream ended here; a peer process went quiet (its streams are gone with it).
 *
 * Between transitions a peer track's media clock is carried forward on the wall clock, so the
 * silence of a track on another process is measured without its frames.
 */
import type { Track } from '../core/stream.js';

export interface PeerTrackState {
  track: Track;
  speaking: boolean;
  /** Media-clock start of the current silence, ms (meaningless while speaking). */
  silentSinceMs: number;
  /** Media-clock position reached, ms. */
  progressMs: number;
}

export interface PeerStream {
  /** The process holding the stream's socket. */
  owner: string;
  streamSid: string;
  callSid: string;
  conferenceSid: string;
  tracks: Track[];
  /** Wall clock of the stream's `start`, ms since epoch. */
  startedAtMs: number;
  states: PeerTrackState[];
  /** Wall clock at which `states` were read, ms since epoch. */
  atWallMs: number;
}

export type PeerEvent =
  /** `fresh`: a stream just started (peers answer with their own streams of that conference). */
  | { kind: 'streams'; streams: PeerStream[]; fresh: boolean }
  | { kind: 'level'; owner: string; streamSid: string; conferenceSid: string; state: PeerTrackState; atWallMs: number }
  | { kind: 'end'; owner: string; streamSid: string; conferenceSid: string }
  /** The process stopped announcing itself: every stream it held is gone. */
  | { kind: 'gone'; owner: string };

export interface PeerHandlers {
  onEvent(event: PeerEvent): void;
  /** This process's conference streams (of one conference, or all for null), for a peer that asks. */
  snapshot(conferenceSid: string | null): PeerStream[];
}

export interface ConferencePeers {
  /** This process's id (the `owner` of its streams). */
  readonly self: string;
  /** Best effort: an event published while the link is down is lost; the re-announce after reconnection converges. */
  publish(event: Exclude<PeerEvent, { kind: 'gone' }>): void;
  /** Starts delivering other processes' events; returns the detacher. */
  attach(handlers: PeerHandlers): () => void;
}
