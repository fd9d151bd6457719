/** Real Twilio captures and an independent G.711 decoder, for tests. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const HELLO_WORLD = fileURLToPath(new URL('../fixtures/twilio-captures/hello-world.jsonl', import.meta.url));

/** The capture's lines (one JSON message each), exactly as recorded. */
export function captureLines(path = HELLO_WORLD): string[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
}

/** ITU G.711 mu-law expansion, written from the formula (docs/twilio-protocol.md §2.3), not from our table. */
export function g711Decode(code: number): number {
  const v = ~code & 0xff;
  const sign = v & 0x80;
  const exponent = (v >> 4) & 7;
  const mantissa = v & 0x0f;
  const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return (sign ? -magnitude : magnitude) | 0; // | 0: a 16-bit sample has no negative zero
}

export function decodePayloads(lines: string[], track = 'inbound'): Int16Array {
  const chunks: number[] = [];
  for (const line of lines) {
    const m = JSON.parse(line);
    if (m.event !== 'media' || m.media.track !== track) continue;
    for (const b of Buffer.from(m.media.payload, 'base64')) chunks.push(g711Decode(b));
  }
  return Int16Array.from(chunks);
}
