// Asking an OpenAI chat stream for its usage on the client's behalf, and taking out of the answer
// what the client did not ask for; and the upper bound an incomplete call is charged.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { askStreamUsage, stripStreamUsage } from '../../src/usage/streamUsage.js';
import { DEFAULT_OUTPUT_BOUND, incompleteCharge, outputBound } from '../../src/usage/incomplete.js';

async function strip(chunks: string[]): Promise<string> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks.map((c) => Buffer.from(c))),
    stripStreamUsage(),
    new Writable({
      write(chunk: Buffer, _e, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(out).toString('utf8');
}

const chunk = (content: string) =>
  `data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}}}],"usage":null}\n\n`;
const plainChunk = (content: string) =>
  `data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}}}]}\n\n`;
const usageChunk =
  'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}\n\n';

describe('askStreamUsage', () => {
  it('asks a stream that did not ask, keeping every other byte and stream_options member', () => {
    const body = Buffer.from('{"model":"gpt-4o", "stream":true,"n":12345678901234567890,"messages":[{"role":"user","content":"\\u00e9"}]}');
    const asked = askStreamUsage(body)!.toString('utf8');
    expect(asked).toBe(
      '{"stream_options":{"include_usage":true},"model":"gpt-4o", "stream":true,"n":12345678901234567890,"messages":[{"role":"user","content":"\\u00e9"}]}',
    );
    const withOptions = askStreamUsage(Buffer.from('{"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":false}}'));
    expect(JSON.parse(withOptions!.toString())).toEqual({
      stream: true,
      stream_options: { include_obfuscation: false, include_usage: true },
    });
  });

  it('leaves alone what needs nothing: no stream, a client that asked, not JSON', () => {
    for (const body of [
      '{"stream":false}',
      '{"model":"m"}',
      '{"stream":true,"stream_options":{"include_usage":true}}',
      'not json',
      '[1]',
    ]) {
      expect(askStreamUsage(Buffer.from(body)), body).toBeUndefined();
    }
  });
});

describe('stripStreamUsage', () => {
  it('takes out "usage":null and the usage-only chunk, however the bytes are cut', async () => {
    const stream = chunk('Hel') + chunk('lo "usage":null}') + usageChunk + 'data: [DONE]\n\n';
    const expected = plainChunk('Hel') + plainChunk('lo "usage":null}') + 'data: [DONE]\n\n';
    expect(await strip([stream])).toBe(expected);
    const bytes = [...stream];
    expect(await strip(bytes)).toBe(expected); // one character at a time
    expect(await strip([stream.slice(0, 100), stream.slice(100, 101), stream.slice(101)])).toBe(expected);
  });

  it('passes anything else as it came (comments, CRLF events, an error object)', async () => {
    const other = ': keep-alive\n\ndata: {"error":{"message":"boom","type":"server_error"}}\r\n\r\n';
    expect(await strip([other])).toBe(other);
  });
});

describe('the upper bound of an incomplete call', () => {
  it("charges the request's own maximum less the output reported, and the input only when none was reported", () => {
    const reported = { inputTokens: 10, outputTokens: 3, cacheReadTokens: 0, cacheWriteTokens: 0 };
    expect(incompleteCharge(reported, Buffer.from('{"max_tokens":100}'), 18)).toBe(97);
    expect(incompleteCharge(undefined, Buffer.from('{"max_output_tokens":50}'), 24)).toBe(50 + 24);
    expect(incompleteCharge(reported, undefined, 2_000_000)).toBe(DEFAULT_OUTPUT_BOUND - 3);
    expect(outputBound(Buffer.from('{"max_completion_tokens":7}'))).toBe(7);
    expect(outputBound(Buffer.from('{"generationConfig":{"maxOutputTokens":64}}'))).toBe(64);
    expect(outputBound(Buffer.from('{"max_tokens":"lots"}'))).toBe(DEFAULT_OUTPUT_BOUND);
  });
});
