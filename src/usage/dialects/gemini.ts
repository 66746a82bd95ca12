// Gemini's usage dialect: GenerateContentResponse chunks (SSE, or the elements of a streamed JSON
// array) and bodies. usageMetadata is cumulative and repeated in every chunk, final in the one with
// a finishReason. Gemini counts cached tokens inside the prompt total: inputTokens =
// promptTokenCount − cachedContentTokenCount + toolUsePromptTokenCount, cacheReadTokens =
// cachedContentTokenCount, outputTokens = candidatesTokenCount + thoughtsTokenCount (thoughts are
// billed as output and are not in candidatesTokenCount).
import type { Seen, TokenUsage } from '../observation.js';
import {
  asObject,
  closingEnd,
  count,
  findKey,
  findLastKey,
  KEY_ERROR,
  KEY_FINISH_REASON,
  KEY_MODEL_VERSION,
  KEY_USAGE_METADATA,
  parse,
  startsWithKey,
  stringAt,
  valueAt,
} from '../jsonBytes.js';
import type { Interpreter } from './interpreter.js';
import { LastChunks } from './lastChunks.js';

export function geminiInterpreter(seen: Seen): Interpreter {
  // usageMetadata is cumulative and repeated in every chunk: only the last one counts. So chunks are
  // only kept, not searched, and the last ones are read (the small usageMetadata object cut out and
  // parsed, modelVersion) when the observation is asked for.
  const chunks = new LastChunks();
  function readChunks(): void {
    for (const bytes of chunks.take()) {
      // usageMetadata follows the candidates: search from the end so no candidate content is mistaken for it.
      const usageAt = findLastKey(bytes, KEY_USAGE_METADATA);
      if (usageAt === -1) continue;
      const start = valueAt(bytes, usageAt + KEY_USAGE_METADATA.length);
      const end = bytes[start] === 0x7b ? closingEnd(bytes, start) : -1;
      if (end === -1) continue;
      // Cumulative in every chunk: the counts are final only in the chunk that ends the answer.
      const usage = geminiUsage(parse(bytes.subarray(start, end)));
      if (findKey(bytes, KEY_FINISH_REASON, 0) !== -1) seen.setFinalUsage(usage);
      else seen.setUsage(usage);
      const at = findKey(bytes, KEY_MODEL_VERSION, end);
      if (at !== -1) seen.setModel(stringAt(bytes, valueAt(bytes, at + KEY_MODEL_VERSION.length)));
      return;
    }
  }
  /** One GenerateContentResponse of a stream. */
  function chunk(bytes: Buffer): void {
    if (startsWithKey(bytes, KEY_ERROR)) return streamError(parse(bytes));
    if (chunks.keep(bytes)) seen.defer(readChunks);
  }
  function streamError(value: unknown): void {
    const error = asObject(asObject(value)?.error);
    if (error) seen.setError(error.status ?? (typeof error.code === 'number' ? String(error.code) : error.code), error.message);
  }
  return {
    relevant: () => true,
    sseData: (_eventName, data) => chunk(data),
    streamedObject: chunk,
    streamedValue(value) {
      this.body(value);
      streamError(value);
    },
    body(value) {
      const data = asObject(value);
      if (!data) return;
      seen.setModel(data.modelVersion);
      const usage = geminiUsage(data.usageMetadata);
      const finished = Array.isArray(data.candidates) && data.candidates.some((c) => asObject(c)?.finishReason !== undefined);
      if (finished) seen.setFinalUsage(usage);
      else seen.setUsage(usage);
    },
  };
}

function geminiUsage(value: unknown): TokenUsage | undefined {
  const u = asObject(value);
  if (!u) return undefined;
  const prompt = count(u.promptTokenCount);
  const cached = count(u.cachedContentTokenCount);
  const toolUse = count(u.toolUsePromptTokenCount);
  const candidates = count(u.candidatesTokenCount);
  const thoughts = count(u.thoughtsTokenCount);
  if (prompt === undefined && candidates === undefined && thoughts === undefined && cached === undefined && toolUse === undefined) {
    return undefined;
  }
  const cacheRead = Math.min(cached ?? 0, prompt ?? 0);
  return {
    inputTokens: (prompt ?? 0) - cacheRead + (toolUse ?? 0),
    outputTokens: (candidates ?? 0) + (thoughts ?? 0),
    cacheReadTokens: cacheRead,
    cacheWriteTokens: 0,
  };
}
