/**
 * For the conditions suites: a WebSocket client that streams loud or silent frames into a real
 * gateway on the media clock, and a harness of the Twilio emulator + gateway (with the level
 * sink) + conditions engine, all on loopback sockets.
 */
import WebSocket from 'ws';
import { ConditionsEngine, type ConditionsEngineOptions } from '../../src/conditions/engine.js';
import { parseRules } from '../../src/conditions/rules.js';
import type { AuditEntry } from '../../src/conditions/types.js';
import { EventBus } from '../../src/core/events.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { createLevelSinkFactory } from '../../src/sinks/level/level-sink.js';
import type { Track } from '../../src/core/stream.js';
import { startSim, type Sim } from '../../src/emulator/index.js';
import { TwilioRestClient } from '../../src/twilio/rest-client.js';
import { newSid } from '../../src/twilio/sids.js';
import { startTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { connected, ids, media, start, stop, type StreamIds } from '../helpers/messages.js';
import { captureLog } from '../helpers/log.js';

/** A full-scale frame (mu-law 0x00/0x80 alternate: ±32124, −0.17 dBFS). */
export const LOUD = new Uint8Array(160).map((_, i) => (i % 2 === 0 ? 0x00 : 0x80));
/** Digital silence (mu-law 0xFF decodes to 0). */
export const QUIET = new Uint8Array(160).fill(0xff);

/** One Media Stream driven by the test: 20 ms frames, a stream-wide sequence number, a media clock per track. */
export class TestStream {
  readonly ids: StreamIds;
  readonly ws: WebSocket;
  #seq = 1;
  readonly #chunk = { inbound: 0, outbound: 0 };
  readonly #clock = { inbound: 0, outbound: 0 };

  private constructor(ws: WebSocket, s: StreamIds) {
    this.ws = ws;
    this.ids = s;
  }

  /** `firstTimestampMs`: where the media clock starts (Twilio's first frames say 99..171). */
  static async open(url: string, opts: { conferenceSid?: string; tracks?: Track[]; firstTimestampMs?: number } = {}): Promise<TestStream> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const s = new TestStream(ws, ids());
    s.#clock.inbound = s.#clock.outbound = opts.firstTimestampMs ?? 0;
    ws.send(connected());
    const customParameters: Record<string, string> = opts.conferenceSid === undefined ? {} : { conferenceSid: opts.conferenceSid };
    ws.send(start(s.ids, { tracks: opts.tracks ?? ['inbound'], customParameters, seq: s.#seq++ }));
    return s;
  }

  get streamSid(): string {
    return this.ids.streamSid;
  }

  /** Media time sent so far on `track`, ms. */
  clock(track: Track = 'inbound'): number {
    return this.#clock[track];
  }

  /** Sends `ms` of `frame` (in 20 ms frames) on `track`. */
  send(frame: Uint8Array, ms: number, track: Track = 'inbound'): void {
    for (let t = 0; t < ms; t += 20) {
      this.ws.send(media(this.ids, ++this.#seq, ++this.#chunk[track], this.#clock[track], frame, track));
      this.#clock[track] += 20;
    }
  }

  dtmf(digit: string): void {
    this.ws.send(JSON.stringify({ event: 'dtmf', streamSid: this.ids.streamSid, sequenceNumber: String(++this.#seq), dtmf: { track: 'inbound_track', digit } }));
  }

  stop(): void {
    this.ws.send(stop(this.ids, ++this.#seq));
  }

  close(): void {
    this.ws.close(1000);
  }
}

/**
 * Resolves once the level meter's progress report for the frames up to media time `ms` arrived:
 * it reports every 250 ms of media, so the last report for those frames lies in (ms − 250, ms].
 */
export function progressReached(bus: EventBus, streamSid: string, ms: number, track: Track = 'inbound', timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`media progress ${ms} ms not reached`));
    }, timeoutMs);
    const off = bus.on('media-progress', (info, t, atMs) => {
      if (info.streamSid === streamSid && t === track && atMs > ms - 250) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
}

export interface Harness {
  sim: Sim;
  tg: TestGateway;
  engine: ConditionsEngine;
  client: TwilioRestClient;
  /** A conference the emulator is running (two silent participants). */
  conference(): Promise<string>;
  /** UpdateConference / UpdateStream requests the emulator received. */
  requests(operation?: 'UpdateConference' | 'UpdateStream'): { params: Record<string, string | string[]>; status: number; twilioCode: number | null }[];
  /** Waits for `n` audit entries of a scope and returns them. */
  audit(scope: string, n?: number): Promise<readonly AuditEntry[]>;
  /** Decision log lines (parsed). */
  decisions(): Record<string, unknown>[];
  /**
   * The positive signal behind "nothing happened": another conference ended through the same
   * REST client, answered by the emulator. A request the engine decided on before would have
   * been sent first. (Left out of requests(); the engine's metrics and audit do not see it.)
   */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(
  rulesYaml: string,
  opts: Partial<Omit<ConditionsEngineOptions, 'rules' | 'twilio' | 'bus' | 'log' | 'metrics'>> & { speed?: number } = {},
): Promise<Harness> {
  const accountSid = newSid('account');
  const authToken = 'sim-auth-token';
  const { speed, ...engineOpts } = opts;
  const sim = await startSim({ accountSid, authToken, speed: speed ?? 1 });
  // Built in the app's order: log, metrics, bus, client, sinks, conditions, then the gateway.
  const captured = captureLog();
  const log = captured.log;
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const bus = new EventBus(log);
  const client = new TwilioRestClient({ baseUrl: sim.url, accountSid, username: accountSid, password: authToken, retryBaseMs: 20, observe: metrics.observeTwilio, logger: log });
  const level = createLevelSinkFactory({ bus });
  const engine = new ConditionsEngine({ rules: parseRules(rulesYaml, 'yaml'), twilio: client, bus, log: log.child({ component: 'conditions' }), metrics, ...engineOpts });
  const tg = await startTestGateway({}, { sinkFactories: [level], metrics, bus }, captured);
  tg.gw.onClose(() => engine.close());
  const markers = new Set<string>();
  const harness: Harness = {
    sim,
    tg,
    engine,
    client,
    async conference() {
      return (await sim.createConference({ participants: [{}, {}] })).sid;
    },
    requests(operation) {
      return sim
        .requests({})
        .filter((r) => (operation === undefined ? r.operation === 'UpdateConference' || r.operation === 'UpdateStream' : r.operation === operation))
        .filter((r) => ![...markers].some((sid) => r.path.includes(sid)))
        .map((r) => ({ params: r.params, status: r.status, twilioCode: r.twilioCode }));
    },
    async audit(scope, n = 1) {
      await waitFor(async () => (await engine.audit(scope)).length >= n, 5000, `${n} audit entries for ${scope}`);
      return engine.audit(scope);
    },
    decisions() {
      return tg!.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'conditions decision');
    },
    async settle() {
      const other = await harness.conference();
      markers.add(other);
      await client.updateConference(other, { status: 'completed' });
    },
    async close() {
      await tg!.close();
      await sim.close();
    },
  };
  return harness;
}
