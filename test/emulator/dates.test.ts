import { describe, expect, it } from 'vitest';
import { iso8601Nanos, rfc2822, rfc2822Callback } from '../../src/emulator/dates.js';

describe('dates', () => {
  const d = new Date(Date.UTC(2015, 6, 30, 20, 0, 0));
  const early = new Date(Date.UTC(2017, 5, 1, 20, 48, 32, 602));

  it('writes REST dates as Twilio does', () => {
    expect(rfc2822(d)).toBe('Thu, 30 Jul 2015 20:00:00 +0000');
    expect(rfc2822(early)).toBe('Thu, 01 Jun 2017 20:48:32 +0000');
  });

  it('writes conference callback timestamps with an unpadded day', () => {
    expect(rfc2822Callback(early)).toBe('Thu, 1 Jun 2017 20:48:32 +0000');
  });

  it('writes stream callback timestamps in ISO 8601 with nanoseconds', () => {
    expect(iso8601Nanos(early, 648368)).toBe('2017-06-01T20:48:32.602648368Z');
    expect(iso8601Nanos(early)).toBe('2017-06-01T20:48:32.602000000Z');
    expect(Date.parse(iso8601Nanos(early, 1))).toBe(early.getTime());
  });
});
