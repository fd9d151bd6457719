/** Shared fixture paths and credentials for the emulator suites. */
import { startSim, type Sim } from '../../../src/emulator/index.js';
import { newSid } from '../../../src/twilio/sids.js';
import { startCallbackReceiver, startStreamReceiver, type CallbackReceiver, type StreamReceiver } from './receivers.js';

/** The real capture, vendored under test/fixtures so a clean clone has it. */
export { HELLO_WORLD } from '../../helpers/capture.js';

/** The token of the docs' signature vectors (twilio-protocol.md §8.1). */
export const AUTH_TOKEN = '12345';

export function credentials(): { accountSid: string; authToken: string } {
  return { accountSid: newSid('account'), authToken: AUTH_TOKEN };
}

/** An emulator for test credentials with a media-stream receiver and a callback receiver, all on loopback. */
export interface SimBench {
  sim: Sim;
  rx: StreamReceiver;
  cb: CallbackReceiver;
}

export async function startSimBench(speed: number): Promise<SimBench> {
  return { sim: await startSim({ ...credentials(), speed }), rx: await startStreamReceiver(), cb: await startCallbackReceiver() };
}

export async function closeSimBench(b: SimBench): Promise<void> {
  await b.sim.close();
  await Promise.all([b.rx.close(), b.cb.close()]);
}
