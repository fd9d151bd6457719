/** Shared fixture paths and credentials for the emulator suites. */
import { newSid } from '../../../../src/twilio/sids.js';

export const HELLO_WORLD = '/work/shared/fixtures/twilio-captures/hello-world.jsonl';

/** The token of the docs' signature vectors (twilio-protocol.md §8.1). */
export const AUTH_TOKEN = '12345';

export function credentials(): { accountSid: string; authToken: string } {
  return { accountSid: newSid('account'), authToken: AUTH_TOKEN };
}
