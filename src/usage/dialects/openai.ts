// OpenAI's usage dialect: chat completions (unnamed SSE chunks, the usage in the last one before
// [DONE] when the client asked for it), the Responses API and the Codex backend (named events, the
// final usage in response.completed / .incomplete / .failed), and JSON bodies (embeddings too).
// OpenAI counts cached tokens inside the prompt total, so they are subtracted from it:
// inputTokens = prompt_tokens (or input_tokens) − cached_tokens, cacheReadTokens = cached_tokens,
// cacheWriteTokens = 0 (OpenAI does not report cache writes), outputTokens = completion_tokens (or
// output_tokens, which include reasoning tokens).
import type { Seen, TokenUsage } from '../observation.js';
import {
  asObject,
  count,
  findKey,
  findLastKey,
  KEY_ERROR,
  KEY_MODEL,
  KEY_USAGE,
  parse,
  sniffType,
  startsWithKey,
  stringAt,
  valueAt,
} from '../jsonBytes.js';
import type { Interpreter } from './interpreter.js';
import { LastChunks } from './lastChunks.js';

/** Responses API events whose data carries the final usage (in data.response). */
const OPENAI_FINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

export function openaiInterpreter(seen: Seen): Interpreter {
  const chunks = new LastChunks();
  function readChunks(): void {
    for (const data of chunks.take()) {
      const usageAt = findLastKey(data, KEY_USAGE);
      if (usageAt === -1 || data[valueAt(data, usageAt + KEY_USAGE.length)] !== 0x7b /* { */) continue;
      const chunk = asObject(parse(data));
      seen.setModel(chunk?.model);
      seen.setFinalUsage(openaiUsage(chunk?.usage));
      return;
    }
  }
  function responseEvent(type: string, value: unknown): void {
    const data = asObject(value);
    if (!data) return;
    if (type === 'error') {
      const error = asObject(data.error);
      seen.setError(error?.type ?? error?.code ?? data.code, error?.message ?? data.message);
      return;
    }
    const response = asObject(data.response);
    seen.setModel(response?.model);
    seen.setFinalUsage(openaiUsage(response?.usage));
    if (type === 'response.failed') {
      const error = asObject(response?.error);
      seen.setError(error?.code ?? error?.type ?? 'response.failed', error?.message);
    }
  }
  return {
    relevant: (name) => OPENAI_FINAL_EVENTS.has(name) || name === 'error' || (seen.model === undefined && name === 'response.created'),
    sseData(eventName, data) {
      const type = eventName ?? sniffType(data);
      if (type !== undefined) {
        // The Responses API (and the Codex backend): named events.
        if (OPENAI_FINAL_EVENTS.has(type) || type === 'error') responseEvent(type, parse(data));
        else if (seen.model === undefined && type === 'response.created') {
          const at = findKey(data, KEY_MODEL, 0);
          if (at !== -1) seen.setModel(stringAt(data, valueAt(data, at + KEY_MODEL.length)));
        }
        return;
      }
      // Chat completions: unnamed chunks, `[DONE]` at the end. The usage (when the client asked for
      // stream_options.include_usage) comes in the last chunk before [DONE] (every other chunk says
      // "usage":null), so chunks are only kept, not searched: the last ones are read when the
      // observation is asked for.
      if (startsWithKey(data, KEY_ERROR)) {
        const error = asObject(asObject(parse(data))?.error);
        if (error) seen.setError(error.type ?? error.code, error.message);
        return;
      }
      if (data[0] === 0x5b /* [DONE] */) return;
      if (seen.model === undefined) {
        const at = findKey(data, KEY_MODEL, 0);
        if (at !== -1) seen.setModel(stringAt(data, valueAt(data, at + KEY_MODEL.length)));
      }
      if (chunks.keep(data)) seen.defer(readChunks);
    },
    streamedObject(bytes) {
      this.streamedValue(parse(bytes));
    },
    streamedValue(value) {
      const error = asObject(asObject(value)?.error);
      if (error) seen.setError(error.type ?? error.code, error.message);
      else this.body(value);
    },
    body(value) {
      const data = asObject(value);
      if (!data || data.error !== undefined) return;
      seen.setModel(data.model);
      seen.setFinalUsage(openaiUsage(data.usage));
    },
  };
}

/** OpenAI usage: chat completions and embeddings (prompt_tokens…) or the Responses API (input_tokens…). */
function openaiUsage(value: unknown): TokenUsage | undefined {
  const u = asObject(value);
  if (!u) return undefined;
  let prompt = count(u.prompt_tokens);
  let output: number | undefined;
  let cached: number | undefined;
  if (prompt !== undefined) {
    output = count(u.completion_tokens);
    cached = count(asObject(u.prompt_tokens_details)?.cached_tokens);
  } else {
    prompt = count(u.input_tokens);
    output = count(u.output_tokens);
    cached = count(asObject(u.input_tokens_details)?.cached_tokens);
  }
  if (prompt === undefined && output === undefined) return undefined;
  const cacheRead = Math.min(cached ?? 0, prompt ?? 0);
  return { inputTokens: (prompt ?? 0) - cacheRead, outputTokens: output ?? 0, cacheReadTokens: cacheRead, cacheWriteTokens: 0 };
}
