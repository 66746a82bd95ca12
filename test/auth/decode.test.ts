// The one content-encoding decoder: streamed (the proxy's mapped answers, the usage watcher's copy)
// and whole (readBody), for every coding Maestro accepts, raw deflate and stacked codings included.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { canDecode, createDecoder, decodeWhole, isTooLarge } from '../../src/auth/decode.js';

const plain = Buffer.from(JSON.stringify({ text: 'hello '.repeat(2000), list: Array.from({ length: 300 }, (_, i) => i) }));

function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(Buffer.from(bytes.subarray(i, i + size)));
  return out;
}

async function decodeStream(header: string, chunks: Buffer[]): Promise<Buffer> {
  const decoder = createDecoder(header);
  if (!decoder) throw new Error(`no decoder for ${header}`);
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    decoder,
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(out);
}

const encoded: Array<[string, Buffer]> = [
  ['gzip', zlib.gzipSync(plain)],
  ['X-Gzip', zlib.gzipSync(plain)],
  ['deflate', zlib.deflateSync(plain)],
  ['deflate', zlib.deflateRawSync(plain)],
  ['br', zlib.brotliCompressSync(plain)],
  ['gzip, br', zlib.brotliCompressSync(zlib.gzipSync(plain))],
  ['deflate, gzip', zlib.gzipSync(zlib.deflateRawSync(plain))],
  ['br, deflate, gzip', zlib.gzipSync(zlib.deflateSync(zlib.brotliCompressSync(plain)))],
];

describe('createDecoder', () => {
  it.each(encoded)('decodes %s streamed, in 1-byte, 7-byte and whole chunks', async (header, data) => {
    for (const chunks of [pieces(data, 1), pieces(data, 7), [data]]) expect((await decodeStream(header, chunks)).equals(plain)).toBe(true);
  });

  it('has nothing to undo for no coding or identity, and no decoder for an unknown one', () => {
    expect(createDecoder(undefined)).toBeUndefined();
    expect(createDecoder('')).toBeUndefined();
    expect(createDecoder(' Identity ')).toBeUndefined();
    expect(createDecoder('zstd')).toBeUndefined();
    expect(createDecoder('gzip, zstd')).toBeUndefined();
    expect(canDecode('zstd')).toBe(false);
    expect(canDecode('constructor')).toBe(false); // not Object's own
    expect(createDecoder('__proto__')).toBeUndefined();
    expect(createDecoder(['gzip', 'br'])).toBeDefined();
  });

  it('fails on bytes that are not what the header says, and on an empty or one-byte deflate body as on an empty gzip one', async () => {
    const notCompressed = Buffer.from('this was never compressed');
    for (const header of ['gzip', 'deflate', 'br', 'gzip, br']) await expect(decodeStream(header, [notCompressed])).rejects.toThrow();
    await expect(decodeStream('gzip', [])).rejects.toThrow();
    await expect(decodeStream('deflate', [])).rejects.toThrow();
    await expect(decodeStream('deflate', [Buffer.from([0x78])])).rejects.toThrow();
  });

  it('keeps back-pressure: an unread decoder holds little of what a small bomb expands to', async () => {
    const bomb = Buffer.alloc(8 * 1024 * 1024, 'a');
    const cases: Array<[string, Buffer]> = [
      ['gzip', zlib.gzipSync(bomb)],
      ['deflate', zlib.deflateRawSync(bomb)],
      ['gzip, br', zlib.brotliCompressSync(zlib.gzipSync(bomb))],
    ];
    for (const [header, data] of cases) {
      const decoder = createDecoder(header)!;
      for (const chunk of pieces(data, 1024)) decoder.write(chunk);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(decoder.readableLength, header).toBeLessThan(1024 * 1024);
      decoder.destroy();
    }
  });
});

describe('decodeWhole', () => {
  it('undoes one coding of a whole body, deflate of either kind', async () => {
    expect((await decodeWhole('gzip', zlib.gzipSync(plain), 1 << 20)).equals(plain)).toBe(true);
    expect((await decodeWhole('deflate', zlib.deflateSync(plain), 1 << 20)).equals(plain)).toBe(true);
    expect((await decodeWhole('deflate', zlib.deflateRawSync(plain), 1 << 20)).equals(plain)).toBe(true);
    expect((await decodeWhole('br', zlib.brotliCompressSync(plain), 1 << 20)).equals(plain)).toBe(true);
  });

  it('says when the output would pass the limit', async () => {
    const error = await decodeWhole('gzip', zlib.gzipSync(plain), 100).catch((e: unknown) => e);
    expect(isTooLarge(error)).toBe(true);
  });
});
