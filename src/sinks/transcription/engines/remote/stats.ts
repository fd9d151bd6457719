/**
 * Counters of a remote speech engine (deepgram, vosk), shared by all its sessions and read by
 * the gateway's metrics at scrape time as `streamgate_asr_*{engine}` (plain numbers, nothing
 * computed per frame).
 */
export interface RemoteAsrStats {
  /** WebSocket connections opened to the service (first ones and reconnections). */
  connections: number;
  /** Connections opened again after one dropped, failed or stalled mid-call. */
  reconnects: number;
  /** 8 kHz samples sent a second time after a reconnection (replay). */
  replayedSamples: number;
  /** 8 kHz samples never recognised: dropped by backpressure or older than the replay window. */
  droppedSamples: number;
  /** Handshakes refused with 401/403 (one per stream: not retried). */
  authFailures: number;
  /** Handshakes refused for bad configuration (400, or another 4xx): not retried. */
  configFailures: number;
  /** Messages from the service that were malformed or out of bounds (ignored). */
  protocolErrors: number;
  /** Connections given up on because the service answered nothing while audio flowed. */
  stalls: number;
}

export function createRemoteAsrStats(): RemoteAsrStats {
  return { connections: 0, reconnects: 0, replayedSamples: 0, droppedSamples: 0, authFailures: 0, configFailures: 0, protocolErrors: 0, stalls: 0 };
}
