import { describe, expect, it } from 'vitest';
import { parseWavHeader, wavLayout, writeWavHeader } from '../../../src/sinks/recording/wav-header.js';

const hex = (b: Buffer) => b.toString('hex');

describe('writeWavHeader', () => {
  it('writes the canonical 44-byte PCM header', () => {
    const out = Buffer.alloc(64);
    expect(writeWavHeader(out, wavLayout('pcm16', 1), 320)).toBe(44);
    // RIFF 356 WAVE | fmt 16: tag 1, 1 ch, 8000 Hz, 16000 B/s, align 2, 16 bit | data 320
    expect(hex(out.subarray(0, 44))).toBe(
      '52494646' + '64010000' + '57415645' +
        '666d7420' + '10000000' + '0100' + '0100' + '401f0000' + '803e0000' + '0200' + '1000' +
        '64617461' + '40010000',
    );
  });

  it('writes a mu-law stereo header with an 18-byte fmt and a fact chunk', () => {
    const out = Buffer.alloc(64);
    expect(writeWavHeader(out, wavLayout('mulaw', 2), 1000)).toBe(58);
    expect(hex(out.subarray(0, 58))).toBe(
      '52494646' + '1a040000' + '57415645' +
        '666d7420' + '12000000' + '0700' + '0200' + '401f0000' + '803e0000' + '0200' + '0800' + '0000' +
        '66616374' + '04000000' + 'f4010000' +
        '64617461' + 'e8030000',
    );
  });

  it('counts the pad byte of an odd data chunk in the RIFF size only when asked', () => {
    const out = Buffer.alloc(64);
    const layout = wavLayout('mulaw', 1);
    writeWavHeader(out, layout, 101);
    expect(out.readUInt32LE(4)).toBe(50 + 101);
    writeWavHeader(out, layout, 101, true);
    expect(out.readUInt32LE(4)).toBe(50 + 102);
    expect(out.readUInt32LE(54)).toBe(101);
  });

  it('writes every byte of the header whatever the buffer held (headers come from per-layout templates)', () => {
    const reused = Buffer.alloc(64, 0xaa);
    for (const [format, channels, bytes] of [['mulaw', 2, 1000], ['pcm16', 1, 320], ['pcm16', 2, 7], ['mulaw', 1, 0]] as const) {
      const fresh = Buffer.alloc(64);
      const n = writeWavHeader(fresh, wavLayout(format, channels), bytes, true);
      writeWavHeader(reused, wavLayout(format, channels), bytes, true);
      expect(hex(reused.subarray(0, n)), `${format} ${channels}`).toBe(hex(fresh.subarray(0, n)));
      expect(parseWavHeader(reused)).toMatchObject({ channels, dataBytes: bytes });
    }
  });
});

describe('parseWavHeader', () => {
  it('reads back what writeWavHeader wrote', () => {
    for (const [format, channels] of [
      ['pcm16', 1],
      ['pcm16', 2],
      ['mulaw', 1],
      ['mulaw', 2],
    ] as const) {
      const layout = wavLayout(format, channels);
      const out = Buffer.alloc(64);
      writeWavHeader(out, layout, 4000);
      expect(parseWavHeader(out)).toEqual({
        formatTag: format === 'pcm16' ? 1 : 7,
        channels,
        sampleRate: 8000,
        bitsPerSample: format === 'pcm16' ? 16 : 8,
        blockAlign: layout.blockAlign,
        dataOffset: layout.headerBytes,
        dataBytes: 4000,
        factFrames: format === 'pcm16' ? null : 4000 / layout.blockAlign,
      });
    }
  });

  it('returns null for what is not a WAVE header', () => {
    expect(parseWavHeader(Buffer.alloc(44, 0x41))).toBeNull();
    expect(parseWavHeader(Buffer.from('RIFF\0\0\0\0WAVE'))).toBeNull();
    expect(parseWavHeader(new Uint8Array(3))).toBeNull();
  });
});
