import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/events.js';
import { createLogger } from '../../src/gateway/logger.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { StreamSession } from '../../src/gateway/media/stream-session.js';
import type { SinkFactory } from '../../src/sinks/sink.js';
import { connected, ids, media, start, stop } from '../helpers/messages.js';

/** A session whose one sink logs through its context when a frame arrives and when it closes. */
function harness(level: string) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(level, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const sink: SinkFactory = {
    name: 'talker',
    open: (_info, ctx) => ({
      name: 'talker',
      accept: () => ctx.log.warn('sink saw a frame'),
      close: async () => void ctx.log.warn('sink closed'),
    }),
  };
  let ended = false;
  const session = new StreamSession({
    log,
    metrics: new GatewayMetrics({ defaultMetrics: false }),
    bus: new EventBus(log),
    sinkFactories: [sink],
    maxFrameBytes: 4096,
    checkStart: null,
    closeSocket: () => undefined,
    onStarted: () => undefined,
    onStopped: () => undefined,
    onEnded: () => void (ended = true),
  });
  return { session, lines, isEnded: () => ended };
}

describe('StreamSession log lines', () => {
  for (const level of ['info', 'warn']) {
    it(`carry the stream's streamSid and callSid (LOG_LEVEL=${level}), from the session and from its sinks`, async () => {
      const { session, lines, isEnded } = harness(level);
      const s = ids();
      session.onText(connected(), performance.now());
      session.onText(start(s, { seq: 1, customParameters: { sgToken: 'secret-token' } }), performance.now());
      session.onText(media(s, 2, 1, 0, new Uint8Array(160).fill(0xff)), performance.now());
      session.onText(stop(s, 3), performance.now());
      await session.ending;
      expect(isEnded()).toBe(true);
      const msgs = lines.map((l) => l.msg);
      const want = level === 'info' ? ['stream started', 'sink saw a frame', 'sink closed', 'stream ended'] : ['sink saw a frame', 'sink closed'];
      expect(msgs).toEqual(want);
      for (const l of lines) expect(l, String(l.msg)).toMatchObject({ streamSid: s.streamSid, callSid: s.callSid });
      if (level === 'info') expect(lines[3]).toMatchObject({ outcome: 'stopped', frames: 1 });
      expect(JSON.stringify(lines)).not.toContain('secret-token');
    });
  }
});
