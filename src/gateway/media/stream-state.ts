/**
 * The StreamSession state machine as data: what each event does in each state. StreamSession
 * changes state only through this table (its `#transition`), and
 * test/gateway/stream-state.test.ts walks every (state, event) pair against a real session.
 *
 *     OPEN ──connected──► CONNECTED ──start──► STARTED ──stop / socket close / stall──► CLOSED
 *       └─────────────start─────────────┘   media, dtmf, mark
 *     any state but CLOSED ──protocol error / shutdown / socket close──► CLOSED
 *
 * CLOSED is entered once; the session then finalises its sinks (StreamSession.end) and ignores
 * everything else. There is no separate STOPPED state: a `stop` closes the stream like any other
 * end, and `closeReason` ('stopped', 'aborted', …) says how it ended.
 */

export const STATE = { OPEN: 0, CONNECTED: 1, STARTED: 2, CLOSED: 3 } as const;
export type SessionState = (typeof STATE)[keyof typeof STATE];

/** What can happen to a session: a message from Twilio, or something the gateway observes. */
export const SESSION_EVENT = {
  CONNECTED: 0,
  START: 1,
  MEDIA: 2,
  DTMF: 3,
  MARK: 4,
  STOP: 5,
  /**
   * A media, dtmf, mark or stop message naming another streamSid than the started stream's.
   * Only a started stream has a streamSid to differ from: before `start` such a message is
   * judged by its kind (MEDIA, DTMF, …), so the OPEN and CONNECTED cells are never consulted.
   */
  FOREIGN_STREAM: 6,
  /** A message with an event name we do not know (counted, otherwise ignored). */
  UNKNOWN: 7,
  /** A protocol error found elsewhere (bad message, binary frame, too big, refused start, handshake timeout). */
  ERROR: 8,
  SOCKET_CLOSED: 9,
  /** No message for STALL_TIMEOUT_SECONDS on a started stream. */
  STALLED: 10,
  SHUTDOWN: 11,
} as const;
export type SessionEvent = (typeof SESSION_EVENT)[keyof typeof SESSION_EVENT];

/** The event is a protocol error here: the session closes with this reason (and field). */
export interface Refusal {
  readonly reason: string;
  readonly field?: string;
}

/** Nothing happens: the state stays, the event does no work. */
export const IGNORED = 'ignored';

export type Outcome = SessionState | Refusal | typeof IGNORED;

const S = STATE;
const before = (reason: string): Refusal => ({ reason });

/** TRANSITIONS[state][event]: the next state, a refusal, or IGNORED. Indexed by the numbers above. */
export const TRANSITIONS: readonly (readonly Outcome[])[] = (() => {
  const row = (o: Record<keyof typeof SESSION_EVENT, Outcome>): Outcome[] => {
    const out: Outcome[] = [];
    for (const [name, event] of Object.entries(SESSION_EVENT)) out[event] = o[name as keyof typeof SESSION_EVENT];
    return out;
  };
  const table: Outcome[][] = [];
  table[S.OPEN] = row({
    CONNECTED: S.CONNECTED,
    START: S.STARTED,
    MEDIA: before('media_before_start'),
    DTMF: before('dtmf_before_start'),
    MARK: before('mark_before_start'),
    STOP: before('stop_before_start'),
    FOREIGN_STREAM: IGNORED, // not classified before start (see SESSION_EVENT)
    UNKNOWN: S.OPEN,
    ERROR: S.CLOSED,
    SOCKET_CLOSED: S.CLOSED,
    STALLED: IGNORED, // the handshake timeout covers a stream that never started
    SHUTDOWN: S.CLOSED,
  });
  table[S.CONNECTED] = row({
    CONNECTED: before('unexpected_connected'),
    START: S.STARTED,
    MEDIA: before('media_before_start'),
    DTMF: before('dtmf_before_start'),
    MARK: before('mark_before_start'),
    STOP: before('stop_before_start'),
    FOREIGN_STREAM: IGNORED, // not classified before start (see SESSION_EVENT)
    UNKNOWN: S.CONNECTED,
    ERROR: S.CLOSED,
    SOCKET_CLOSED: S.CLOSED,
    STALLED: IGNORED,
    SHUTDOWN: S.CLOSED,
  });
  table[S.STARTED] = row({
    CONNECTED: before('unexpected_connected'),
    START: before('duplicate_start'),
    MEDIA: S.STARTED,
    DTMF: S.STARTED,
    MARK: S.STARTED,
    STOP: S.CLOSED,
    FOREIGN_STREAM: { reason: 'stream_sid_mismatch', field: 'streamSid' },
    UNKNOWN: S.STARTED,
    ERROR: S.CLOSED,
    SOCKET_CLOSED: S.CLOSED,
    STALLED: S.CLOSED,
    SHUTDOWN: S.CLOSED,
  });
  table[S.CLOSED] = row({
    CONNECTED: IGNORED,
    START: IGNORED,
    MEDIA: IGNORED,
    DTMF: IGNORED,
    MARK: IGNORED,
    STOP: IGNORED,
    FOREIGN_STREAM: IGNORED,
    UNKNOWN: IGNORED,
    ERROR: IGNORED,
    SOCKET_CLOSED: IGNORED,
    STALLED: IGNORED,
    SHUTDOWN: IGNORED,
  });
  return table;
})();
