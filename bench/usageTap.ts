// npx tsx bench/usageTap.ts — the usage watcher alone (watchUsage: what the proxy runs beside its
// relay on every call), per answer shape: µs per answer in a hot loop, and once after 5 ms idle (as
// a stream's events find it). Chunks are cut as a provider's are (one SSE event per chunk, a JSON
// body in 16 KiB pieces); compressed answers wait for the decompressor like the proxy does.
//
// `--base <checkout>`: the same against another checkout's src/usage/tap.ts, in this process, the
// two alternating round by round (so a busy machine weighs on both alike); the best round of each.
import path from 'node:path';
import zlib from 'node:zlib';
import type { ProviderId } from '../src/config.js';
import { watchUsage } from '../src/usage/tap.js';
import { argNumber, argValue, median, round, table } from './lib/stats.js';
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

type Watch = typeof watchUsage;

async function once(watch: Watch, provider: ProviderId, answer: Answer, chunks: Buffer[]): Promise<void> {
  const w = watch(provider, answer);
  for (const chunk of chunks) w.write(chunk);
  await w.end();
  if (w.observation().usage === undefined) throw new Error('no usage seen');
}

/** µs per answer over one round of `n`. */
async function hotRound(watch: Watch, [, provider, answer, chunks]: (typeof CASES)[number]): Promise<number> {
  const n = answer.contentEncoding !== undefined ? 2_000 : 20_000;
  const t = performance.now();
  for (let i = 0; i < n; i++) await once(watch, provider, answer, chunks);
  return ((performance.now() - t) * 1000) / n;
}

async function afterIdle(watch: Watch, [, provider, answer, chunks]: (typeof CASES)[number]): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 5));
  const t = performance.now();
  await once(watch, provider, answer, chunks);
  return (performance.now() - t) * 1000;
}

async function main() {
  const rounds = argNumber('rounds', 5);
  const base = argValue('base');
  if (base) return compare(path.resolve(base, 'src/usage/tap.ts'), rounds);
  const rows: (string | number)[][] = [];
  for (const c of CASES) {
    const hot: number[] = [];
    for (let r = 0; r < rounds; r++) hot.push(await hotRound(watchUsage, c));
    const cold: number[] = [];
    for (let i = 0; i < 10; i++) cold.push(await afterIdle(watchUsage, c));
    rows.push([c[0], round(median(hot), 2), round(median(cold), 1)]);
  }
  console.log(table(['answer', 'hot µs/answer (median of rounds)', 'after 5 ms idle µs (median of 10)'], rows));
}

async function compare(baseModule: string, rounds: number) {
  const baseWatch = ((await import(baseModule)) as { watchUsage: Watch }).watchUsage;
  const rows: (string | number)[][] = [];
  for (const c of CASES) {
    const hot = { base: [] as number[], this: [] as number[] };
    const cold = { base: [] as number[], this: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      hot.base.push(await hotRound(baseWatch, c));
      hot.this.push(await hotRound(watchUsage, c));
    }
    for (let i = 0; i < 10; i++) {
      cold.base.push(await afterIdle(baseWatch, c));
      cold.this.push(await afterIdle(watchUsage, c));
    }
    const best = (v: number[]) => Math.min(...v);
    rows.push([
      c[0],
      round(best(hot.base), 2),
      round(best(hot.this), 2),
      `${round((best(hot.this) / best(hot.base) - 1) * 100, 1)} %`,
      round(median(cold.base), 1),
      round(median(cold.this), 1),
    ]);
  }
  console.log(`base: ${baseModule}`);
  console.log(
    table(
      [
        'answer',
        'base hot µs (best round)',
        'this hot µs (best round)',
        'change',
        'base after 5 ms idle µs (median)',
        'this after idle µs',
      ],
      rows,
    ),
  );
}

runBench(main);
