import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { buildProviderCall } from '../../src/auth/clientBuilder.js';
import { canDecode, parseContentEncoding } from '../../src/auth/decode.js';
import { readBody } from '../../src/auth/http.js';
import { BodyTooLargeError, ContentDecodingError } from '../../src/errors.js';
import { defineProvider } from '../../src/providers/registry.js';
import { sendProviderCall, startFakeProvider, type Compression, type FakeProvider } from '../support/fakeProvider.js';

const text = JSON.stringify({ hello: 'world', list: Array.from({ length: 200 }, (_, i) => `item-${i}`) });
const plain = Buffer.from(text);

function chunked(buf: Buffer, size = 7): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (let i = 0; i < buf.length; i += size) yield new Uint8Array(buf.subarray(i, i + size));
  })();
}

describe('readBody', () => {
  it('passes identity bodies through, from async iterables and node streams', async () => {
    expect((await readBody(chunked(plain), undefined)).toString()).toBe(text);
    expect((await readBody(Readable.from([plain.subarray(0, 10), plain.subarray(10)]), 'identity')).toString()).toBe(text);
    expect((await readBody(Readable.from(['a', 'b']), '')).toString()).toBe('ab');
  });

  it.each([
    ['gzip', zlib.gzipSync(plain)],
    ['x-gzip', zlib.gzipSync(plain)],
    ['GZIP', zlib.gzipSync(plain)],
    ['deflate', zlib.deflateSync(plain)],
    ['deflate', zlib.deflateRawSync(plain)],
    ['br', zlib.brotliCompressSync(plain)],
  ])('decodes %s', async (encoding, data) => {
    expect((await readBody(chunked(data), encoding)).toString()).toBe(text);
  });

  it('undoes stacked codings in reverse order', async () => {
    const data = zlib.brotliCompressSync(zlib.gzipSync(plain));
    expect((await readBody(chunked(data), 'gzip, br')).toString()).toBe(text);
    expect((await readBody(chunked(data), ['gzip', 'br'])).toString()).toBe(text);
  });

  it('an empty compressed body is an empty body', async () => {
    expect(await readBody(chunked(Buffer.alloc(0)), 'gzip')).toHaveLength(0);
  });

  it('refuses unknown codings and corrupt data', async () => {
    await expect(readBody(chunked(plain), 'zstd')).rejects.toBeInstanceOf(ContentDecodingError);
    await expect(readBody(chunked(plain), 'gzip')).rejects.toBeInstanceOf(ContentDecodingError);
    await expect(readBody(chunked(plain), 'br')).rejects.toBeInstanceOf(ContentDecodingError);
  });

  it('enforces the limit on raw bytes and on decoded bytes (a small bomb cannot expand)', async () => {
    await expect(readBody(chunked(plain), undefined, 100)).rejects.toBeInstanceOf(BodyTooLargeError);
    const bomb = zlib.gzipSync(Buffer.alloc(5 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(10_000);
    await expect(readBody(chunked(bomb), 'gzip', 64 * 1024)).rejects.toBeInstanceOf(BodyTooLargeError);
    expect(await readBody(chunked(bomb), 'gzip', 6 * 1024 * 1024)).toHaveLength(5 * 1024 * 1024);
  });

  it('parses content-encoding headers', () => {
    expect(parseContentEncoding('gzip, identity, BR')).toEqual(['gzip', 'br']);
    expect(parseContentEncoding(undefined)).toEqual([]);
    expect(canDecode('gzip, br')).toBe(true);
    expect(canDecode('zstd')).toBe(false);
  });
});

describe('compressed upstream answers, read correctly', () => {
  let fake: FakeProvider | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it.each(['gzip', 'deflate', 'br'] as const)('%s JSON answer from the provider', async (encoding: Compression) => {
    fake = await startFakeProvider({ provider: 'openai', compress: encoding });
    const def = defineProvider('openai', fake.overrides);
    const call = buildProviderCall(def, {
      auth: { type: 'api_key', apiKey: fake.apiKey },
      method: 'POST',
      path: '/v1/chat/completions',
      clientHeaders: { 'content-type': 'application/json', 'accept-encoding': encoding },
    });
    const res = await sendProviderCall(call, { body: { model: 'gpt', messages: [] } });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe(encoding);
    expect(res.json).toMatchObject({ object: 'chat.completion', choices: [{ message: { content: 'Hello from the fake openai' } }] });
  });

  it.each(['gzip', 'deflate', 'br'] as const)('%s event stream from the provider', async (encoding: Compression) => {
    fake = await startFakeProvider({ provider: 'anthropic', compress: encoding, eventCount: 4 });
    const def = defineProvider('anthropic', fake.overrides);
    const call = buildProviderCall(def, {
      auth: { type: 'api_key', apiKey: fake.apiKey },
      method: 'POST',
      path: '/v1/messages',
      clientHeaders: { 'content-type': 'application/json', 'accept-encoding': `${encoding}` },
    });
    const res = await sendProviderCall(call, { body: { model: 'claude', stream: true, messages: [] } });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe(encoding);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = res.body
      .toString('utf8')
      .split('\n\n')
      .filter(Boolean)
      .map((block) => /^event: (\S+)/.exec(block)?.[1]);
    expect(events).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
  });

  it('an uncompressed answer when the client does not ask for compression', async () => {
    fake = await startFakeProvider({ provider: 'gemini', compress: 'br' });
    const res = await request(`${fake.url}/v1beta/models/g:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': fake.apiKey, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(await res.body.json()).toMatchObject({ candidates: [{ content: { parts: [{ text: 'Hello from the fake gemini' }] } }] });
  });
});
