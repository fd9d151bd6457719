/**
 * Conferences: who is in them, when they start and end, who hears whom, and the status
 * callbacks Twilio sends about them (docs/twilio-protocol.md §6.2).
 *
 *   init ──(≥2 participants, one with startConferenceOnEnter)──► in-progress
 *     │                                                              │
 *     └──── last participant left / endConferenceOnExit left / ended via API ──► completed
 *
 * Ending a conference drops every participant. A call running TwiML leaves and goes on with
 * the verb after its <Dial> (call-runner.ts); a call driven only by the control API has no
 * TwiML to go on with and hangs up, which stops its streams with `stop` before
 * participant-leave and conference-end go out.
 */
import { InvalidInputError } from '../errors.js';
import { newSid } from '../twilio/sids.js';
import type { CallMedia } from './call-media.js';
import type { CallbackSender } from './callbacks.js';
import { rfc2822Callback } from './dates.js';
import type { SimEventBus } from './events.js';
import { conferenceSnapshot, newParticipant, type CallRecord, type ConferenceRecord, type ParticipantRecord } from './records.js';
import type { ConferenceNoun } from './twiml.js';
import type { ConferenceEndReason, CreateConferenceOptions, HttpMethod, ParticipantOptions, SimLogger } from './types.js';

/** The subscription keyword (`statusCallbackEvent`) each callback event needs. */
const SUBSCRIPTION: Record<string, string> = {
  'conference-start': 'start',
  'conference-end': 'end',
  'participant-join': 'join',
  'participant-leave': 'leave',
};

/** Free-text `Reason` sent with conference-end. */
const END_REASON_TEXT: Record<ConferenceEndReason, string> = {
  'conference-ended-via-api': 'Conference ended via API',
  'participant-with-end-conference-on-exit-left': 'Participant with endConferenceOnExit left the conference',
  'participant-with-end-conference-on-exit-kicked': 'Participant with endConferenceOnExit was removed from the conference',
  'last-participant-kicked': 'Last participant was removed from the conference',
  'last-participant-left': 'Last participant left the conference',
};

/** Parses `statusCallbackEvent`: space- or comma-separated, or a list. */
export function parseEvents(value: string | readonly string[] | undefined): Set<string> {
  const words = (typeof value === 'string' ? [value] : (value ?? [])).flatMap((v) => v.split(/[\s,]+/));
  return new Set(words.map((w) => w.trim().toLowerCase()).filter((w) => w !== ''));
}

/** What the conference engine needs of the call engine that owns it (SimEngine; kept narrow so the two do not import each other). */
export interface CallHost {
  readonly opts: { readonly accountSid: string; readonly logger: SimLogger };
  readonly calls: ReadonlyMap<string, CallRecord>;
  hangup(call: CallRecord, reason: 'conference-ended'): void;
}

export class ConferenceEngine {
  readonly conferences = new Map<string, ConferenceRecord>();
  readonly #engine: CallHost;
  readonly #callbacks: CallbackSender;
  readonly #bus: SimEventBus;

  constructor(engine: CallHost, callbacks: CallbackSender, bus: SimEventBus) {
    this.#engine = engine;
    this.#callbacks = callbacks;
    this.#bus = bus;
  }

  /** Creates an empty conference (status `init`). */
  create(opts: Omit<CreateConferenceOptions, 'participants'>): ConferenceRecord {
    const friendlyName = opts.friendlyName ?? `sim-${newSid('conference').slice(2, 10)}`;
    if (friendlyName.length > 128) throw new InvalidInputError('friendlyName is longer than 128 characters');
    if (this.activeByName(friendlyName) !== undefined) throw new InvalidInputError(`conference ${friendlyName} is already running`);
    const now = new Date();
    const conf: ConferenceRecord = {
      sid: newSid('conference'),
      accountSid: this.#engine.opts.accountSid,
      friendlyName,
      status: 'init',
      region: 'us1',
      dateCreated: now,
      dateUpdated: now,
      reasonConferenceEnded: null,
      callSidEndingConference: null,
      statusCallback: opts.statusCallback ?? null,
      statusCallbackMethod: opts.statusCallbackMethod ?? 'POST',
      events: opts.statusCallback === undefined ? new Set() : opts.statusCallbackEvent === undefined ? new Set(['start', 'end']) : parseEvents(opts.statusCallbackEvent),
      participants: new Map(),
      sequence: 0,
      announcements: [],
    };
    this.conferences.set(conf.sid, conf);
    this.#engine.opts.logger.info({ conferenceSid: conf.sid, friendlyName }, 'conference created');
    this.#emit(conf);
    return conf;
  }

  /** The running (not completed) conference with this name. */
  activeByName(friendlyName: string): ConferenceRecord | undefined {
    for (const c of this.conferences.values()) if (c.friendlyName === friendlyName && c.status !== 'completed') return c;
    return undefined;
  }

  /**
   * The running conference named `friendlyName`, created when there is none. Only the first
   * participant's status callback takes effect (docs/twilio-protocol.md §6.2).
   */
  byName(friendlyName: string, callback: { url: string; method: HttpMethod; events: string | string[] | null } | null): ConferenceRecord {
    const conf = this.activeByName(friendlyName);
    if (conf === undefined) {
      return this.create({
        friendlyName,
        ...(callback !== null
          ? { statusCallback: callback.url, statusCallbackMethod: callback.method, ...(callback.events !== null ? { statusCallbackEvent: callback.events } : {}) }
          : {}),
      });
    }
    if (conf.statusCallback === null && callback !== null && conf.participants.size === 0) {
      conf.statusCallback = callback.url;
      conf.statusCallbackMethod = callback.method;
      conf.events = callback.events === null ? new Set(['start', 'end']) : parseEvents(callback.events);
    }
    return conf;
  }

  /** `<Dial><Conference>`: the call joins the conference of that name. */
  dialIn(call: CallRecord, noun: ConferenceNoun): ParticipantRecord {
    const callback = noun.statusCallback === null ? null : { url: noun.statusCallback, method: noun.statusCallbackMethod, events: noun.statusCallbackEvent };
    const conf = this.byName(noun.friendlyName, callback);
    const opts: ParticipantOptions = {
      startConferenceOnEnter: noun.startConferenceOnEnter,
      endConferenceOnExit: noun.endConferenceOnExit,
      muted: noun.muted,
    };
    if (noun.label !== null) opts.label = noun.label;
    return this.join(conf, call, opts);
  }

  /** Puts `call` into `conf` (participant-join, then conference-start when it starts). */
  join(conf: ConferenceRecord, call: CallRecord, opts: ParticipantOptions): ParticipantRecord {
    if (conf.status === 'completed') throw new InvalidInputError(`conference ${conf.sid} is completed`);
    if (call.status !== 'in-progress') throw new InvalidInputError(`call ${call.sid} is ${call.status}`);
    if (call.conferenceSid !== null) throw new InvalidInputError(`call ${call.sid} is already in conference ${call.conferenceSid}`);
    const now = new Date();
    const p = newParticipant(conf, call.sid, opts, now);
    conf.participants.set(call.sid, p);
    call.conferenceSid = conf.sid;
    conf.dateUpdated = now;
    this.#engine.opts.logger.info({ conferenceSid: conf.sid, callSid: call.sid, label: p.label }, 'participant joined');
    this.#callback(conf, 'participant-join', this.#participantParams(p));
    const present = this.connected(conf);
    if (conf.status === 'init' && present.length >= 2 && present.some((x) => x.startConferenceOnEnter)) {
      conf.status = 'in-progress';
      this.#callback(conf, 'conference-start', {});
    }
    this.#emit(conf);
    return p;
  }

  connected(conf: ConferenceRecord): ParticipantRecord[] {
    return [...conf.participants.values()].filter((p) => p.status === 'connected');
  }

  /** A participant's call ended: participant-leave, and the conference may end with it. */
  onCallEnded(call: CallRecord): void {
    this.leave(call, 'participant_hung_up');
  }

  /** The call leaves its conference (hung up, or redirected away); the conference may end with it. */
  leave(call: CallRecord, reason: 'participant_hung_up' | 'participant_updated_via_api'): void {
    const conf = call.conferenceSid === null ? undefined : this.conferences.get(call.conferenceSid);
    const p = conf?.participants.get(call.sid);
    if (conf === undefined || p === undefined || p.status !== 'connected' || conf.status === 'completed') return;
    this.#leave(conf, p, call, reason);
    if (call.status === 'in-progress') call.conferenceSid = null;
    if (p.endConferenceOnExit) this.end(conf, 'participant-with-end-conference-on-exit-left', call.sid);
    else if (this.connected(conf).length === 0) this.end(conf, 'last-participant-left', call.sid);
    else this.#emit(conf);
  }

  /**
   * Ends the conference: every remaining participant's call ends (streams get `stop`),
   * participant-leave for each, then conference-end.
   */
  end(conf: ConferenceRecord, reason: ConferenceEndReason, endingCallSid: string | null): void {
    if (conf.status === 'completed') return;
    conf.status = 'completed';
    conf.reasonConferenceEnded = reason;
    conf.callSidEndingConference = endingCallSid;
    conf.dateUpdated = new Date();
    const leaveReason = reason === 'conference-ended-via-api' ? 'conference_ended_via_api' : 'moderator_ended_conference';
    for (const p of this.connected(conf)) {
      const call = this.#engine.calls.get(p.callSid)!;
      p.status = 'complete';
      p.dateUpdated = conf.dateUpdated;
      // A TwiML call goes on after its <Dial>; the others have nothing left to do.
      if (call.runner !== null) call.conferenceSid = null;
      else this.#engine.hangup(call, 'conference-ended');
      this.#leave(conf, p, call, leaveReason, true);
    }
    this.#engine.opts.logger.info({ conferenceSid: conf.sid, reason, callSidEndingConference: endingCallSid }, 'conference ended');
    const params: Record<string, string> = { ReasonConferenceEnded: reason, Reason: END_REASON_TEXT[reason] };
    if (endingCallSid !== null) {
      params.CallSidEndingConference = endingCallSid;
      const label = conf.participants.get(endingCallSid)?.label;
      if (label) params.ParticipantLabelEndingConference = label;
    }
    this.#callback(conf, 'conference-end', params);
    this.#emit(conf);
  }

  /** Records an announcement (UpdateConference AnnounceUrl); the emulator does not play it. */
  announce(conf: ConferenceRecord, url: string, method: HttpMethod): void {
    conf.announcements.push({ url, method });
    conf.dateUpdated = new Date();
    this.#emit(conf);
  }

  /** What `callSid` hears now (stream-audio.ts MixContext.heardBy). */
  heardBy(callSid: string): readonly CallMedia[] | null | 'silence' {
    const call = this.#engine.calls.get(callSid);
    const conf = call?.conferenceSid == null ? undefined : this.conferences.get(call.conferenceSid);
    const me = conf?.participants.get(callSid);
    if (conf === undefined || me === undefined || me.status !== 'connected') return null;
    // Before the start (and on hold) Twilio plays hold music; the emulator plays silence.
    if (conf.status !== 'in-progress' || me.hold) return 'silence';
    const out: CallMedia[] = [];
    for (const p of conf.participants.values()) {
      if (p.callSid === callSid || p.status !== 'connected' || p.muted || p.hold) continue;
      out.push(this.#engine.calls.get(p.callSid)!.media);
    }
    return out;
  }

  #leave(conf: ConferenceRecord, p: ParticipantRecord, call: CallRecord, reason: string, alreadyMarked = false): void {
    if (!alreadyMarked) {
      p.status = 'complete';
      p.dateUpdated = new Date();
    }
    this.#engine.opts.logger.info({ conferenceSid: conf.sid, callSid: call.sid, reason }, 'participant left');
    this.#callback(conf, 'participant-leave', {
      ...this.#participantParams(p),
      ReasonParticipantLeft: reason,
      ParticipantCallStatus: call.status,
    });
  }

  #participantParams(p: ParticipantRecord): Record<string, string> {
    const params: Record<string, string> = {
      CallSid: p.callSid,
      Muted: String(p.muted),
      Hold: String(p.hold),
      Coaching: String(p.coaching),
      EndConferenceOnExit: String(p.endConferenceOnExit),
      StartConferenceOnEnter: String(p.startConferenceOnEnter),
    };
    if (p.label !== null) params.ParticipantLabel = p.label;
    return params;
  }

  #callback(conf: ConferenceRecord, event: string, extra: Record<string, string>): void {
    if (conf.statusCallback === null || !conf.events.has(SUBSCRIPTION[event] ?? event)) return;
    conf.sequence++;
    this.#callbacks.send({
      kind: 'conference',
      subject: conf.sid,
      event,
      url: conf.statusCallback,
      method: conf.statusCallbackMethod,
      params: {
        AccountSid: conf.accountSid,
        ConferenceSid: conf.sid,
        FriendlyName: conf.friendlyName,
        SequenceNumber: String(conf.sequence),
        Timestamp: rfc2822Callback(new Date()),
        StatusCallbackEvent: event,
        ...extra,
      },
    });
  }

  #emit(conf: ConferenceRecord): void {
    this.#bus.emit('conference', conferenceSnapshot(conf));
  }
}
