/**
 * The Twilio emulator: a local server that behaves as Twilio does for the REST operations,
 * Media Streams and callbacks streamgate uses, for tests, the demo and load runs.
 *
 * ```ts
 * const sim = await startSim({ accountSid, authToken, speed: 10 });
 * const conf = await sim.createConference({ statusCallback, statusCallbackEvent: 'start end join leave',
 *   participants: [{ audio: 'speech.wav' }, { audio: 'hello-world.jsonl' }] });
 * // …the gateway gets participant-join, calls CreateStream against sim.url, streams flow…
 * await sim.waitForConferenceStatus(conf.sid, 'completed');
 * await sim.close();
 * ```
 */
export { startSim } from './server.js';
export { Sim, type CallbackFilter, type RequestFilter, type SimFaults, type StreamFilter, type WaitOptions } from './sim.js';
export { runSimCli, type SimCliIo } from './cli.js';
export { SimNotFoundError, SimTimeoutError } from './errors.js';
export type { SimEvents } from './events.js';
export { STREAM_ERRORS } from './stream-errors.js';
export { TWILIO_CODES, type TwilioErrorBody } from './rest-errors.js';
export { rfc2822, rfc2822Callback, iso8601Nanos } from './dates.js';
export type * from './types.js';
