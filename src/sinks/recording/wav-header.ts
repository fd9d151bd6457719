/**
 * RIFF/WAVE headers for recordings: 16-bit linear PCM or G.711 mu-law, 8 kHz, mono or stereo.
 *
 * The layouts are fixed so a header can be rewritten in place at any time (every flush patches
 * the sizes, recovery rewrites it from the file length):
 *
 *   pcm16 (44 bytes)                         mulaw (58 bytes)
 *   0  "RIFF" <riffSize> "WAVE"              0  "RIFF" <riffSize> "WAVE"
 *   12 "fmt " 16  tag=1 ch rate byteRate     12 "fmt " 18  tag=7 ch rate byteRate
 *      blockAlign bits=16                       blockAlign bits=8 cbSize=0
 *   36 "data" <dataSize>                     38 "fact" 4 <sampleFrames>
 *   44 samples…                              50 "data" <dataSize>
 *                                            58 samples…
 *
 * Non-PCM formats need the 18-byte fmt chunk (with cbSize) and a `fact` chunk holding the number
 * of sample frames (Microsoft RIFF spec, "WAVE format categories"); sox and ffmpeg read both.
 */

/** What the recording sink writes: `pcm16` (decoded) or `mulaw` (the wire bytes, G.711). */
export type RecordingFormat = 'pcm16' | 'mulaw';

export const WAVE_FORMAT_PCM = 1;
export const WAVE_FORMAT_MULAW = 7;

/** Twilio Media Streams audio is always 8 kHz (docs/twilio-protocol.md §2.3). */
export const SAMPLE_RATE = 8000;

export const PCM16_HEADER_BYTES = 44;
export const MULAW_HEADER_BYTES = 58;
/** Room for either header; callers preallocate one buffer of this size. */
export const MAX_HEADER_BYTES = MULAW_HEADER_BYTES;

export interface WavLayout {
  readonly format: RecordingFormat;
  readonly channels: 1 | 2;
  /** Header length: sample data starts at this file offset. */
  readonly headerBytes: number;
  /** Bytes per sample of one channel. */
  readonly bytesPerSample: 1 | 2;
  /** Bytes per sample frame (all channels): the unit of the data chunk. */
  readonly blockAlign: number;
}

/** The fixed layout this module writes for `format` with `channels`. */
export function wavLayout(format: RecordingFormat, channels: 1 | 2): WavLayout {
  const bytesPerSample = format === 'pcm16' ? 2 : 1;
  return {
    format,
    channels,
    headerBytes: format === 'pcm16' ? PCM16_HEADER_BYTES : MULAW_HEADER_BYTES,
    bytesPerSample,
    blockAlign: bytesPerSample * channels,
  };
}

/**
 * Writes the header for `dataBytes` bytes of samples into `out` (at offset 0) and returns its
 * length. `padByte` says a pad byte follows an odd-sized data chunk (RIFF chunks are word-aligned),
 * which only a finished file has; it counts in the RIFF size but not in the data size.
 * Everything but the sizes is the same for a layout: it is copied from a template (every stream
 * writes a header at open, at each patch and at close; 500 starting at once wrote 500 from scratch).
 */
export function writeWavHeader(out: Buffer, layout: WavLayout, dataBytes: number, padByte = false): number {
  const { headerBytes, blockAlign } = layout;
  const pad = padByte && (dataBytes & 1) === 1 ? 1 : 0;
  headerTemplate(layout).copy(out, 0);
  out.writeUInt32LE(headerBytes - 8 + dataBytes + pad, 4);
  if (layout.format !== 'pcm16') out.writeUInt32LE(Math.floor(dataBytes / blockAlign), FACT_FRAMES_AT);
  // The data chunk's size is the header's last field in both layouts.
  out.writeUInt32LE(dataBytes, headerBytes - 4);
  return headerBytes;
}

/** The mu-law header's fact chunk: its sample-frame count (patched per header, like every size). */
const FACT_FRAMES_AT = 46;

/** Per format and channel count, the header with every size 0. */
const templates: (Buffer | undefined)[] = [];

function headerTemplate(layout: WavLayout): Buffer {
  const key = (layout.format === 'pcm16' ? 0 : 2) + layout.channels - 1;
  return (templates[key] ??= buildHeaderTemplate(layout));
}

function buildHeaderTemplate(layout: WavLayout): Buffer {
  const { format, channels, headerBytes, blockAlign } = layout;
  const out = Buffer.alloc(headerBytes);
  out.write('RIFF', 0, 'latin1');
  out.write('WAVE', 8, 'latin1');
  out.write('fmt ', 12, 'latin1');
  const pcm = format === 'pcm16';
  out.writeUInt32LE(pcm ? 16 : 18, 16);
  out.writeUInt16LE(pcm ? WAVE_FORMAT_PCM : WAVE_FORMAT_MULAW, 20);
  out.writeUInt16LE(channels, 22);
  out.writeUInt32LE(SAMPLE_RATE, 24);
  out.writeUInt32LE(SAMPLE_RATE * blockAlign, 28);
  out.writeUInt16LE(blockAlign, 32);
  out.writeUInt16LE(pcm ? 16 : 8, 34);
  let at = 36;
  if (!pcm) {
    out.writeUInt16LE(0, 36); // cbSize: no extra format bytes
    out.write('fact', 38, 'latin1');
    out.writeUInt32LE(4, 42);
    at = FACT_FRAMES_AT + 4;
  }
  out.write('data', at, 'latin1');
  return out;
}

/** What {@link parseWavHeader} found. */
export interface ParsedWavHeader {
  readonly formatTag: number;
  readonly channels: number;
  readonly sampleRate: number;
  readonly bitsPerSample: number;
  readonly blockAlign: number;
  /** File offset of the first sample. */
  readonly dataOffset: number;
  /** The data size the header claims (may be wrong in a partial file). */
  readonly dataBytes: number;
  /** The `fact` sample count, when present. */
  readonly factFrames: number | null;
}

/**
 * Reads the chunks of a RIFF/WAVE header from the start of a file. Returns null when `buf` is not
 * a WAVE header or has no `fmt ` and `data` chunk within it. Sizes are reported as written, not
 * checked against the file: recovery uses this to learn the format, then trusts the file length.
 */
export function parseWavHeader(buf: Uint8Array): ParsedWavHeader | null {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 12 || b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'WAVE') return null;
  let fmt: { tag: number; channels: number; rate: number; align: number; bits: number } | null = null;
  let factFrames: number | null = null;
  let at = 12;
  while (at + 8 <= b.length) {
    const id = b.toString('latin1', at, at + 4);
    const size = b.readUInt32LE(at + 4);
    const body = at + 8;
    if (id === 'fmt ' && body + 16 <= b.length) {
      fmt = {
        tag: b.readUInt16LE(body),
        channels: b.readUInt16LE(body + 2),
        rate: b.readUInt32LE(body + 4),
        align: b.readUInt16LE(body + 12),
        bits: b.readUInt16LE(body + 14),
      };
    } else if (id === 'fact' && body + 4 <= b.length) {
      factFrames = b.readUInt32LE(body);
    } else if (id === 'data') {
      if (fmt === null) return null;
      return {
        formatTag: fmt.tag,
        channels: fmt.channels,
        sampleRate: fmt.rate,
        bitsPerSample: fmt.bits,
        blockAlign: fmt.align,
        dataOffset: body,
        dataBytes: size,
        factFrames,
      };
    }
    at = body + size + (size & 1);
  }
  return null;
}
