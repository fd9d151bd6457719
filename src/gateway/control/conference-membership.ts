/**
 * Which calls a conference's signed status callbacks reported as its participants: a
 * `participant-join` adds the call, `participant-leave` removes it, `conference-end` forgets the
 * conference. The stream trust check (twilio-wiring.ts) reads it, so a stream of a call that
 * really is in the conference may act on it even when streamgate did not create the stream
 * (AUTO_STREAM_TRACK=off, the user's own <Start><Stream>). Bounded: 250 calls per conference
 * (Twilio's own limit) and 10 000 conferences, the least recently joined forgotten first.
 */
const MAX_PARTICIPANTS = 250;

export class ConferenceMembership {
  readonly #max: number;
  /** Insertion order = least recently joined first. */
  readonly #members = new Map<string, Set<string>>();

  constructor(opts: { maxConferences?: number } = {}) {
    this.#max = opts.maxConferences ?? 10_000;
  }

  join(conferenceSid: string, callSid: string): void {
    let calls = this.#members.get(conferenceSid);
    if (calls === undefined) calls = new Set();
    else this.#members.delete(conferenceSid);
    this.#members.set(conferenceSid, calls);
    if (calls.size < MAX_PARTICIPANTS) calls.add(callSid);
    while (this.#members.size > this.#max) {
      const oldest = this.#members.keys().next().value;
      if (oldest === undefined) break;
      this.#members.delete(oldest);
    }
  }

  leave(conferenceSid: string, callSid: string): void {
    this.#members.get(conferenceSid)?.delete(callSid);
  }

  end(conferenceSid: string): void {
    this.#members.delete(conferenceSid);
  }

  has(conferenceSid: string, callSid: string): boolean {
    return this.#members.get(conferenceSid)?.has(callSid) ?? false;
  }
}
