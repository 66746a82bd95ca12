// The usage tap: token usage, model and in-stream errors read from real-shaped provider answers as
// they pass, with the bytes handed on exactly as they came, in every chunking and encoding.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ProviderId } from '../../src/config.js';
import { MAX_OBSERVED_JSON_BYTES, createUsageTap, observeJsonBody, type CallObservation } from '../../src/usage/tap.js';
import { createApiSide } from '../support/fakeProvider/api.js';
import { prng } from '../support/prng.js';

type Answer = { statusCode: number; contentType?: string; contentEncoding?: string };
const SSE: Answer = { statusCode: 200, contentType: 'text/event-stream; charset=utf-8' };
const JSON_ANSWER: Answer = { statusCode: 200, contentType: 'application/json' };

// ---------------------------------------------------------------------------------------------
// Helpers

/** Pipes `chunks` through a tap; checks that every chunk left as the same object, in order. */
async function run(provider: ProviderId, answer: Answer, chunks: Uint8Array[]): Promise<CallObservation> {
  const tap = createUsageTap(provider, answer);
  const out: Uint8Array[] = [];
  await pipeline(
    Readable.from(chunks, { objectMode: false }),
    tap.stream,
    new Writable({
      write(chunk: Uint8Array, _encoding, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  expect(out.length).toBe(chunks.length);
  // The same Buffer object; a Uint8Array is turned into a Buffer view of the same memory by Node's Writable itself (no copy).
  out.forEach((chunk, i) => {
    const sent = chunks[i]!;
    if (Buffer.isBuffer(sent)) expect(chunk).toBe(sent);
    else expect([chunk.buffer, chunk.byteOffset, chunk.byteLength]).toEqual([sent.buffer, sent.byteOffset, sent.byteLength]);
  });
  expect(Buffer.compare(Buffer.concat(out), Buffer.concat(chunks))).toBe(0);
  // Whether the final counts arrived is asserted by the tests about it (runToEnd), not in every shape test.
  const { complete: _complete, ...observed } = tap.observation();
  return observed;
}

/** run, with whether the provider's final counts arrived. */
async function runToEnd(provider: ProviderId, answer: Answer, chunks: Uint8Array[]): Promise<CallObservation> {
  const tap = createUsageTap(provider, answer);
  await pipeline(Readable.from(chunks, { objectMode: false }), tap.stream, new Writable({ write: (_c, _e, done) => done() }));
  return tap.observation();
}

function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(Buffer.from(bytes.subarray(i, i + size)));
  return out;
}

/** Cut right after every `\r` (inside each CRLF) and in the middle of every `data:` line. */
function awkward(bytes: Buffer): Buffer[] {
  const cuts = new Set<number>();
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0d) cuts.add(i + 1);
    if (bytes[i] === 0x0a && bytes[i + 1] === 0x64 /* d */) cuts.add(i + 3); // "da|ta:"
    if (bytes[i] === 0x0a && bytes[i + 1] === 0x65 /* e */) cuts.add(i + 8); // "event:"
    if (bytes[i] === 0x7b && i % 5 === 0) cuts.add(i + 1);
  }
  const sorted = [...cuts].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of sorted) {
    out.push(Buffer.from(bytes.subarray(from, cut)));
    from = cut;
  }
  out.push(Buffer.from(bytes.subarray(from)));
  return out;
}

function randomPieces(bytes: Buffer, seed: number): Buffer[] {
  const rand = prng(seed);
  const out: Buffer[] = [];
  let i = 0;
  while (i < bytes.length) {
    const size = 1 + Math.floor(rand() * 40);
    out.push(Buffer.from(bytes.subarray(i, i + size)));
    i += size;
  }
  return out;
}

/** The same bytes in several chunkings: whole, 1-byte, 2, 7 and 64-byte pieces, split inside lines and CRLFs, random. */
function chunkings(bytes: Buffer): Array<[string, Buffer[]]> {
  return [
    ['whole', [bytes]],
    ['1-byte', pieces(bytes, 1)],
    ['2-byte', pieces(bytes, 2)],
    ['7-byte', pieces(bytes, 7)],
    ['64-byte', pieces(bytes, 64)],
    ['awkward', awkward(bytes)],
    ['random', randomPieces(bytes, 42)],
  ];
}

const sse = (events: Array<[string | undefined, unknown]>, eol = '\n') =>
  Buffer.from(
    events
      .map(
        ([event, data]) =>
          `${event ? `event: ${event}${eol}` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}${eol}${eol}`,
      )
      .join(''),
  );

const compressors: Record<string, (b: Buffer) => Buffer> = {
  gzip: (b) => zlib.gzipSync(b),
  br: (b) => zlib.brotliCompressSync(b),
  deflate: (b) => zlib.deflateSync(b),
};

// ---------------------------------------------------------------------------------------------
// Real-shaped answers

const ANTHROPIC_MODEL = 'claude-sonnet-4-5-20250929';

function anthropicStream(opts: { deltas?: number; text?: (i: number) => string; newDelta?: boolean; eol?: string } = {}): Buffer {
  const { deltas = 5, text = (i) => `word ${i} `, newDelta = false, eol = '\n' } = opts;
  const events: Array<[string, unknown]> = [
    [
      'message_start',
      {
        type: 'message_start',
        message: {
          id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
          type: 'message',
          role: 'assistant',
          model: ANTHROPIC_MODEL,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: {
            input_tokens: 25,
            cache_creation_input_tokens: 100,
            cache_read_input_tokens: 2000,
            cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 0 },
            output_tokens: 1,
            service_tier: 'standard',
          },
        },
      },
    ],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ['ping', { type: 'ping' }],
  ];
  for (let i = 0; i < deltas; i++) {
    events.push(['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: text(i) } }]);
  }
  events.push(['content_block_stop', { type: 'content_block_stop', index: 0 }]);
  events.push([
    'message_delta',
    {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: newDelta
        ? { input_tokens: 30, cache_creation_input_tokens: 110, cache_read_input_tokens: 2100, output_tokens: 15 }
        : { output_tokens: 15 },
    },
  ]);
  events.push(['message_stop', { type: 'message_stop' }]);
  return sse(events, eol);
}

const ANTHROPIC_STREAM_USAGE = { inputTokens: 25, outputTokens: 15, cacheReadTokens: 2000, cacheWriteTokens: 100 };

const anthropicMessage = {
  id: 'msg_013Zva2CMHLNnXjNJJKqJ2EF',
  type: 'message',
  role: 'assistant',
  model: ANTHROPIC_MODEL,
  content: [{ type: 'text', text: 'Hi! My name is Claude.' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 2095, output_tokens: 503, cache_creation_input_tokens: 2051, cache_read_input_tokens: 4000 },
};

const OPENAI_MODEL = 'gpt-4o-2024-08-06';

function openaiChatStream(opts: { chunks?: number; includeUsage?: boolean } = {}): Buffer {
  const { chunks = 5, includeUsage = true } = opts;
  const base = {
    id: 'chatcmpl-AbC123',
    object: 'chat.completion.chunk',
    created: 1730000000,
    model: OPENAI_MODEL,
    system_fingerprint: 'fp_45c6de4934',
  };
  const events: Array<[undefined, unknown]> = [];
  const extra = includeUsage ? { usage: null } : {};
  events.push([
    undefined,
    {
      ...base,
      choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }],
      ...extra,
    },
  ]);
  for (let i = 0; i < chunks; i++) {
    events.push([
      undefined,
      { ...base, choices: [{ index: 0, delta: { content: `tok${i} ` }, logprobs: null, finish_reason: null }], ...extra },
    ]);
  }
  events.push([undefined, { ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], ...extra }]);
  if (includeUsage) {
    events.push([
      undefined,
      {
        ...base,
        choices: [],
        usage: {
          prompt_tokens: 1200,
          completion_tokens: 30,
          total_tokens: 1230,
          prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
        },
      },
    ]);
  }
  events.push([undefined, '[DONE]']);
  return sse(events);
}

const RESPONSES_MODEL = 'gpt-5-2025-08-07';

function responsesStream(ending: 'completed' | 'failed' | 'error' = 'completed'): Buffer {
  const response = (status: string, extra: object) => ({
    id: 'resp_67ccd2bed1ec8190b14f964abc054267',
    object: 'response',
    created_at: 1741476542,
    status,
    error: null,
    instructions: 'You are a helpful assistant.',
    model: RESPONSES_MODEL,
    output: [],
    usage: null,
    ...extra,
  });
  const events: Array<[string, unknown]> = [
    ['response.created', { type: 'response.created', sequence_number: 0, response: response('in_progress', {}) }],
    ['response.in_progress', { type: 'response.in_progress', sequence_number: 1, response: response('in_progress', {}) }],
    [
      'response.output_item.added',
      {
        type: 'response.output_item.added',
        sequence_number: 2,
        output_index: 0,
        item: { id: 'msg_1', type: 'message', status: 'in_progress', content: [], role: 'assistant' },
      },
    ],
  ];
  for (let i = 0; i < 4; i++) {
    events.push([
      'response.output_text.delta',
      {
        type: 'response.output_text.delta',
        sequence_number: 3 + i,
        item_id: 'msg_1',
        output_index: 0,
        content_index: 0,
        delta: `part ${i} `,
      },
    ]);
  }
  const usage = {
    input_tokens: 500,
    input_tokens_details: { cached_tokens: 128 },
    output_tokens: 60,
    output_tokens_details: { reasoning_tokens: 40 },
    total_tokens: 560,
  };
  if (ending === 'completed') {
    events.push([
      'response.completed',
      {
        type: 'response.completed',
        sequence_number: 9,
        response: response('completed', {
          output: [
            {
              id: 'msg_1',
              type: 'message',
              status: 'completed',
              role: 'assistant',
              content: [{ type: 'output_text', text: 'part 0 part 1 part 2 part 3 ', annotations: [] }],
            },
          ],
          usage,
        }),
      },
    ]);
  } else if (ending === 'failed') {
    events.push([
      'response.failed',
      {
        type: 'response.failed',
        sequence_number: 9,
        response: response('failed', { error: { code: 'server_error', message: 'The model failed to generate a response.' }, usage }),
      },
    ]);
  } else {
    events.push([
      'error',
      { type: 'error', code: 'rate_limit_exceeded', message: 'Rate limit reached for gpt-5', param: null, sequence_number: 9 },
    ]);
  }
  return sse(events);
}

const GEMINI_MODEL = 'gemini-2.5-flash';

function geminiChunk(i: number, last: boolean): object {
  return {
    candidates: [
      {
        content: { parts: [{ text: `piece ${i} "usageMetadata": {"promptTokenCount": 999999} ` }], role: 'model' },
        ...(last ? { finishReason: 'STOP' } : {}),
        index: 0,
      },
    ],
    usageMetadata: {
      promptTokenCount: 1500,
      candidatesTokenCount: 10 * (i + 1),
      totalTokenCount: 1500 + 10 * (i + 1) + (last ? 300 : 0),
      cachedContentTokenCount: 1000,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: 1500 }],
      cacheTokensDetails: [{ modality: 'TEXT', tokenCount: 1000 }],
      ...(last ? { thoughtsTokenCount: 300 } : {}),
    },
    modelVersion: GEMINI_MODEL,
    responseId: 'mAitaNvhE8S1qtsP3Z6bwQ4',
  };
}

const GEMINI_CHUNKS = 4;
/** After GEMINI_CHUNKS chunks: input 1500 − 1000 cached, output 40 candidates + 300 thoughts. */
const GEMINI_USAGE = { inputTokens: 500, outputTokens: 340, cacheReadTokens: 1000, cacheWriteTokens: 0 };

function geminiSse(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < GEMINI_CHUNKS; i++) lines.push(`data: ${JSON.stringify(geminiChunk(i, i === GEMINI_CHUNKS - 1))}\r\n\r\n`);
  return Buffer.from(lines.join(''));
}

function geminiArray(
  elements: object[] = Array.from({ length: GEMINI_CHUNKS }, (_, i) => geminiChunk(i, i === GEMINI_CHUNKS - 1)),
): Buffer {
  return Buffer.from(`[${elements.map((e) => JSON.stringify(e, null, 2)).join(',\r\n')}]`);
}

// ---------------------------------------------------------------------------------------------

afterEach(() => {
  vi.restoreAllMocks();
});

describe('usage tap: Anthropic', () => {
  const stream = anthropicStream();

  it.each(chunkings(stream))('SSE chunked %s: input and cache from message_start, output from message_delta', async (_name, chunks) => {
    expect(await run('anthropic', SSE, chunks)).toEqual({ model: ANTHROPIC_MODEL, usage: ANTHROPIC_STREAM_USAGE });
  });

  it.each(chunkings(anthropicStream({ eol: '\r\n' })))('SSE with CRLF, chunked %s', async (_name, chunks) => {
    expect(await run('anthropic', SSE, chunks)).toEqual({ model: ANTHROPIC_MODEL, usage: ANTHROPIC_STREAM_USAGE });
  });

  it('takes input and cache counts from message_delta when a newer API version sends them there', async () => {
    const observed = await run('anthropic', SSE, pieces(anthropicStream({ newDelta: true }), 3));
    expect(observed.usage).toEqual({ inputTokens: 30, outputTokens: 15, cacheReadTokens: 2100, cacheWriteTokens: 110 });
  });

  it('is not fooled by text that looks like events, usage or errors', async () => {
    const tricky = (i: number) =>
      `line ${i}\n\nevent: error\ndata: {"type":"error","error":{"type":"x"}} "usage":{"output_tokens":9999} \\" message_delta`;
    const observed = await run('anthropic', SSE, pieces(anthropicStream({ text: tricky }), 5));
    expect(observed).toEqual({ model: ANTHROPIC_MODEL, usage: ANTHROPIC_STREAM_USAGE });
  });

  it('reads a JSON body (usage, cache read and creation, model)', async () => {
    const body = Buffer.from(JSON.stringify(anthropicMessage));
    for (const [, chunks] of chunkings(body)) {
      expect(await run('anthropic', JSON_ANSWER, chunks)).toEqual({
        model: ANTHROPIC_MODEL,
        usage: { inputTokens: 2095, outputTokens: 503, cacheReadTokens: 4000, cacheWriteTokens: 2051 },
      });
    }
  });

  it('reports an error event inside a 200 stream, and the usage seen before it', async () => {
    const body = Buffer.concat([
      anthropicStream().subarray(0, anthropicStream().indexOf('event: content_block_stop')),
      sse([['error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }]]),
    ]);
    for (const [, chunks] of chunkings(body)) {
      expect(await run('anthropic', SSE, chunks)).toEqual({
        model: ANTHROPIC_MODEL,
        usage: { inputTokens: 25, outputTokens: 1, cacheReadTokens: 2000, cacheWriteTokens: 100 },
        streamError: { type: 'overloaded_error', message: 'Overloaded' },
      });
    }
    const rateLimited = sse([
      [
        'error',
        { type: 'error', error: { type: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit' } },
      ],
    ]);
    expect((await run('anthropic', SSE, [rateLimited])).streamError).toEqual({
      type: 'rate_limit_error',
      message: 'Number of request tokens has exceeded your per-minute rate limit',
    });
  });

  it('an aborted stream still reports what was seen (message_start input tokens)', async () => {
    const body = anthropicStream({ deltas: 20 });
    const cut = body.indexOf('event: content_block_delta') + 200;
    const tap = createUsageTap('anthropic', SSE);
    const passed: Buffer[] = [];
    tap.stream.on('data', (chunk: Buffer) => passed.push(chunk));
    tap.stream.on('error', () => {});
    for (const chunk of pieces(body.subarray(0, cut), 13)) tap.stream.write(chunk);
    await new Promise((resolve) => setImmediate(resolve));
    tap.stream.destroy(new Error('client went away'));
    expect(tap.observation()).toEqual({
      model: ANTHROPIC_MODEL,
      usage: { inputTokens: 25, outputTokens: 1, cacheReadTokens: 2000, cacheWriteTokens: 100 },
    });
    expect(Buffer.compare(Buffer.concat(passed), body.subarray(0, cut))).toBe(0);
    // observation() may be called before the end too, and hands out copies.
    const first = tap.observation();
    first.usage!.inputTokens = 0;
    expect(tap.observation().usage!.inputTokens).toBe(25);
  });

  it('does not JSON.parse content_block_delta (or ping) events: 64 deltas, 2 parses', async () => {
    const body = anthropicStream({ deltas: 64 });
    const parse = vi.spyOn(JSON, 'parse');
    const tap = createUsageTap('anthropic', SSE);
    tap.stream.resume();
    for (const chunk of pieces(body, 100)) tap.stream.write(chunk);
    tap.stream.end();
    await new Promise((resolve) => tap.stream.on('end', resolve));
    expect(parse).toHaveBeenCalledTimes(2);
    for (const [text] of parse.mock.calls) expect(String(text)).toMatch(/^\{"type":"message_(start|delta)"/);
    expect(tap.observation().usage).toEqual(ANTHROPIC_STREAM_USAGE);
  });

  it('SSE without event: lines is recognised from the data type', async () => {
    const dataOnly = Buffer.from(
      anthropicStream()
        .toString()
        .replace(/^event: .*\n/gm, ''),
    );
    expect(dataOnly.includes('event:')).toBe(false);
    expect(await run('anthropic', SSE, pieces(dataOnly, 3))).toEqual({ model: ANTHROPIC_MODEL, usage: ANTHROPIC_STREAM_USAGE });
  });

  it('count_tokens answers carry no usage (nothing was consumed)', async () => {
    expect(await run('anthropic', JSON_ANSWER, [Buffer.from('{"input_tokens":10}')])).toEqual({});
  });
});

describe('usage tap: OpenAI', () => {
  const CHAT_USAGE = { inputTokens: 1200 - 1024, outputTokens: 30, cacheReadTokens: 1024, cacheWriteTokens: 0 };

  it.each(chunkings(openaiChatStream()))('chat completions stream with include_usage, chunked %s', async (_name, chunks) => {
    expect(await run('openai', SSE, chunks)).toEqual({ model: OPENAI_MODEL, usage: CHAT_USAGE });
  });

  it('a chat stream without include_usage: the model, no usage', async () => {
    expect(await run('openai', SSE, pieces(openaiChatStream({ includeUsage: false }), 9))).toEqual({ model: OPENAI_MODEL });
  });

  it('parses only the chunk that carries the usage (64 chunks with "usage":null, 1 parse)', async () => {
    const parse = vi.spyOn(JSON, 'parse');
    const observed = await run('openai', SSE, pieces(openaiChatStream({ chunks: 64 }), 128));
    expect(parse).toHaveBeenCalledTimes(1);
    expect(observed.usage).toEqual(CHAT_USAGE);
  });

  it('an error object inside a chat stream', async () => {
    const body = Buffer.concat([
      openaiChatStream({ includeUsage: false }).subarray(0, 400),
      Buffer.from(
        '\n\ndata: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}\n\n',
      ),
    ]);
    expect(await run('openai', SSE, pieces(body, 1))).toEqual({
      model: OPENAI_MODEL,
      streamError: { type: 'server_error', message: 'The server had an error while processing your request.' },
    });
  });

  it.each(chunkings(responsesStream()))('Responses API stream, chunked %s', async (_name, chunks) => {
    expect(await run('openai', SSE, chunks)).toEqual({
      model: RESPONSES_MODEL,
      usage: { inputTokens: 500 - 128, outputTokens: 60, cacheReadTokens: 128, cacheWriteTokens: 0 },
    });
  });

  it('Responses API stream without event: lines', async () => {
    const dataOnly = Buffer.from(
      responsesStream()
        .toString()
        .replace(/^event: .*\n/gm, ''),
    );
    expect((await run('openai', SSE, pieces(dataOnly, 6))).usage).toEqual({
      inputTokens: 372,
      outputTokens: 60,
      cacheReadTokens: 128,
      cacheWriteTokens: 0,
    });
  });

  it('Responses API: response.failed and error events are stream errors', async () => {
    expect(await run('openai', SSE, pieces(responsesStream('failed'), 11))).toEqual({
      model: RESPONSES_MODEL,
      usage: { inputTokens: 372, outputTokens: 60, cacheReadTokens: 128, cacheWriteTokens: 0 },
      streamError: { type: 'server_error', message: 'The model failed to generate a response.' },
    });
    expect(await run('openai', SSE, pieces(responsesStream('error'), 11))).toEqual({
      model: RESPONSES_MODEL,
      streamError: { type: 'rate_limit_exceeded', message: 'Rate limit reached for gpt-5' },
    });
  });

  it('Responses API stream: an aborted stream keeps the model from response.created', async () => {
    const body = responsesStream();
    const tap = createUsageTap('openai', SSE);
    tap.stream.on('error', () => {});
    tap.stream.resume();
    tap.stream.write(body.subarray(0, body.indexOf('event: response.output_text.delta') + 10));
    tap.stream.destroy();
    expect(tap.observation()).toEqual({ model: RESPONSES_MODEL });
  });

  it('JSON bodies: chat completions, Responses API, embeddings', async () => {
    const chat = {
      id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
      object: 'chat.completion',
      created: 1741570283,
      model: OPENAI_MODEL,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello', refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: {
        prompt_tokens: 1117,
        completion_tokens: 46,
        total_tokens: 1163,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
      },
      service_tier: 'default',
      system_fingerprint: 'fp_fc9f1d7035',
    };
    expect(await run('openai', JSON_ANSWER, pieces(Buffer.from(JSON.stringify(chat)), 10))).toEqual({
      model: OPENAI_MODEL,
      usage: { inputTokens: 1117, outputTokens: 46, cacheReadTokens: 0, cacheWriteTokens: 0 },
    });
    const responses = {
      id: 'resp_1',
      object: 'response',
      status: 'completed',
      model: RESPONSES_MODEL,
      output: [{ type: 'message', content: [{ type: 'output_text', text: 'Hi' }] }],
      usage: {
        input_tokens: 36,
        input_tokens_details: { cached_tokens: 16 },
        output_tokens: 87,
        output_tokens_details: { reasoning_tokens: 64 },
        total_tokens: 123,
      },
    };
    expect(await run('openai', JSON_ANSWER, [Buffer.from(JSON.stringify(responses))])).toEqual({
      model: RESPONSES_MODEL,
      usage: { inputTokens: 20, outputTokens: 87, cacheReadTokens: 16, cacheWriteTokens: 0 },
    });
    const embeddings = {
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.0023, -0.0093] }],
      model: 'text-embedding-3-small',
      usage: { prompt_tokens: 8, total_tokens: 8 },
    };
    expect(await run('openai', JSON_ANSWER, [Buffer.from(JSON.stringify(embeddings))])).toEqual({
      model: 'text-embedding-3-small',
      usage: { inputTokens: 8, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
    });
  });
});

describe('usage tap: Gemini', () => {
  it.each(chunkings(geminiSse()))('SSE (alt=sse, CRLF), cumulative usageMetadata, chunked %s', async (_name, chunks) => {
    expect(await run('gemini', SSE, chunks)).toEqual({ model: GEMINI_MODEL, usage: GEMINI_USAGE });
  });

  it.each(chunkings(geminiArray()))('streamed JSON array, chunked %s', async (_name, chunks) => {
    expect(await run('gemini', JSON_ANSWER, chunks)).toEqual({ model: GEMINI_MODEL, usage: GEMINI_USAGE });
  });

  it('parses only the small usageMetadata object of the last chunk, never a whole chunk', async () => {
    const parse = vi.spyOn(JSON, 'parse');
    const cases: Array<[Answer, Buffer]> = [
      [SSE, geminiSse()],
      [JSON_ANSWER, geminiArray()],
    ];
    for (const [answer, body] of cases) {
      parse.mockClear();
      expect((await run('gemini', answer, pieces(body, 50))).usage).toEqual(GEMINI_USAGE);
      expect(parse).toHaveBeenCalledTimes(1);
      expect(String(parse.mock.calls[0]![0])).toMatch(/^\{\s*"promptTokenCount":\s*1500,/);
      expect(String(parse.mock.calls[0]![0])).not.toContain('"candidates"');
    }
  });

  it('an aborted streamed array reports the last complete chunk', async () => {
    const body = geminiArray();
    const thirdEnds = body.indexOf('"responseId"', body.indexOf('piece 2')) + 40;
    const tap = createUsageTap('gemini', JSON_ANSWER);
    tap.stream.on('error', () => {});
    tap.stream.resume();
    for (const chunk of pieces(body.subarray(0, thirdEnds + 30), 1)) tap.stream.write(chunk);
    tap.stream.destroy();
    expect(tap.observation()).toEqual({
      model: GEMINI_MODEL,
      usage: { inputTokens: 500, outputTokens: 30, cacheReadTokens: 1000, cacheWriteTokens: 0 },
    });
  });

  it('an error object in a stream (SSE and array)', async () => {
    const error = { error: { code: 429, message: 'Resource has been exhausted (e.g. check quota).', status: 'RESOURCE_EXHAUSTED' } };
    const array = geminiArray([geminiChunk(0, false), error]);
    expect(await run('gemini', JSON_ANSWER, pieces(array, 3))).toEqual({
      model: GEMINI_MODEL,
      usage: { inputTokens: 500, outputTokens: 10, cacheReadTokens: 1000, cacheWriteTokens: 0 },
      streamError: { type: 'RESOURCE_EXHAUSTED', message: 'Resource has been exhausted (e.g. check quota).' },
    });
    const stream = Buffer.concat([
      geminiSse().subarray(0, geminiSse().indexOf('\r\n\r\n') + 4),
      Buffer.from(`data: ${JSON.stringify(error)}\r\n\r\n`),
    ]);
    expect((await run('gemini', SSE, pieces(stream, 4))).streamError).toEqual({ type: 'RESOURCE_EXHAUSTED', message: error.error.message });
  });

  it('a generateContent JSON body', async () => {
    const body = {
      candidates: [{ content: { parts: [{ text: 'Hello' }], role: 'model' }, finishReason: 'STOP', index: 0 }],
      usageMetadata: {
        promptTokenCount: 8,
        candidatesTokenCount: 12,
        totalTokenCount: 70,
        thoughtsTokenCount: 50,
        toolUsePromptTokenCount: 4,
      },
      modelVersion: 'gemini-2.5-pro',
      responseId: 'x',
    };
    expect(await run('gemini', JSON_ANSWER, [Buffer.from(JSON.stringify(body, null, 2))])).toEqual({
      model: 'gemini-2.5-pro',
      usage: { inputTokens: 12, outputTokens: 62, cacheReadTokens: 0, cacheWriteTokens: 0 },
    });
  });
});

describe('usage tap: compressed answers', () => {
  const cases: Array<[string, ProviderId, Answer, Buffer, CallObservation]> = [
    ['anthropic SSE', 'anthropic', SSE, anthropicStream({ deltas: 30 }), { model: ANTHROPIC_MODEL, usage: ANTHROPIC_STREAM_USAGE }],
    [
      'anthropic JSON',
      'anthropic',
      JSON_ANSWER,
      Buffer.from(JSON.stringify(anthropicMessage)),
      { model: ANTHROPIC_MODEL, usage: { inputTokens: 2095, outputTokens: 503, cacheReadTokens: 4000, cacheWriteTokens: 2051 } },
    ],
    [
      'openai chat SSE',
      'openai',
      SSE,
      openaiChatStream(),
      { model: OPENAI_MODEL, usage: { inputTokens: 176, outputTokens: 30, cacheReadTokens: 1024, cacheWriteTokens: 0 } },
    ],
    ['gemini array', 'gemini', JSON_ANSWER, geminiArray(), { model: GEMINI_MODEL, usage: GEMINI_USAGE }],
  ];

  for (const [encoding, compress] of Object.entries(compressors)) {
    it.each(cases)(
      `${encoding}: %s, in 1-byte and 17-byte chunks, passed on still compressed`,
      async (_name, provider, answer, plain, expected) => {
        const compressed = compress(plain);
        for (const chunks of [pieces(compressed, 1), pieces(compressed, 17), [compressed]]) {
          expect(await run(provider, { ...answer, contentEncoding: encoding.toUpperCase() }, chunks)).toEqual(expected);
        }
      },
    );
  }

  it('raw deflate (no zlib wrapper) as some servers send it', async () => {
    const compressed = zlib.deflateRawSync(Buffer.from(JSON.stringify(anthropicMessage)));
    for (const size of [1, 5, compressed.length]) {
      expect((await run('anthropic', { ...JSON_ANSWER, contentEncoding: 'deflate' }, pieces(compressed, size))).usage?.outputTokens).toBe(
        503,
      );
    }
  });

  it('an empty compressed answer', async () => {
    expect(await run('anthropic', { ...JSON_ANSWER, contentEncoding: 'gzip' }, [])).toEqual({});
    expect(await run('anthropic', { ...JSON_ANSWER, contentEncoding: 'deflate' }, [Buffer.from([0x78])])).toEqual({});
  });

  it('a corrupt gzip stream: no throw, every byte passed on unchanged, nothing observed', async () => {
    const good = zlib.gzipSync(anthropicStream());
    const corrupt = Buffer.from(good);
    for (let i = 20; i < corrupt.length - 8; i += 3) corrupt[i] = corrupt[i]! ^ 0x5a;
    for (const chunks of [[corrupt], pieces(corrupt, 1), pieces(corrupt, 64)]) {
      const observed = await run('anthropic', { ...SSE, contentEncoding: 'gzip' }, chunks);
      expect(observed.usage).toBeUndefined();
    }
    const notGzipAtAll = Buffer.from('this was never gzip');
    expect(await run('anthropic', { ...SSE, contentEncoding: 'gzip' }, [notGzipAtAll])).toEqual({});
  });

  it('a gzip stream cut short: what was decompressed so far, no throw', async () => {
    const compressed = zlib.gzipSync(anthropicStream({ deltas: 200 }), { level: 1 });
    const observed = await run(
      'anthropic',
      { ...SSE, contentEncoding: 'gzip' },
      pieces(compressed.subarray(0, Math.floor(compressed.length / 2)), 100),
    );
    expect(observed).toEqual({
      model: ANTHROPIC_MODEL,
      usage: { inputTokens: 25, outputTokens: 1, cacheReadTokens: 2000, cacheWriteTokens: 100 },
    });
  });

  it('a compressed JSON body that inflates past the limit is read from its head and tail (no throw, bytes unchanged, memory bounded)', async () => {
    const bomb = zlib.gzipSync(Buffer.from(`{"model":"m","text":"${'x'.repeat(64 * 1024 * 1024)}","usage":{"input_tokens":1}}`));
    expect(bomb.length).toBeLessThan(256 * 1024);
    expect(await runToEnd('anthropic', { ...JSON_ANSWER, contentEncoding: 'gzip' }, pieces(bomb, 16 * 1024))).toEqual({
      model: 'm',
      usage: { inputTokens: 1, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
      complete: true,
    });
  });

  it('an unknown content-encoding is passed on and not observed', async () => {
    expect(await run('anthropic', { ...JSON_ANSWER, contentEncoding: 'zstd' }, [Buffer.from(JSON.stringify(anthropicMessage))])).toEqual(
      {},
    );
    expect(
      (await run('anthropic', { ...JSON_ANSWER, contentEncoding: 'identity' }, [Buffer.from(JSON.stringify(anthropicMessage))])).model,
    ).toBe(ANTHROPIC_MODEL);
  });
});

describe('usage tap: what it leaves alone', () => {
  it('error statuses and other content types: nothing observed, bytes unchanged', async () => {
    const error = Buffer.from(JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } }));
    expect(await run('anthropic', { statusCode: 429, contentType: 'application/json' }, [error])).toEqual({});
    expect(await run('anthropic', { statusCode: 500, contentType: 'text/event-stream' }, pieces(anthropicStream(), 10))).toEqual({});
    expect(await run('openai', { statusCode: 200, contentType: 'text/plain' }, [Buffer.from(JSON.stringify(anthropicMessage))])).toEqual(
      {},
    );
    expect(await run('openai', { statusCode: 200, contentType: 'image/png' }, [Buffer.from([0x89, 0x50, 0x4e, 0x47])])).toEqual({});
  });

  it('garbage under a JSON or SSE content type: no throw, nothing observed', async () => {
    const junk = [Buffer.from('{"usage": {"input_tokens": '), Buffer.from([0xff, 0xfe, 0x00, 0x7b]), Buffer.from('data: {not json}\n\n')];
    expect(await run('anthropic', JSON_ANSWER, junk)).toEqual({});
    expect(
      await run('anthropic', SSE, [Buffer.from('event: message_start\ndata: {"type":"message_start","message":{"usage":"x"}}\n\n')]),
    ).toEqual({});
    expect(await run('gemini', JSON_ANSWER, [Buffer.from('[{"usageMetadata": {"promptTokenCount": "many"}}, {]]]]}}}')])).toEqual({});
    expect(await run('openai', SSE, [Buffer.from('data: {"usage":{"prompt_tokens":-5,"completion_tokens":null}}\n\n')])).toEqual({});
  });

  it('a JSON body over 4 MiB is read from its head and tail: the usage at its end counts', async () => {
    const big = Buffer.from(
      JSON.stringify({ ...anthropicMessage, content: [{ type: 'text', text: 'x'.repeat(MAX_OBSERVED_JSON_BYTES) }] }),
    );
    expect(await runToEnd('anthropic', JSON_ANSWER, pieces(big, 65536))).toEqual({
      model: ANTHROPIC_MODEL,
      usage: { inputTokens: 2095, outputTokens: 503, cacheReadTokens: 4000, cacheWriteTokens: 2051 },
      complete: true,
    });
    // Many embeddings (OpenAI puts model and usage last), and text that only looks like a usage key.
    const embeddings = Buffer.from(
      JSON.stringify({
        object: 'list',
        data: Array.from({ length: 3000 }, (_, i) => ({
          object: 'embedding',
          index: i,
          embedding: Array.from({ length: 256 }, () => 0.012345),
        })),
        note: '"usage":{"prompt_tokens":999999}',
        model: 'text-embedding-3-small',
        usage: { prompt_tokens: 81234, total_tokens: 81234 },
      }),
    );
    expect(embeddings.length).toBeGreaterThan(MAX_OBSERVED_JSON_BYTES);
    expect(await runToEnd('openai', JSON_ANSWER, pieces(embeddings, 16384))).toEqual({
      model: 'text-embedding-3-small',
      usage: { inputTokens: 81234, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
      complete: true,
    });
    // Gemini: usageMetadata and modelVersion after the candidates (finishReason in the tail).
    const gemini = Buffer.from(
      JSON.stringify({
        candidates: [{ content: { parts: [{ text: 'y'.repeat(MAX_OBSERVED_JSON_BYTES) }], role: 'model' }, finishReason: 'STOP' }],
        usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 1500000 },
        modelVersion: GEMINI_MODEL,
      }),
    );
    expect(await runToEnd('gemini', JSON_ANSWER, pieces(gemini, 65536))).toEqual({
      model: GEMINI_MODEL,
      usage: { inputTokens: 12, outputTokens: 1500000, cacheReadTokens: 0, cacheWriteTokens: 0 },
      complete: true,
    });
  });

  it('says whether the final counts arrived: a whole stream yes, one cut before its last usage no', async () => {
    expect((await runToEnd('anthropic', SSE, [anthropicStream()])).complete).toBe(true);
    const body = anthropicStream();
    const cut = await runToEnd('anthropic', SSE, [body.subarray(0, body.indexOf('event: message_delta'))]);
    expect(cut.complete).toBeUndefined();
    expect(cut.usage).toEqual({ inputTokens: 25, outputTokens: 1, cacheReadTokens: 2000, cacheWriteTokens: 100 });
    expect((await runToEnd('openai', SSE, [openaiChatStream()])).complete).toBe(true);
    expect((await runToEnd('openai', SSE, [openaiChatStream({ includeUsage: false })])).complete).toBeUndefined();
    expect((await runToEnd('openai', SSE, [responsesStream()])).complete).toBe(true);
    const gemini = geminiArray();
    expect((await runToEnd('gemini', JSON_ANSWER, [gemini])).complete).toBe(true);
    // Gemini's counts are in every chunk, but final only in the one with the finishReason.
    const third = gemini.indexOf('"responseId"', gemini.indexOf('piece 2')) + 40;
    expect((await runToEnd('gemini', JSON_ANSWER, [gemini.subarray(0, third + 30)])).complete).toBeUndefined();
  });

  it('an answer without a content type is sniffed (JSON object, JSON array, SSE)', async () => {
    expect((await run('anthropic', { statusCode: 200 }, [Buffer.from(JSON.stringify(anthropicMessage))])).usage?.inputTokens).toBe(2095);
    expect((await run('gemini', { statusCode: 200 }, pieces(geminiArray(), 33))).usage).toEqual(GEMINI_USAGE);
    expect((await run('anthropic', { statusCode: 200 }, pieces(anthropicStream(), 33))).usage).toEqual(ANTHROPIC_STREAM_USAGE);
  });

  it('Uint8Array chunks (a web stream) pass as views of the same memory', async () => {
    const bytes = anthropicStream();
    const chunks = pieces(bytes, 50).map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice());
    expect(await run('anthropic', SSE, chunks)).toEqual({ model: ANTHROPIC_MODEL, usage: ANTHROPIC_STREAM_USAGE });
  });

  it('keeps back-pressure: an unread tap fills up and says so', () => {
    const tap = createUsageTap('anthropic', SSE);
    let accepted = true;
    for (let i = 0; i < 10 && accepted; i++) accepted = tap.stream.write(Buffer.alloc(16 * 1024, 0x61));
    expect(accepted).toBe(false);
    tap.stream.destroy();
  });

  it('lines up to the limit spanning many chunks are still read; longer ones are skipped', async () => {
    const huge = 'y'.repeat(200_000);
    const body = anthropicStream({ deltas: 2, text: () => huge });
    expect(await run('anthropic', SSE, pieces(body, 1000))).toEqual({ model: ANTHROPIC_MODEL, usage: ANTHROPIC_STREAM_USAGE });
    const completed = responsesStream().toString().replace('part 0 part 1', 'z'.repeat(MAX_OBSERVED_JSON_BYTES));
    expect((await run('openai', SSE, pieces(Buffer.from(completed), 65536))).usage).toBeUndefined();
  });
});

describe("usage tap: the fake provider's answers (what the end-to-end tests send)", () => {
  const fake = (provider: ProviderId) =>
    createApiSide({
      provider,
      apiKey: 'k',
      accountId: 'a',
      eventCount: 12,
      requireClaudeCodeSystem: false,
      accessTokenProblem: () => undefined,
    });
  const body = (provider: ProviderId, kind: 'json' | 'gemini-array') =>
    Buffer.from(JSON.stringify(fake(provider).answer({ kind }, 'api_key').body));
  const stream = (provider: ProviderId) => Buffer.from(fake(provider).sseEvents().join(''));
  const usage = (inputTokens: number, outputTokens: number) => ({ inputTokens, outputTokens, cacheReadTokens: 0, cacheWriteTokens: 0 });

  it('JSON, SSE and the compact Gemini array', async () => {
    expect(await run('anthropic', JSON_ANSWER, [body('anthropic', 'json')])).toEqual({ model: 'claude-fake', usage: usage(10, 5) });
    expect(await run('anthropic', SSE, pieces(stream('anthropic'), 9))).toEqual({ model: 'claude-fake', usage: usage(10, 12) });
    expect(await run('openai', JSON_ANSWER, [body('openai', 'json')])).toEqual({ model: 'gpt-fake', usage: usage(10, 5) });
    expect(await run('openai', SSE, pieces(stream('openai'), 9))).toEqual({ model: 'gpt-fake' }); // the fake sends no include_usage chunk
    expect(await run('gemini', JSON_ANSWER, [body('gemini', 'json')])).toEqual({ model: 'gemini-fake', usage: usage(10, 5) });
    expect(await run('gemini', SSE, pieces(stream('gemini'), 9))).toEqual({ model: 'gemini-fake', usage: usage(10, 5) });
    expect(await run('gemini', JSON_ANSWER, pieces(body('gemini', 'gemini-array'), 9))).toEqual({
      model: 'gemini-fake',
      usage: usage(10, 5),
    });
  });
});

describe('observeJsonBody (an answer already parsed)', () => {
  it('reads the same usage synchronously', () => {
    expect(observeJsonBody('anthropic', 200, anthropicMessage)).toEqual({
      model: ANTHROPIC_MODEL,
      usage: { inputTokens: 2095, outputTokens: 503, cacheReadTokens: 4000, cacheWriteTokens: 2051 },
      complete: true,
    });
    expect(observeJsonBody('gemini', 200, [geminiChunk(0, false), geminiChunk(1, true)])).toEqual({
      model: GEMINI_MODEL,
      usage: { inputTokens: 500, outputTokens: 320, cacheReadTokens: 1000, cacheWriteTokens: 0 },
      complete: true,
    });
    expect(observeJsonBody('openai', 200, { model: 'm', usage: { prompt_tokens: 3, completion_tokens: 4 } })).toEqual({
      model: 'm',
      usage: { inputTokens: 3, outputTokens: 4, cacheReadTokens: 0, cacheWriteTokens: 0 },
      complete: true,
    });
    expect(observeJsonBody('anthropic', 429, { type: 'error', error: { type: 'rate_limit_error' } })).toEqual({});
    expect(observeJsonBody('anthropic', 200, 'text')).toEqual({});
    expect(observeJsonBody('openai', 200, { usage: { prompt_tokens: 'x' } })).toEqual({});
  });
});
