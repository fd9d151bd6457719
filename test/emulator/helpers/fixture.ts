/** Shared fixture paths and credentials for the emulator suites. */
import { newSid } from '../../../src/twilio/sids.js';

/** The real capture, vendored under test/fixtures so a clean clone has it. */
export { HELLO_WORLD } from '../../helpers/capture.js';

/** The token of the docs' signature vectors (twilio-protocol.md §8.1). */
export const AUTH_TOKEN = '12345';

export function credentials(): { accountSid: string; authToken: string } {
  return { accountSid: newSid('account'), authToken: AUTH_TOKEN };
}
