import { describe, expect, it } from 'vitest';
import { decodeBase64Into } from '../../src/twilio/base64.js';
import { EVENT, ParsedMessage, counter } from '../../src/twilio/protocol.js';
import { captureLines } from '../helpers/capture.js';
import { ids, media, start, tone } from '../helpers/messages.js';

describe('ParsedMessage', () => {
  it('reads every message of the real capture', () => {
    const p = new ParsedMessage();
    const kinds = captureLines().map((l) => p.read(l));
    expect(kinds[0]).toBe(EVENT.CONNECTED);
    expect(kinds[1]).toBe(EVENT.START);
    expect(kinds.filter((k) => k === EVENT.MEDIA)).toHaveLength(363);
    expect(kinds.at(-1)).toBe(EVENT.STOP);
  });

  it('reads fields by name whatever their order, counters as strings', () => {
    const p = new ParsedMessage();
    const s = ids();
    const msg = `{"streamSid":"${s.streamSid}","media":{"payload":"/w==","timestamp":"120","chunk":"7","track":"outbound"},"sequenceNumber":"9","event":"media"}`;
    expect(p.read(msg)).toBe(EVENT.MEDIA);
    expect([p.sequenceNumber, p.chunk, p.timestamp, p.track, p.payload]).toEqual([9, 7, 120, 'outbound', '/w==']);
  });

  it('accepts connected versions 0.2.0 and 1.0.0', () => {
    const p = new ParsedMessage();
    for (const v of ['0.2.0', '1.0.0']) {
      expect(p.read(JSON.stringify({ event: 'connected', protocol: 'Call', version: v }))).toBe(EVENT.CONNECTED);
      expect(p.version).toBe(v);
    }
  });

  const s = ids();
  const good = JSON.parse(media(s, 2, 1, 99, tone(1)));
  const cases: [string, unknown, string, string | null][] = [
    ['not JSON', '{"event":', 'invalid_json', null],
    ['an array', '[1,2]', 'not_an_object', null],
    ['no event', '{}', 'missing_field', 'event'],
    ['event not a string', '{"event":5}', 'invalid_field', 'event'],
    ['sequenceNumber missing', { ...good, sequenceNumber: undefined }, 'missing_field', 'sequenceNumber'],
    ['sequenceNumber not a number', { ...good, sequenceNumber: 'x1' }, 'invalid_field', 'sequenceNumber'],
    ['sequenceNumber negative', { ...good, sequenceNumber: -3 }, 'invalid_field', 'sequenceNumber'],
    ['streamSid malformed', { ...good, streamSid: 'MZ../../etc' }, 'invalid_sid', 'streamSid'],
    ['media missing', { ...good, media: undefined }, 'missing_field', 'media'],
    ['track wrong', { ...good, media: { ...good.media, track: 'inbound_track' } }, 'invalid_field', 'media.track'],
    ['chunk a boolean', { ...good, media: { ...good.media, chunk: true } }, 'invalid_field', 'media.chunk'],
    ['timestamp missing', { ...good, media: { ...good.media, timestamp: undefined } }, 'missing_field', 'media.timestamp'],
    ['payload a number', { ...good, media: { ...good.media, payload: 12 } }, 'invalid_field', 'media.payload'],
  ];
  it.each(cases)('refuses a message with %s', (_name, msg, reason, field) => {
    const p = new ParsedMessage();
    expect(p.read(typeof msg === 'string' ? msg : JSON.stringify(msg))).toBe(EVENT.INVALID);
    expect(p.reason).toBe(reason);
    expect(p.field).toBe(field);
  });

  it('refuses a start with a bad SID, track or media format', () => {
    const p = new ParsedMessage();
    const base = JSON.parse(start(s));
    const bad = [
      [{ ...base, start: { ...base.start, callSid: 'CA123' } }, 'invalid_sid'],
      [{ ...base, start: { ...base.start, tracks: ['inbound', 'inbound'] } }, 'invalid_field'],
      [{ ...base, start: { ...base.start, tracks: [] } }, 'invalid_field'],
      [{ ...base, start: { ...base.start, mediaFormat: { encoding: 'audio/x-alaw', sampleRate: 8000, channels: 1 } } }, 'unsupported_media_format'],
      [{ ...base, start: { ...base.start, customParameters: { a: 1 } } }, 'invalid_field'],
      [{ ...base, start: { ...base.start, streamSid: ids().streamSid } }, 'invalid_field'],
    ] as const;
    for (const [msg, reason] of bad) {
      expect(p.read(JSON.stringify(msg))).toBe(EVENT.INVALID);
      expect(p.reason).toBe(reason);
    }
  });

  it('treats an unknown event as UNKNOWN, not invalid', () => {
    const p = new ParsedMessage();
    expect(p.read('{"event":"transcription","x":1}')).toBe(EVENT.UNKNOWN);
    expect(p.eventName).toBe('transcription');
  });
});

describe('counter', () => {
  it('parses decimal strings and non-negative integers only', () => {
    expect(counter('0')).toBe(0);
    expect(counter('7339')).toBe(7339);
    expect(counter(12)).toBe(12);
    for (const bad of ['', '-1', '1.5', '1e3', ' 1', '0x10', '1234567890123456', 1.5, -1, null, true, {}]) expect(counter(bad)).toBe(-1);
  });
});

describe('decodeBase64Into', () => {
  it('decodes canonical base64 and refuses the rest', () => {
    const dst = Buffer.alloc(200);
    expect(decodeBase64Into(Buffer.from(tone(3)).toString('base64'), dst)).toBe(160);
    expect(dst.subarray(0, 160).equals(Buffer.from(tone(3)))).toBe(true);
    expect(decodeBase64Into('/w==', dst)).toBe(1);
    expect(decodeBase64Into('abc', dst)).toBe(-1);
    expect(decodeBase64Into('ab!d', dst)).toBe(-1);
    expect(decodeBase64Into('ab d', dst)).toBe(-1);
    expect(decodeBase64Into(Buffer.alloc(300).toString('base64'), dst)).toBe(-1);
  });
});
