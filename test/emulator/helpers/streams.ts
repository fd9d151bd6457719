/** Helpers to start streams through the emulator's REST API and read what arrived. */
import type { Sim } from '../../../src/emulator/index.js';
import type { ReceivedMessage, StreamConnection } from './receivers.js';
import { waitFor } from '../../helpers/wait.js';
import { restCaller, type RestResult } from './rest.js';

/** POSTs CreateStream for `callSid` with `params` (Url required). */
export function createStream(sim: Sim, callSid: string, params: Record<string, string>): Promise<RestResult> {
  return restCaller(sim.url, sim.accountSid, sim.authToken).post(`/2010-04-01/Accounts/${sim.accountSid}/Calls/${callSid}/Streams.json`, params);
}

export function media(conn: StreamConnection): ReceivedMessage[] {
  return conn.messages.filter((m) => m.json.event === 'media');
}

export interface MediaFields {
  sequenceNumber: string;
  track: string;
  chunk: string;
  timestamp: string;
  payload: string;
}

export function mediaFields(m: ReceivedMessage): MediaFields {
  return { sequenceNumber: m.json.sequenceNumber!, ...m.json.media! };
}

/** Resolves once `conn` has received `n` messages matching `pred`. */
export async function waitForMessages(conn: StreamConnection, n: number, pred: (m: ReceivedMessage) => boolean = () => true, timeoutMs = 15_000): Promise<void> {
  await waitFor(() => conn.messages.filter(pred).length >= n, timeoutMs, () => `${n} messages (have ${conn.messages.filter(pred).length})`);
}
