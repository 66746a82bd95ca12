// Anthropic's usage dialect: the Messages API's SSE events (message_start carries the model and the
// input counts, message_delta the final counts, `error` an in-stream failure) and its JSON body.
// Anthropic reports tokens as Maestro counts them already: input_tokens excludes cache reads
// (cache_read_input_tokens) and writes (cache_creation_input_tokens).
import type { Seen, TokenUsage } from '../observation.js';
import { asObject, count, parse, sniffType } from '../jsonBytes.js';
import type { Interpreter } from './interpreter.js';

const ANTHROPIC_EVENTS = new Set(['message_start', 'message_delta', 'error']);

export function anthropicInterpreter(seen: Seen): Interpreter {
  function event(type: string, value: unknown): void {
    const data = asObject(value);
    if (!data) return;
    if (type === 'message_start') {
      const message = asObject(data.message);
      seen.setModel(message?.model);
      seen.setUsage(anthropicUsage(message?.usage, undefined));
    } else if (type === 'message_delta') {
      seen.setFinalUsage(anthropicUsage(data.usage, seen.usage));
    } else if (type === 'error') {
      const error = asObject(data.error);
      seen.setError(error?.type, error?.message);
    }
  }
  return {
    relevant: (name) => ANTHROPIC_EVENTS.has(name),
    sseData(eventName, data) {
      const type = eventName ?? sniffType(data);
      if (type === undefined || !ANTHROPIC_EVENTS.has(type)) return;
      event(type, parse(data));
    },
    streamedObject(bytes) {
      this.streamedValue(parse(bytes));
    },
    streamedValue(value) {
      const type = asObject(value)?.type;
      if (typeof type === 'string' && ANTHROPIC_EVENTS.has(type)) event(type, value);
      else this.body(value);
    },
    body(value) {
      const data = asObject(value);
      if (!data || data.type === 'error') return;
      seen.setModel(data.model);
      seen.setFinalUsage(anthropicUsage(data.usage, undefined));
    },
  };
}

/** Anthropic usage; `previous` (a stream's message_start) supplies what a message_delta leaves out. */
function anthropicUsage(value: unknown, previous: TokenUsage | undefined): TokenUsage | undefined {
  const u = asObject(value);
  if (!u) return undefined;
  const input = count(u.input_tokens);
  const output = count(u.output_tokens);
  const cacheRead = count(u.cache_read_input_tokens);
  const cacheWrite = count(u.cache_creation_input_tokens);
  if (input === undefined && output === undefined && cacheRead === undefined && cacheWrite === undefined) return undefined;
  return {
    inputTokens: input ?? previous?.inputTokens ?? 0,
    outputTokens: output ?? previous?.outputTokens ?? 0,
    cacheReadTokens: cacheRead ?? previous?.cacheReadTokens ?? 0,
    cacheWriteTokens: cacheWrite ?? previous?.cacheWriteTokens ?? 0,
  };
}
