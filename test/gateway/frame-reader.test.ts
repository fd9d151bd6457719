/**
 * The media socket's frame reader (src/gateway/media/frame-reader.ts) over a real Node stream:
 * every chunk written to the PassThrough arrives as one 'data' event, so each test controls
 * exactly where reads split the frames. The listener that was on the stream before (ws's, in
 * the gateway) must get every byte from the first frame the reader does not take, and nothing
 * before it. The whole path with ws behind it: test/gateway/media-endpoint.e2e.test.ts.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MediaFrameReader, unmask } from '../../src/gateway/media/frame-reader.js';

const MAX = 1000;

/** One client frame (RFC 6455 §5.2): masked unless `mask` is null. */
function frame(opcode: number, payload: Buffer, opts: { fin?: boolean; rsv?: number; mask?: Buffer | null; len64?: boolean } = {}): Buffer {
  const mask = opts.mask === undefined ? Buffer.from([0x37, 0xfa, 0x21, 0x3d]) : opts.mask;
  const b0 = (opts.fin === false ? 0 : 0x80) | ((opts.rsv ?? 0) << 4) | opcode;
  const m = mask === null ? 0 : 0x80;
  let head: Buffer;
  if (opts.len64) {
    head = Buffer.alloc(10);
    head[1] = m | 127;
    head.writeBigUInt64BE(BigInt(payload.length), 2);
  } else if (payload.length < 126) {
    head = Buffer.from([0, m | payload.length]);
  } else {
    head = Buffer.from([0, m | 126, payload.length >> 8, payload.length & 255]);
  }
  head[0] = b0;
  if (mask === null) return Buffer.concat([head, payload]);
  const body = Buffer.from(payload.map((x, i) => x ^ mask[i & 3]!));
  return Buffer.concat([head, mask, body]);
}

const text = (s: string) => frame(0x1, Buffer.from(s));

function setup() {
  const socket = new PassThrough();
  const ws: Buffer[] = [];
  socket.on('data', (c: Buffer) => ws.push(Buffer.from(c)));
  const got: string[] = [];
  const reader = MediaFrameReader.attach(socket, MAX, { onTextBytes: (chunk, _at, start, end) => void got.push(chunk.toString('utf8', start, end)) });
  expect(reader).not.toBeNull();
  return { socket, ws, got, reader: reader!, wsBytes: () => Buffer.concat(ws) };
}

/** Writes copies of `bytes` (the reader unmasks in place, as a socket's reads are its own) as chunks cut at `cuts` (ascending offsets). */
function writeCut(socket: PassThrough, bytes: Buffer, cuts: number[]): void {
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    if (c > at) socket.write(Buffer.from(bytes.subarray(at, c)));
    at = c;
  }
}

describe('MediaFrameReader', () => {
  const messages = ['', 'x'.repeat(125), `{"event":"media","n":"${'y'.repeat(300)}"}`, 'é€😀', 'abc'];
  const stream = Buffer.concat(messages.map(text));

  it('hands every plain text frame over whole and in order, wherever the reads split them', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const t = setup();
      writeCut(t.socket, stream, [cut]);
      expect(t.got).toEqual(messages);
      expect(t.ws).toEqual([]);
    }
    for (const size of [1, 2, 3, 5, 7, 64]) {
      const t = setup();
      const cuts = [];
      for (let c = size; c < stream.length; c += size) cuts.push(c);
      writeCut(t.socket, stream, cuts);
      expect(t.got).toEqual(messages);
      expect(t.reader.handedOver).toBe(false);
    }
  });

  it('hands ws every byte from the first frame it does not take, and reads nothing itself after that', () => {
    const before = [text('one'), text('two')];
    const ping = frame(0x9, Buffer.from('hi'));
    const after = [text('three'), frame(0x8, Buffer.from([0x03, 0xe8]))];
    const all = Buffer.concat([...before, ping, ...after]);
    const from = before[0]!.length + before[1]!.length;
    for (let cut = 0; cut <= all.length; cut++) {
      const t = setup();
      writeCut(t.socket, all, [cut]);
      expect(t.got).toEqual(['one', 'two']);
      expect(t.reader.handedOver).toBe(true);
      expect(t.wsBytes().equals(all.subarray(from))).toBe(true);
      // Later reads go to ws only.
      t.socket.write(text('four'));
      expect(t.got).toEqual(['one', 'two']);
      expect(t.wsBytes().equals(Buffer.concat([all.subarray(from), text('four')]))).toBe(true);
    }
  });

  const others: [string, Buffer][] = [
    ['a binary frame', frame(0x2, Buffer.from([1, 2, 3]))],
    ['the first fragment of a text message', frame(0x1, Buffer.from('part'), { fin: false })],
    ['a continuation frame', frame(0x0, Buffer.from('part'))],
    ['a close frame', frame(0x8, Buffer.from([0x03, 0xe8]))],
    ['a pong', frame(0xa, Buffer.alloc(0))],
    ['RSV1 set (no extension was negotiated)', frame(0x1, Buffer.from('x'), { rsv: 4 })],
    ['RSV3 set', frame(0x1, Buffer.from('x'), { rsv: 1 })],
    ['an unmasked frame', frame(0x1, Buffer.from('x'), { mask: null })],
    ['a 64-bit length', frame(0x1, Buffer.from('x'), { len64: true })],
    ['a frame longer than maxPayload', frame(0x1, Buffer.alloc(MAX + 1, 0x61))],
  ];

  it.each(others)('hands ws %s at its first byte', (_name, bad) => {
    const t = setup();
    t.socket.write(Buffer.concat([text('ok'), bad, text('later')])); // concat: a fresh buffer
    expect(t.got).toEqual(['ok']);
    expect(t.wsBytes().equals(Buffer.concat([bad, text('later')]))).toBe(true);
  });

  it('takes a frame of exactly maxPayload bytes', () => {
    const t = setup();
    t.socket.write(frame(0x1, Buffer.alloc(MAX, 0x62)));
    expect(t.got).toEqual(['b'.repeat(MAX)]);
  });

  it('does not wait for the payload of a frame longer than maxPayload: ws gets its header at once', () => {
    const t = setup();
    const big = frame(0x1, Buffer.alloc(60_000, 0x61));
    t.socket.write(big.subarray(0, 8));
    expect(t.reader.handedOver).toBe(true);
    expect(t.wsBytes().equals(big.subarray(0, 8))).toBe(true);
  });

  it('leaves ws in place on a socket that does not look as handleUpgrade leaves it', () => {
    const socket = new PassThrough();
    expect(MediaFrameReader.attach(socket, MAX, { onTextBytes: () => undefined })).toBeNull();
    socket.on('data', () => undefined);
    socket.on('data', () => undefined);
    expect(MediaFrameReader.attach(socket, MAX, { onTextBytes: () => undefined })).toBeNull();
  });
});

describe('unmask', () => {
  it('XORs exactly [from, to) with the mask, for every length and offset', () => {
    for (let len = 0; len < 12; len++) {
      for (let from = 4; from < 8; from++) {
        const buf = Buffer.from(Array.from({ length: 24 }, (_, i) => (i * 37 + 11) & 255));
        const want = Buffer.from(buf);
        for (let i = 0; i < len; i++) want[from + i] = buf[from + i]! ^ buf[i & 3]!;
        unmask(buf, from, from + len, 0);
        expect(buf.equals(want)).toBe(true);
      }
    }
  });
});
