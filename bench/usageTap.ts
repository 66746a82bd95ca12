// npx tsx bench/usageTap.ts — the usage watcher alone (watchUsage: what the proxy runs beside its
// relay on every call), per answer shape: µs per answer in a hot loop, and once after 5 ms idle (as
// a stream's events find it). Chunks are cut as a provider's are (one SSE event per chunk, a JSON
// body in 16 KiB pieces); compressed answers wait for the decompressor like the proxy does.
import zlib from 'node:zlib';
import type { ProviderId } from '../src/config.js';
import { watchUsage } from '../src/usage/tap.js';
import { argNumber, median, round, table } from './lib/stats.js';
import { runBench } from './lib/run.js';

type Answer = { statusCode: number; contentType?: string; contentEncoding?: string };
const SSE: Answer = { statusCode: 200, contentType: 'text/event-stream' };
const JSON_ANSWER: Answer = { statusCode: 200, contentType: 'application/json' };

const event = (name: string | undefined, data: unknown) =>
  Buffer.from(`${name ? `event: ${name}\n` : ''}data: ${JSON.stringify(data)}\n\n`);

function anthropicStream(deltas: number): Buffer[] {
  const usage = { input_tokens: 25, cache_creation_input_tokens: 100, cache_read_input_tokens: 2000, output_tokens: 1 };
  return [
    event('message_start', { type: 'message_start', message: { id: 'msg_1', model: 'claude-sonnet-4-5', content: [], usage } }),
    event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    event('ping', { type: 'ping' }),
    ...Array.from({ length: deltas }, (_, i) =>
      event('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text: `word ${i} and more words ` },
      }),
    ),
    event('content_block_stop', { type: 'content_block_stop', index: 0 }),
    event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: deltas } }),
    event('message_stop', { type: 'message_stop' }),
  ];
}

function openaiChatStream(chunks: number): Buffer[] {
  const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp' };
  return [
    ...Array.from({ length: chunks }, (_, i) =>
      event(undefined, { ...base, choices: [{ index: 0, delta: { content: `word ${i} ` }, finish_reason: null }], usage: null }),
    ),
    event(undefined, {
      ...base,
      choices: [],
      usage: { prompt_tokens: 1200, completion_tokens: chunks, prompt_tokens_details: { cached_tokens: 1024 } },
    }),
    Buffer.from('data: [DONE]\n\n'),
  ];
}

function geminiChunk(i: number, last: boolean): object {
  return {
    candidates: [{ content: { role: 'model', parts: [{ text: `word ${i} and more words ` }] }, ...(last ? { finishReason: 'STOP' } : {}) }],
    usageMetadata: { promptTokenCount: 1500, cachedContentTokenCount: 1000, candidatesTokenCount: i + 1, totalTokenCount: 1501 + i },
    modelVersion: 'gemini-2.5-flash',
  };
}

const geminiSse = (chunks: number) => Array.from({ length: chunks }, (_, i) => event(undefined, geminiChunk(i, i === chunks - 1)));

function geminiArray(chunks: number): Buffer[] {
  return Array.from({ length: chunks }, (_, i) =>
    Buffer.from(`${i === 0 ? '[' : ',\r\n'}${JSON.stringify(geminiChunk(i, i === chunks - 1))}${i === chunks - 1 ? ']' : ''}`),
  );
}

function jsonBody(bytes: number): Buffer[] {
  const text = 'x'.repeat(Math.max(0, bytes - 300));
  const body = Buffer.from(
    JSON.stringify({
      id: 'msg_1',
      type: 'message',
      model: 'claude-sonnet-4-5',
      content: [{ type: 'text', text }],
      usage: { input_tokens: 2095, output_tokens: 503, cache_read_input_tokens: 4000, cache_creation_input_tokens: 2051 },
    }),
  );
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += 16 * 1024) out.push(body.subarray(i, i + 16 * 1024));
  return out;
}

const CASES: Array<[string, ProviderId, Answer, Buffer[]]> = [
  ['anthropic SSE, 100 deltas', 'anthropic', SSE, anthropicStream(100)],
  ['anthropic JSON, 2 KiB', 'anthropic', JSON_ANSWER, jsonBody(2 * 1024)],
  ['anthropic JSON, 200 KiB', 'anthropic', JSON_ANSWER, jsonBody(200 * 1024)],
  ['openai chat SSE, 100 chunks', 'openai', SSE, openaiChatStream(100)],
  ['gemini SSE, 50 chunks', 'gemini', SSE, geminiSse(50)],
  ['gemini array, 50 chunks', 'gemini', JSON_ANSWER, geminiArray(50)],
  [
    'anthropic SSE gzip, 100 deltas',
    'anthropic',
    { ...SSE, contentEncoding: 'gzip' },
    [zlib.gzipSync(Buffer.concat(anthropicStream(100)))],
  ],
  [
    'anthropic JSON br, 2 KiB',
    'anthropic',
    { ...JSON_ANSWER, contentEncoding: 'br' },
    [zlib.brotliCompressSync(Buffer.concat(jsonBody(2048)))],
  ],
];

async function once(provider: ProviderId, answer: Answer, chunks: Buffer[]): Promise<void> {
  const watch = watchUsage(provider, answer);
  for (const chunk of chunks) watch.write(chunk);
  await watch.end();
  if (watch.observation().usage === undefined) throw new Error('no usage seen');
}

async function main() {
  const rounds = argNumber('rounds', 5);
  const rows: (string | number)[][] = [];
  for (const [name, provider, answer, chunks] of CASES) {
    const compressed = answer.contentEncoding !== undefined;
    const n = compressed ? 2_000 : 20_000;
    const hot: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t = performance.now();
      for (let i = 0; i < n; i++) await once(provider, answer, chunks);
      hot.push(((performance.now() - t) * 1000) / n);
    }
    const cold: number[] = [];
    for (let i = 0; i < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const t = performance.now();
      await once(provider, answer, chunks);
      cold.push((performance.now() - t) * 1000);
    }
    rows.push([name, round(median(hot), 2), round(median(cold), 1)]);
  }
  console.log(table(['answer', 'hot µs/answer (median of rounds)', 'after 5 ms idle µs (median of 10)'], rows));
}

runBench(main);
