import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64Into } from '../../src/twilio/base64.js';
import { readMediaFast } from '../../src/twilio/media-fast-path.js';
import { EVENT, ParsedMessage } from '../../src/twilio/protocol.js';
import { newSid } from '../../src/twilio/sids.js';
import { captureLines } from '../helpers/capture.js';
import { collectingSinkFactory } from '../helpers/collecting-sink.js';
import { replay, startTestGateway } from '../helpers/gateway.js';
import { connected, ids, media, start, stop, tone } from '../helpers/messages.js';

const SID = newSid('stream');
const OTHER_SID = newSid('stream');

/** The fields both paths set for a media message. */
function fields(p: ParsedMessage) {
  return { kind: p.kind, sequenceNumber: p.sequenceNumber, streamSid: p.streamSid, track: p.track, chunk: p.chunk, timestamp: p.timestamp, reason: p.reason, field: p.field };
}

/**
 * The property: for any text, the fast path either declines (-1, fields untouched) or agrees
 * with the strict parser followed by decodeBase64Into: same kind, same fields, same bytes.
 */
function agrees(text: string, sid = SID): boolean {
  const bytes = Buffer.from(text);
  const fast = new ParsedMessage();
  const before = fields(fast);
  const fastDst = Buffer.alloc(512, 0xee);
  const n = readMediaFast(fast, bytes, sid, fastDst);
  // The same text as a range of a larger buffer (how the frame reader passes it), with bytes
  // around it that would change the answer if the range were overrun: the same outcome.
  const inRange = new ParsedMessage();
  const rangeDst = Buffer.alloc(512, 0xee);
  const framed = Buffer.concat([Buffer.from('{"x":"'), bytes, Buffer.from('"}123"}')]);
  expect(readMediaFast(inRange, framed, sid, rangeDst, 6, 6 + bytes.length)).toBe(n);
  expect(fields(inRange)).toEqual(fields(fast));
  expect(rangeDst).toEqual(fastDst);
  if (n < 0) {
    expect(fields(fast)).toEqual(before);
    return false;
  }
  const strict = new ParsedMessage();
  expect(strict.read(text)).toBe(EVENT.MEDIA);
  expect(fields(fast)).toEqual(fields(strict));
  expect(strict.streamSid).toBe(sid);
  const strictDst = Buffer.alloc(512, 0xee);
  expect(decodeBase64Into(strict.payload, strictDst)).toBe(n);
  expect(fastDst.subarray(0, n)).toEqual(strictDst.subarray(0, n));
  return true;
}

// Valid values are weighted up so that a good share of the shaped messages is accepted.
const digits = fc.oneof(
  { arbitrary: fc.nat({ max: 1_000_000 }).map(String), weight: 6 },
  fc.stringMatching(/^[0-9]{1,17}$/),
  fc.constantFrom('', '-1', '1.5', '1e3', ' 1', '0x1', '٣'),
);
const track = fc.oneof({ arbitrary: fc.constantFrom('inbound', 'outbound'), weight: 4 }, fc.constantFrom('inbound_track', 'Inbound', 'out', ''));
const payload = fc.oneof(
  { arbitrary: fc.uint8Array({ minLength: 0, maxLength: 400 }).map((b) => Buffer.from(b).toString('base64')), weight: 4 },
  fc.uint8Array({ minLength: 1, maxLength: 60 }).map((b) => Buffer.from(b).toString('base64url')),
  fc.stringMatching(/^[A-Za-z0-9+/=_\-"\\ ]{0,24}$/),
);
const sid = fc.oneof({ arbitrary: fc.constant(SID), weight: 6 }, fc.constant(OTHER_SID), fc.constant(SID.toLowerCase()), fc.constant(SID.slice(0, -1)));

/** Messages in Twilio's exact shape, with fields drawn from valid and near-valid values. */
const shaped = fc.record({ seq: digits, track, chunk: digits, ts: digits, payload, sid }).map(
  (f) => `{"event":"media","sequenceNumber":"${f.seq}","media":{"track":"${f.track}","chunk":"${f.chunk}","timestamp":"${f.ts}","payload":"${f.payload}"},"streamSid":"${f.sid}"}`,
);

/** A shaped message with one edit (insert, delete or replace) at a random place. */
const mutated = fc.tuple(shaped, fc.nat(), fc.integer({ min: 0, max: 2 }), fc.constantFrom('"', '\\', ' ', ',', '{', '}', ':', '0', 'a', '=', '\u00e9', '\n')).map(([text, at, op, ch]) => {
  const i = at % (text.length + 1);
  if (op === 0) return text.slice(0, i) + ch + text.slice(i);
  if (op === 1) return text.slice(0, i) + text.slice(i + 1);
  return text.slice(0, i) + ch + text.slice(i + 1);
});

describe('readMediaFast', () => {
  it('takes every media message of the real capture and agrees with the strict parser', () => {
    const lines = captureLines();
    const sidOf = (JSON.parse(lines[1]!) as { streamSid: string }).streamSid;
    let taken = 0;
    for (const line of lines) if (agrees(line, sidOf)) taken++;
    expect(taken).toBe(363);
  });

  it('agrees with read() + decodeBase64Into, or declines, for Twilio-shaped messages', () => {
    let taken = 0;
    let declined = 0;
    fc.assert(
      fc.property(shaped, (text) => {
        if (agrees(text)) taken++;
        else declined++;
      }),
      { numRuns: 3000 },
    );
    // Both outcomes are exercised, so the agreement is not vacuous.
    expect(taken).toBeGreaterThan(100);
    expect(declined).toBeGreaterThan(100);
  });

  it('agrees or declines for messages one edit away from the shape', () => {
    fc.assert(fc.property(mutated, (text) => void agrees(text)), { numRuns: 5000 });
  });

  it('agrees or declines for arbitrary JSON and arbitrary strings', () => {
    fc.assert(fc.property(fc.oneof(fc.json(), fc.string(), fc.string({ unit: 'binary' })), (text) => void agrees(text)), { numRuns: 2000 });
  });

  it('takes canonical media messages (so the fast path is really used)', () => {
    const canonical = fc.record({
      seq: fc.integer({ min: 0, max: 2 ** 40 }),
      track: fc.constantFrom('inbound', 'outbound'),
      chunk: fc.integer({ min: 0, max: 2 ** 40 }),
      ts: fc.integer({ min: 0, max: 2 ** 40 }),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 384 }),
    });
    fc.assert(
      fc.property(canonical, (f) => {
        const text = JSON.stringify({ event: 'media', sequenceNumber: String(f.seq), media: { track: f.track, chunk: String(f.chunk), timestamp: String(f.ts), payload: Buffer.from(f.bytes).toString('base64') }, streamSid: SID });
        expect(agrees(text)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('declines what the strict parser must judge: other key orders, number counters, a payload that does not fit', () => {
    const p = new ParsedMessage();
    const dst = Buffer.alloc(8);
    const reordered = `{"streamSid":"${SID}","event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"/w=="}}`;
    expect(readMediaFast(p, Buffer.from(reordered), SID, dst)).toBe(-1);
    const numbers = `{"event":"media","sequenceNumber":2,"media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"/w=="},"streamSid":"${SID}"}`;
    expect(readMediaFast(p, Buffer.from(numbers), SID, dst)).toBe(-1);
    const big = `{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"${Buffer.alloc(9).toString('base64')}"},"streamSid":"${SID}"}`;
    expect(readMediaFast(p, Buffer.from(big), SID, dst)).toBe(-1);
    expect(readMediaFast(p, Buffer.from(big), SID, Buffer.alloc(9))).toBe(9);
  });
});

describe('StreamSession with the fast path', () => {
  it('delivers 160-byte frames (fast path) and larger ones (strict path, buffers grown) whole and in order', async () => {
    const sink = collectingSinkFactory();
    const gw = await startTestGateway({ MAX_MESSAGE_BYTES: '16384', LOG_LEVEL: 'error' }, { sinkFactories: [sink] });
    try {
      const s = ids();
      const sizes = [160, 160, 4000, 160, 9000, 160, 1];
      const msgs = [connected(), start(s)];
      let ts = 100;
      sizes.forEach((n, i) => {
        msgs.push(media(s, i + 2, i + 1, ts, tone(i, n)));
        ts += Math.ceil(n / 8);
      });
      msgs.push(stop(s, sizes.length + 2));
      const res = await replay(gw.ws, msgs, { lingerMs: 500 });
      expect(res.closeCode).not.toBe(1007);
      const got = sink.streams[0]!.frames;
      expect(got.map((f) => f.samples)).toEqual(sizes);
      got.forEach((f, i) => expect(Array.from(f.mulaw)).toEqual(Array.from(tone(i, sizes[i]))));
    } finally {
      await gw.close();
    }
  });
});
