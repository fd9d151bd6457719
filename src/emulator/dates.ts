/**
 * The three clocks Twilio writes (docs/twilio-protocol.md §10): REST JSON dates in RFC 2822 with a
 * two-digit day, conference callback `Timestamp` in RFC 2822 where the day may be one digit,
 * and stream callback `Timestamp` in ISO 8601 with a nanosecond fraction.
 */

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

function rfc2822With(date: Date, day: string): string {
  const time = `${pad2(date.getUTCHours())}:${pad2(date.getUTCMinutes())}:${pad2(date.getUTCSeconds())}`;
  return `${DAYS[date.getUTCDay()]}, ${day} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${time} +0000`;
}

/** REST resource date, e.g. `Thu, 30 Jul 2015 20:00:00 +0000` (twilio-node parses `ddd, DD MMM YYYY HH:mm:ss [+0000]`). */
export function rfc2822(date: Date): string {
  return rfc2822With(date, pad2(date.getUTCDate()));
}

/** Conference callback `Timestamp`, e.g. `Thu, 1 Jun 2017 20:48:32 +0000`: Twilio does not pad the day here. */
export function rfc2822Callback(date: Date): string {
  return rfc2822With(date, String(date.getUTCDate()));
}

/**
 * Stream callback `Timestamp` in ISO 8601 UTC with nine fraction digits, the shape of a real
 * value (`2024-11-29T00:09:39.602648368Z`). `subMillisecondNanos` (0..999999) fills the digits
 * below the millisecond; a receiver must parse leniently.
 */
export function iso8601Nanos(date: Date, subMillisecondNanos = 0): string {
  const iso = date.toISOString(); // 2024-11-29T00:09:39.602Z
  const sub = Math.max(0, Math.min(999_999, Math.floor(subMillisecondNanos)));
  return iso.slice(0, -1) + String(sub).padStart(6, '0') + 'Z';
}
