import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EVENT, ParsedMessage } from '../../src/twilio/protocol.js';

const hex32 = fc.stringMatching(/^[0-9a-f]{32}$/);
const counterString = fc.nat({ max: 10_000_000 }).map(String);
const base64 = fc.uint8Array({ minLength: 1, maxLength: 400 }).map((b) => Buffer.from(b).toString('base64'));

/** Shuffles an object's keys: Twilio's key order differs between captures. */
function shuffled(entries: [string, unknown][], order: number[]): Record<string, unknown> {
  const keyed = entries.map((e, i) => [order[i % order.length]! + i / 1000, e] as const).sort((a, b) => a[0] - b[0]);
  return Object.fromEntries(keyed.map((k) => k[1]));
}

describe('ParsedMessage properties', () => {
  it('never throws, whatever text it is given', () => {
    const p = new ParsedMessage();
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
        const kind = p.read(text);
        expect(kind).toBeGreaterThanOrEqual(EVENT.INVALID);
        if (kind === EVENT.INVALID) expect(p.reason).not.toBeNull();
      }),
      { numRuns: 3000 },
    );
  });

  it('reads any valid media message exactly, in any key order', () => {
    const p = new ParsedMessage();
    fc.assert(
      fc.property(hex32, counterString, counterString, counterString, fc.constantFrom('inbound', 'outbound'), base64, fc.array(fc.nat(9), { minLength: 4, maxLength: 4 }), (sid, seq, chunk, ts, track, payload, order) => {
        const media = shuffled([['track', track], ['chunk', chunk], ['timestamp', ts], ['payload', payload]], order);
        const msg = shuffled([['event', 'media'], ['sequenceNumber', seq], ['media', media], ['streamSid', 'MZ' + sid]], order.slice().reverse());
        expect(p.read(JSON.stringify(msg))).toBe(EVENT.MEDIA);
        expect([p.streamSid, p.sequenceNumber, p.chunk, p.timestamp, p.track, p.payload]).toEqual(['MZ' + sid, Number(seq), Number(chunk), Number(ts), track, payload]);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a media message when any one field has a wrong type', () => {
    const p = new ParsedMessage();
    // non-negative integers are accepted as counters (some SDKs send numbers), so they are not "wrong"
    const wrong = fc.oneof(fc.constant(null), fc.boolean(), fc.double().filter((d) => !(Number.isSafeInteger(d) && d >= 0)), fc.array(fc.nat(), { maxLength: 2 }), fc.constant({}), fc.string().filter((s) => !/^\d{1,15}$/.test(s)));
    fc.assert(
      fc.property(hex32, fc.constantFrom('sequenceNumber', 'media.chunk', 'media.timestamp', 'media.track', 'media.payload', 'streamSid'), wrong, (sid, field, value) => {
        const msg: Record<string, unknown> = { event: 'media', sequenceNumber: '2', streamSid: 'MZ' + sid, media: { track: 'inbound', chunk: '1', timestamp: '99', payload: '/w==' } };
        if (field.startsWith('media.')) (msg.media as Record<string, unknown>)[field.slice(6)] = value;
        else msg[field] = value;
        // a string payload of any content is structurally valid; base64 is checked later
        fc.pre(!(field === 'media.payload' && typeof value === 'string'));
        fc.pre(!(field === 'media.track' && (value === 'inbound' || value === 'outbound')));
        expect(p.read(JSON.stringify(msg))).toBe(EVENT.INVALID);
        expect(p.field).toBe(field);
      }),
      { numRuns: 2000 },
    );
  });
});
