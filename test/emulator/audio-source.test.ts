import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeMulaw, MULAW_TO_PCM } from '../../src/twilio/mulaw.js';
import { isSilent, loadAudio, LoopSource, MulawSource, SILENCE_PAYLOAD, toneSource } from '../../src/emulator/audio-source.js';
import { parseCapture } from '../../src/emulator/capture.js';
import { MixScratch, mixFrames } from '../../src/emulator/mixer.js';
import { resampleTo8k, wavToMulaw } from '../../src/emulator/wav.js';
import { HELLO_WORLD } from './helpers/fixture.js';

/** A RIFF/WAVE file with one fmt and one data chunk. */
function wav(format: number, channels: number, rate: number, bits: number, data: Uint8Array): Uint8Array {
  const out = Buffer.alloc(44 + data.length + (data.length & 1));
  out.write('RIFF', 0);
  out.writeUInt32LE(out.length - 8, 4);
  out.write('WAVEfmt ', 8);
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(format, 20);
  out.writeUInt16LE(channels, 22);
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE((rate * channels * bits) / 8, 28);
  out.writeUInt16LE((channels * bits) / 8, 32);
  out.writeUInt16LE(bits, 34);
  out.write('data', 36);
  out.writeUInt32LE(data.length, 40);
  out.set(data, 44);
  return out;
}

function pcm16(samples: number[]): Uint8Array {
  const b = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => b.writeInt16LE(s, i * 2));
  return b;
}

const ramp = Array.from({ length: 400 }, (_, i) => Math.round(Math.sin(i / 7) * 12000));

describe('wav decoding', () => {
  it('encodes 8 kHz mono PCM16 sample for sample', () => {
    expect(wavToMulaw(wav(1, 1, 8000, 16, pcm16(ramp)))).toEqual(encodeMulaw(Int16Array.from(ramp)));
  });

  it('passes 8 kHz mono mu-law through untouched', () => {
    const bytes = Uint8Array.from({ length: 321 }, (_, i) => (i * 37) & 0xff);
    expect(wavToMulaw(wav(7, 1, 8000, 8, bytes))).toEqual(bytes);
  });

  it('mixes stereo down and resamples 16 kHz to 8 kHz', () => {
    const stereo: number[] = [];
    for (const s of ramp) stereo.push(s, s);
    const out = wavToMulaw(wav(1, 2, 16000, 16, pcm16(stereo)));
    expect(out).toHaveLength(200);
    // Each output sample averages two input samples.
    const expected = Int16Array.from({ length: 200 }, (_, i) => Math.round((ramp[2 * i]! + ramp[2 * i + 1]!) / 2));
    expect(out).toEqual(encodeMulaw(expected));
  });

  it('upsamples by interpolation', () => {
    expect(Array.from(resampleTo8k(Int16Array.from([0, 100, 200]), 4000))).toEqual([0, 50, 100, 150, 200, 200]);
  });

  it('decodes A-law, 8-bit PCM and float32', () => {
    expect(wavToMulaw(wav(6, 1, 8000, 8, Uint8Array.from([0xd5, 0x55])))).toHaveLength(2);
    expect(wavToMulaw(wav(1, 1, 8000, 8, Uint8Array.from([128, 255, 0])))).toEqual(encodeMulaw(Int16Array.from([0, 127 << 8, -128 << 8])));
    const f = Buffer.alloc(8);
    f.writeFloatLE(0.5, 0);
    f.writeFloatLE(-1, 4);
    expect(wavToMulaw(wav(3, 1, 8000, 32, f))).toEqual(encodeMulaw(Int16Array.from([16384, -32767])));
  });

  it('refuses what it cannot read', () => {
    expect(() => wavToMulaw(Buffer.from('not a wav file at all'))).toThrow(/RIFF/);
    expect(() => wavToMulaw(wav(2, 1, 8000, 4, Uint8Array.from([1, 2])))).toThrow(/unsupported/);
  });
});

describe('audio sources', () => {
  it('cuts mu-law into 160-byte frames and pads the last with silence', () => {
    const src = new MulawSource(new Uint8Array(200).fill(0x10), 'x');
    expect(src.frameCount).toBe(2);
    expect(src.bytes(1).subarray(0, 40)).toEqual(new Uint8Array(40).fill(0x10));
    expect(src.bytes(1).subarray(40)).toEqual(new Uint8Array(120).fill(0xff));
    expect(src.payload(0)).toBe(Buffer.from(src.bytes(0)).toString('base64'));
    expect(src.offsetMs(3)).toBe(60);
  });

  it('keeps a capture exactly: payload strings and timestamps', async () => {
    const src = await loadAudio(HELLO_WORLD);
    expect(src.frameCount).toBe(363);
    expect(src.firstTimestampMs).toBe(99);
    expect(src.offsetMs(362)).toBe(7339 - 99);
    expect(src.payload(362)).toBe(SILENCE_PAYLOAD);
    expect(src.bytes(0)).toHaveLength(160);
  });

  it('parses only media lines of a capture, and refuses broken ones', () => {
    const frames = parseCapture(
      [
        '{"event":"connected","protocol":"Call","version":"0.2.0"}',
        '{"event":"media","media":{"track":"outbound","chunk":"1","timestamp":"5","payload":"//8="}}',
        '',
      ].join('\n'),
    );
    expect(frames).toEqual({ track: 'outbound', payloads: ['//8='], timestamps: [5] });
    expect(() => parseCapture('{"event":"media","media":{"payload":1}}')).toThrow(/string payload/);
    expect(() => parseCapture('nope')).toThrow(/not JSON/);
    expect(() => parseCapture('{"event":"connected"}')).toThrow(/no media/);
  });

  it('loads raw .ulaw files, loops, and refuses unknown extensions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-audio-'));
    const raw = join(dir, 'a.ulaw');
    writeFileSync(raw, new Uint8Array(320).fill(0x22));
    const src = await loadAudio(raw, true);
    expect(src).toBeInstanceOf(LoopSource);
    expect(src.frameCount).toBe(Infinity);
    expect(src.offsetMs(5)).toBe(100);
    expect(src.bytes(5)).toEqual(new Uint8Array(160).fill(0x22));
    writeFileSync(join(dir, 'a.mp3'), 'x');
    await expect(loadAudio(join(dir, 'a.mp3'))).rejects.toThrow(/unknown audio file type/);
    expect((await loadAudio(undefined)).frameCount).toBe(Infinity);
    expect((await loadAudio({ type: 'silence', ms: 50 })).frameCount).toBe(3);
  });

  it('tells silence from sound', () => {
    expect(isSilent(new Uint8Array(160).fill(0xff))).toBe(true);
    expect(isSilent(Uint8Array.from([0xff, 0x7f]))).toBe(true);
    expect(isSilent(toneSource(440, 20).bytes(0))).toBe(false);
  });
});

describe('mixFrames', () => {
  it('passes one frame through, plays silence for none, and sums two with clipping', () => {
    const scratch = new MixScratch();
    const a = toneSource(440, 20, 0.9).bytes(0);
    const b = toneSource(440, 20, 0.9).bytes(0);
    expect(mixFrames([a], scratch)).toBe(a);
    expect(isSilent(mixFrames([], scratch))).toBe(true);
    const mixed = mixFrames([a, b], scratch);
    for (let i = 0; i < 160; i++) {
      const sum = MULAW_TO_PCM[a[i]!]! + MULAW_TO_PCM[b[i]!]!;
      const clipped = Math.max(-32768, Math.min(32767, sum));
      expect(mixed[i]).toBe(encodeMulaw(Int16Array.of(clipped))[0]);
    }
  });
});

describe('AudioCache', () => {
  it('decodes a file once and again when it changes', async () => {
    const { AudioCache } = await import('../../src/emulator/audio-cache.js');
    const dir = mkdtempSync(join(tmpdir(), 'sim-cache-'));
    const raw = join(dir, 'a.ulaw');
    writeFileSync(raw, new Uint8Array(320).fill(0x22));
    const cache = new AudioCache();
    const a = await cache.load(raw);
    expect(await cache.load({ type: 'file', path: raw })).toBe(a);
    expect(await cache.load(raw, true)).not.toBe(a);
    writeFileSync(raw, new Uint8Array(480).fill(0x22));
    const b = await cache.load(raw);
    expect(b).not.toBe(a);
    expect(b.frameCount).toBe(3);
    await expect(cache.load(join(dir, 'missing.ulaw'))).rejects.toThrow(/ENOENT/);
  });
});
