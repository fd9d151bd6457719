/**
 * mu-law decode bench: ns per 160-byte frame (one Twilio media payload, 20 ms of audio) and
 * MB/s of mu-law in, for our decoders against the npm decoders people reach for, plus the
 * whole per-message cost of streamgate's media path against the naive one.
 *
 * Each contender is used through its public API as a caller would. Ours: the WebAssembly SIMD
 * decoder the gateway runs (twilio/mulaw-simd.ts) decodes the shared scratch's input region
 * into its output region; the first row counts copying the frame into that region, which the
 * gateway never does (base64 is decoded straight into it), so it is the conservative number
 * and the one the ratio is taken from; a later row is the decode alone. The JS table decoder
 * (twilio/mulaw.ts, the reference and fallback) writes into a buffer the caller owns. All of
 * ours return the frame energy as a by-product. mulaw-js returns a number[]; alawmulaw and
 * g711 return a fresh Int16Array. Same input frames for all (speech-like audio, every code
 * occurs), one loop per contender, rounds interleaved (bench/lib/timing.ts).
 *
 * Row order matters to bench/run.ts and decodeMarkdown: [0] is ours, [1] is mulaw-js.
 */
import { fileURLToPath } from 'node:url';
import alawmulaw from 'alawmulaw';
import g711 from 'g711';
import mulawJs from 'mulaw-js';
import { decodeMulaw } from '../src/twilio/mulaw.js';
import { decodeScratch } from '../src/twilio/mulaw-simd.js';
import { decodeBase64Into } from '../src/twilio/base64.js';
import { readMediaFast } from '../src/twilio/media-fast-path.js';
import { EVENT, ParsedMessage } from '../src/twilio/protocol.js';
import { fmt, mdTable } from './lib/stats.js';
import { timeCases, type CaseResult, type TimedCase } from './lib/timing.js';
import { mediaMessage, newStreamIds, speechLikeFrames } from './lib/twilio-frames.js';

export interface DecodeBenchOptions {
  quick: boolean;
}

export interface DecodeBenchResult {
  decode: CaseResult[];
  message: CaseResult[];
  /** Ratio of mulaw-js's ns/frame to ours. */
  speedupVsMulawJs: number;
  rounds: number;
}

const FRAMES = 64;
const MASK = FRAMES - 1;

function decodeCases(frames: Uint8Array[]): TimedCase[] {
  const out = new Int16Array(160);
  const scratch = decodeScratch;
  if (scratch.kind !== 'wasm-simd') process.stderr.write('mulaw-decode bench: no WebAssembly SIMD here; the scratch rows run the JS table\n');
  return [
    {
      name: `streamgate ${scratch.kind} (frame copied into the scratch + decode)`,
      run(n) {
        const raw = scratch.raw;
        const pcm = scratch.pcm;
        let acc = 0;
        for (let i = 0; i < n; i++) {
          raw.set(frames[i & MASK]!);
          acc += scratch.decode(160) + pcm[i & 127]!;
        }
        return acc;
      },
    },
    {
      name: 'mulaw-js decode',
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += mulawJs.decode(frames[i & MASK]!)[i & 127]!;
        return acc;
      },
    },
    {
      name: `streamgate ${scratch.kind} (decode only: the frame is in the scratch, as base64 leaves it)`,
      run(n) {
        const pcm = scratch.pcm;
        scratch.raw.set(frames[n & MASK]!);
        let acc = 0;
        for (let i = 0; i < n; i++) acc += scratch.decode(160) + pcm[i & 127]!;
        return acc;
      },
    },
    {
      name: 'streamgate decodeMulaw (JS table, into a reused Int16Array)',
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += decodeMulaw(frames[i & MASK]!, 160, out) + out[i & 127]!;
        return acc;
      },
    },
    {
      name: 'alawmulaw mulaw.decode',
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += alawmulaw.mulaw.decode(frames[i & MASK]!)[i & 127]!;
        return acc;
      },
    },
    {
      name: 'g711 ulawToPCM(frame, 16)',
      run(n) {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += g711.ulawToPCM(frames[i & MASK]!, 16)[i & 127]!;
        return acc;
      },
    },
  ];
}

/** The per-message paths, from the Buffer ws hands over to decoded PCM (streamgate's as in stream-session.ts). */
function messageCases(frames: Uint8Array[]): TimedCase[] {
  const ids = newStreamIds();
  const msgs: Buffer[] = [];
  for (let i = 0; i < FRAMES; i++) {
    const seq = 1000 + i;
    msgs.push(Buffer.from(mediaMessage(ids.streamSid, seq, 'inbound', seq - 1, 20_000 + i * 20, Buffer.from(frames[i]!).toString('base64'))));
  }
  const parsed = new ParsedMessage();
  const scratch = decodeScratch;
  const cases: TimedCase[] = [
    {
      name: `streamgate strict: toString + ParsedMessage.read + decodeBase64Into + ${scratch.kind} decode`,
      run(n) {
        const raw = scratch.raw;
        let acc = 0;
        for (let i = 0; i < n; i++) {
          if (parsed.read(msgs[i & MASK]!.toString()) !== EVENT.MEDIA) throw new Error('not media');
          const len = decodeBase64Into(parsed.payload, raw);
          acc += scratch.decode(len) + parsed.sequenceNumber;
        }
        return acc;
      },
    },
  ];
  // The media fast path (src/twilio/media-fast-path.ts).
  cases.push({
    name: `streamgate fast path: readMediaFast (bytes → fields + mu-law) + ${scratch.kind} decode`,
    run(n) {
      const raw = scratch.raw;
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const len = readMediaFast(parsed, msgs[i & MASK]!, ids.streamSid, raw);
        if (len < 0) throw new Error('fast path declined a canonical message');
        acc += scratch.decode(len) + parsed.sequenceNumber;
      }
      return acc;
    },
  });
  cases.push({
    name: 'naive: JSON.parse(toString) + Buffer.from(payload, base64) + alawmulaw decode',
    run(n) {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const m = JSON.parse(msgs[i & MASK]!.toString()) as { media: { payload: string }; sequenceNumber: string };
        const bytes = Buffer.from(m.media.payload, 'base64');
        acc += alawmulaw.mulaw.decode(bytes)[i & 127]! + m.sequenceNumber.length;
      }
      return acc;
    },
  });
  return cases;
}

export function runMulawDecodeBench(opts: DecodeBenchOptions): DecodeBenchResult {
  const frames = speechLikeFrames(FRAMES, 7);
  const timing = opts.quick ? { rounds: 3, roundMs: 5, warmupMs: 30 } : { rounds: 20, roundMs: 40, warmupMs: 300 };
  const decode = timeCases(decodeCases(frames), timing);
  const message = timeCases(messageCases(frames), timing);
  return { decode, message, speedupVsMulawJs: decode[1]!.ns.mean / decode[0]!.ns.mean, rounds: timing.rounds };
}

function vsOurs(ns: number, ours: number): string {
  if (ns >= ours) return `${fmt(ns / ours, 1)}× slower`.replace(/^1\.0× slower$/, '1.0×');
  return `${fmt(ours / ns, 1)}× faster`.replace(/^1\.0× faster$/, '1.0×');
}

export function decodeMarkdown(r: DecodeBenchResult): string {
  const ours = r.decode[0]!.ns.mean;
  const mj = r.decode[1]!.ns.mean;
  const a = mdTable(
    ['decoder (160-byte frame)', 'ns/frame', '±', 'MB/s (mu-law in)', 'vs mulaw-js', 'vs ours'],
    r.decode.map((c) => [c.name, fmt(c.ns.mean, 0), `${fmt(c.ns.tolerancePct, 1)} %`, fmt(160_000 / c.ns.mean, 0), `${fmt(mj / c.ns.mean, 1)}×`, vsOurs(c.ns.mean, ours)]),
  );
  const strict = r.message[0]!.ns.mean;
  const b = mdTable(
    ['per media message (Buffer from ws → 160 PCM samples)', 'ns/message', '±', 'vs streamgate strict'],
    r.message.map((c) => [c.name, fmt(c.ns.mean, 0), `${fmt(c.ns.tolerancePct, 1)} %`, `${fmt(c.ns.mean / strict, 2)}×`]),
  );
  return `${a}\n\n${b}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = runMulawDecodeBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(decodeMarkdown(r) + '\n');
}
