/** The Twilio emulator (src/emulator) as tests start it. */
import { startSim, type Sim, type SimOptions } from '../../src/emulator/index.js';
import { newSid } from '../../src/twilio/sids.js';

/** Starts the emulator on 127.0.0.1:0 for a fresh account with a random auth token, unless `opts` names them. */
export function startTestSim(opts: Partial<SimOptions> = {}): Promise<Sim> {
  return startSim({ accountSid: newSid('account'), authToken: newSid('account').slice(2), ...opts });
}
