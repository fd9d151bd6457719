/**
 * WAV decoding for participant audio: RIFF/WAVE with PCM (8/16/24/32-bit), IEEE float32,
 * G.711 mu-law or A-law, any rate and channel count, turned into what Twilio carries:
 * 8 kHz mono mu-law. An 8 kHz mono mu-law file passes through untouched (bit-exact).
 */
import { InvalidInputError } from '../errors.js';
import { encodeMulaw, MULAW_TO_PCM } from '../twilio/mulaw.js';

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_ALAW = 6;
const FORMAT_MULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;

/** Twilio's media format. */
export const TARGET_RATE = 8000;

interface WavFormat {
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
}

/** Decodes a WAV file into 8 kHz mono mu-law bytes. */
export function wavToMulaw(file: Uint8Array, name = 'WAV'): Uint8Array {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.byteLength < 12 || ascii(file, 0, 4) !== 'RIFF' || ascii(file, 8, 4) !== 'WAVE') {
    throw new InvalidInputError(`${name}: not a RIFF/WAVE file`);
  }
  let fmt: WavFormat | null = null;
  let data: Uint8Array | null = null;
  let at = 12;
  while (at + 8 <= file.byteLength) {
    const id = ascii(file, at, 4);
    // Streaming writers leave 0xFFFFFFFF or a wrong size in the data chunk; clamp to the file.
    const size = Math.min(view.getUint32(at + 4, true), file.byteLength - at - 8);
    const body = at + 8;
    if (id === 'fmt ') fmt = readFormat(view, body, size, name);
    else if (id === 'data') data = file.subarray(body, body + size);
    at = body + size + (size & 1); // chunks are padded to an even length
  }
  if (fmt === null) throw new InvalidInputError(`${name}: no fmt chunk`);
  if (data === null) throw new InvalidInputError(`${name}: no data chunk`);

  if (fmt.format === FORMAT_MULAW && fmt.channels === 1 && fmt.sampleRate === TARGET_RATE) {
    return Uint8Array.from(data);
  }
  const mono = toMonoPcm(data, fmt, name);
  return encodeMulaw(resampleTo8k(mono, fmt.sampleRate));
}

function readFormat(view: DataView, at: number, size: number, name: string): WavFormat {
  if (size < 16) throw new InvalidInputError(`${name}: fmt chunk too short`);
  let format = view.getUint16(at, true);
  const channels = view.getUint16(at + 2, true);
  const sampleRate = view.getUint32(at + 4, true);
  const bitsPerSample = view.getUint16(at + 14, true);
  // WAVE_FORMAT_EXTENSIBLE keeps the real format code in the first two bytes of the GUID.
  if (format === FORMAT_EXTENSIBLE && size >= 26) format = view.getUint16(at + 24, true);
  if (channels < 1 || sampleRate < 1) throw new InvalidInputError(`${name}: bad channel count or sample rate`);
  return { format, channels, sampleRate, bitsPerSample };
}

/** Decodes any supported sample format and averages the channels. */
function toMonoPcm(data: Uint8Array, fmt: WavFormat, name: string): Int16Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const bytes = Math.ceil(fmt.bitsPerSample / 8);
  const read = sampleReader(fmt, view, name);
  const frameBytes = bytes * fmt.channels;
  const frames = Math.floor(data.byteLength / frameBytes);
  const out = new Int16Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < fmt.channels; c++) sum += read(f * frameBytes + c * bytes);
    out[f] = clamp16(Math.round(sum / fmt.channels));
  }
  return out;
}

function sampleReader(fmt: WavFormat, view: DataView, name: string): (offset: number) => number {
  const bits = fmt.bitsPerSample;
  if (fmt.format === FORMAT_PCM) {
    if (bits === 8) return (o) => (view.getUint8(o) - 128) << 8;
    if (bits === 16) return (o) => view.getInt16(o, true);
    if (bits === 24) return (o) => ((view.getUint8(o + 2) << 24) | (view.getUint8(o + 1) << 16) | (view.getUint8(o) << 8)) >> 16;
    if (bits === 32) return (o) => view.getInt32(o, true) >> 16;
  } else if (fmt.format === FORMAT_FLOAT && bits === 32) {
    return (o) => view.getFloat32(o, true) * 32767;
  } else if (fmt.format === FORMAT_MULAW && bits === 8) {
    return (o) => MULAW_TO_PCM[view.getUint8(o)]!;
  } else if (fmt.format === FORMAT_ALAW && bits === 8) {
    return (o) => alawToPcm(view.getUint8(o));
  }
  throw new InvalidInputError(`${name}: unsupported WAV format ${fmt.format} with ${bits} bits per sample`);
}

/** ITU G.711 A-law decode. */
function alawToPcm(code: number): number {
  const a = code ^ 0x55;
  const exponent = (a >> 4) & 7;
  const mantissa = a & 0x0f;
  let mag = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  if ((a & 0x80) === 0) mag = -mag;
  return mag;
}

/**
 * Resamples to 8 kHz. Downsampling averages the input samples under each output sample (a box
 * filter: crude, but it keeps speech intelligible and needs no filter design); upsampling
 * interpolates linearly.
 */
export function resampleTo8k(input: Int16Array, rate: number): Int16Array {
  if (rate === TARGET_RATE) return input;
  const ratio = rate / TARGET_RATE;
  const n = Math.floor(input.length / ratio);
  const out = new Int16Array(n);
  if (ratio > 1) {
    for (let i = 0; i < n; i++) {
      const from = Math.floor(i * ratio);
      const to = Math.min(input.length, Math.max(from + 1, Math.floor((i + 1) * ratio)));
      let sum = 0;
      for (let j = from; j < to; j++) sum += input[j]!;
      out[i] = Math.round(sum / (to - from));
    }
  } else {
    for (let i = 0; i < n; i++) {
      const pos = i * ratio;
      const j = Math.floor(pos);
      const frac = pos - j;
      const a = input[j]!;
      const b = input[Math.min(j + 1, input.length - 1)]!;
      out[i] = Math.round(a + (b - a) * frac);
    }
  }
  return out;
}

function clamp16(v: number): number {
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

function ascii(buf: Uint8Array, at: number, len: number): string {
  return String.fromCharCode(...buf.subarray(at, at + len));
}
