import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/events.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { CLOSE, StreamSession } from '../../src/gateway/media/stream-session.js';
import { STATE } from '../../src/gateway/media/stream-state.js';
import type { MediaFrame, SinkFactory } from '../../src/sinks/sink.js';
import { MULAW_TO_PCM, decodeMulaw } from '../../src/twilio/mulaw.js';
import { decodeScratch } from '../../src/twilio/mulaw-simd.js';
import { connected, ids, media, start, type StreamIds } from '../helpers/messages.js';

interface Seen {
  samples: number;
  pcm: Int16Array;
  mulaw: Uint8Array;
  energy: number;
}

function harness(maxFrameBytes: number) {
  const frames: Seen[] = [];
  const closed: { code: number; reason: string }[] = [];
  const sink: SinkFactory = {
    name: 'seen',
    open: () => ({
      name: 'seen',
      accept(f: MediaFrame) {
        // The frame is borrowed: copy, and check the views are exactly `samples` long.
        expect(f.pcm.length).toBe(f.samples);
        expect(f.mulaw.length).toBe(f.samples);
        frames.push({ samples: f.samples, pcm: Int16Array.from(f.pcm), mulaw: Uint8Array.from(f.mulaw), energy: f.energy });
      },
      close: async () => undefined,
    }),
  };
  const log = pino({ level: 'silent' });
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const session = new StreamSession({
    log,
    metrics,
    bus: new EventBus(log),
    sinkFactories: [sink],
    maxFrameBytes,
    checkStart: null,
    closeSocket: (code, reason) => closed.push({ code, reason }),
    onStarted: () => undefined,
    onStopped: () => undefined,
    onEnded: () => undefined,
  });
  const s = ids();
  let seq = 1;
  let ts = 0;
  const send = (text: string, bytes = true) => (bytes ? session.onTextBytes(Buffer.from(text), performance.now()) : session.onText(text, performance.now()));
  send(connected());
  send(start(s, { seq: seq++ }));
  expect(session.state).toBe(STATE.STARTED);
  return {
    session,
    frames,
    closed,
    ids: s as StreamIds,
    /** Sends one media message; `fast` false forces the strict parser (onText). */
    media(payload: Uint8Array, fast = true) {
      send(media(s, ++seq, seq, ts, payload), fast);
      ts += Math.ceil(payload.length / 8);
    },
  };
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function expectDecoded(got: Seen, sent: Uint8Array): void {
  expect(got.samples).toBe(sent.length);
  expect(Buffer.from(got.mulaw).equals(Buffer.from(sent))).toBe(true);
  const ref = new Int16Array(sent.length);
  const energy = decodeMulaw(sent, sent.length, ref);
  expect(got.energy).toBe(energy);
  for (let i = 0; i < sent.length; i++) if (got.pcm[i] !== MULAW_TO_PCM[sent[i]!]) expect(got.pcm[i], `sample ${i}`).toBe(ref[i]);
}

describe('StreamSession on the shared decode scratch', () => {
  it('decodes frames of any length, on the fast and the strict path', () => {
    const h = harness(1 << 20);
    const sent: Uint8Array[] = [];
    for (const [i, n] of [160, 1, 15, 16, 17, 161, 159, 160, 320, 1000, 160].entries()) {
      const b = bytes(n, i + 1);
      sent.push(b);
      h.media(b, i % 2 === 0);
    }
    expect(h.closed).toEqual([]);
    expect(h.frames).toHaveLength(sent.length);
    h.frames.forEach((f, i) => expectDecoded(f, sent[i]!));
  });

  it('keeps every session right when one of them grows the scratch', () => {
    const a = harness(1 << 20);
    const b = harness(1 << 20);
    const sentA: Uint8Array[] = [];
    const sentB: Uint8Array[] = [];
    const sendA = (n: number) => {
      const p = bytes(n, sentA.length + 100);
      sentA.push(p);
      a.media(p);
    };
    sendA(160);
    sendA(160);
    const before = decodeScratch.capacity;
    // Bigger than the scratch: the fast path declines it, the strict path reserves and decodes.
    for (const n of [before + 1000, 160, 3 * before + 5]) {
      const p = bytes(n, sentB.length + 200);
      sentB.push(p);
      b.media(p);
      // A's cached views were made before the growth (detached now): it must re-bind.
      sendA(160);
      sendA(161);
    }
    expect(decodeScratch.capacity).toBeGreaterThanOrEqual(3 * before + 5);
    expect(a.closed).toEqual([]);
    expect(b.closed).toEqual([]);
    expect(a.frames).toHaveLength(sentA.length);
    expect(b.frames).toHaveLength(sentB.length);
    a.frames.forEach((f, i) => expectDecoded(f, sentA[i]!));
    b.frames.forEach((f, i) => expectDecoded(f, sentB[i]!));
  });

  for (const fast of [true, false]) {
    it(`takes payloads up to maxFrameBytes and refuses larger ones as invalid_base64 (${fast ? 'fast' : 'strict'} path), though the scratch holds more`, () => {
      decodeScratch.reserve(8192);
      const h = harness(2048);
      const ok = bytes(2048, 5);
      h.media(ok, fast);
      expect(h.closed).toEqual([]);
      expectDecoded(h.frames[0]!, ok);
      h.media(bytes(2049, 6), fast);
      expect(h.closed).toEqual([{ code: CLOSE.INVALID_PAYLOAD, reason: 'invalid_base64' }]);
      expect(h.frames).toHaveLength(1);
    });
  }
});
