// Reads token usage out of a provider's answer while it streams to the client: a pass-through
// Transform that hands every chunk on untouched (same Buffer, same order, synchronously) and only
// watches. It never throws into the pipeline: a parse problem, an unexpected shape or a corrupt
// compressed body just ends the watching.
//
// Cost matters (this sits on every proxied call), so the watching works on bytes:
// - SSE: lines are found with Buffer.indexOf; an event the usage does not depend on (Anthropic's
//   content_block_delta, ping, OpenAI's response.output_text.delta…) is recognised from its
//   `event:` line (or a `{"type":"…"` prefix) and its data is never decoded nor parsed. Only the
//   few events that carry usage, the model or an error are JSON.parse'd. Where the usage can be in
//   any chunk but only the last one counts (Gemini's cumulative usageMetadata; OpenAI chat
//   completions, whose usage chunk is the last before [DONE]), the last two chunks are kept (views,
//   no copy) and read only when the observation is asked for; for Gemini only the small
//   usageMetadata object is cut out and parsed.
// - A JSON body is kept (at most 4 MiB, decompressed) and parsed once at the end.
// - Gemini's streamed JSON array (`[{…},\r\n{…}]`) is split into its elements by a string-aware
//   bracket scanner; each element is treated like one SSE chunk.
// - Compressed answers: a copy of each chunk goes through node:zlib for the watching only; the
//   bytes passed on stay compressed. zlib works asynchronously, so the end of the stream waits for
//   the decompressor to catch up (chunks themselves are never held back).
//
// Token accounting is the same for every provider: `inputTokens` are the uncached input tokens,
// `cacheReadTokens` the input tokens served from the provider's cache, `cacheWriteTokens` those
// written to it, `outputTokens` everything generated (reasoning/thinking included). Anthropic
// reports it that way already (input_tokens excludes cache reads and writes); OpenAI and Gemini
// count cached tokens inside the prompt total, so they are subtracted from it:
// - OpenAI: inputTokens = prompt_tokens (or input_tokens) − cached_tokens, cacheReadTokens =
//   cached_tokens, cacheWriteTokens = 0 (OpenAI does not report cache writes), outputTokens =
//   completion_tokens (or output_tokens, which include reasoning tokens).
// - Gemini: inputTokens = promptTokenCount − cachedContentTokenCount + toolUsePromptTokenCount,
//   cacheReadTokens = cachedContentTokenCount, outputTokens = candidatesTokenCount +
//   thoughtsTokenCount (thoughts are billed as output and are not in candidatesTokenCount).
import { Transform } from 'node:stream';
import zlib from 'node:zlib';
import type { ProviderId } from '../model/providers.js';

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export interface CallObservation {
  /** The model the provider says answered (response body/stream), else undefined. */
  model?: string;
  /** Undefined when the answer carried no usage (e.g. an error body, or a stream cut before any). */
  usage?: TokenUsage;
  /** An error event inside a 200 stream (Anthropic `event: error` with e.g. rate_limit_error / overloaded_error; OpenAI/Gemini error objects in a stream). */
  streamError?: { type: string; message?: string };
  /**
   * True when the provider's final counts arrived (Anthropic's message_delta, OpenAI's usage chunk
   * or final Responses event, Gemini's last chunk with its finishReason, a JSON body's usage).
   * Without it, `usage` is at most what was reported before the answer stopped.
   */
  complete?: true;
}

/** The most of a JSON body (decompressed) kept for parsing; of a bigger body only its head and tail are read. */
export const MAX_OBSERVED_JSON_BYTES = 4 * 1024 * 1024;
/** Of a JSON body over MAX_OBSERVED_JSON_BYTES: the bytes kept from its start (the model) and its end (the usage). */
const BIG_BODY_HEAD_BYTES = 64 * 1024;
const BIG_BODY_TAIL_BYTES = 256 * 1024;
/** The longest SSE line (or JSON array element) considered; a longer one is skipped. */
const MAX_LINE_BYTES = MAX_OBSERVED_JSON_BYTES;

/**
 * A pass-through Transform: every chunk leaves exactly as it came (same Buffer, same order, back-pressure intact); it only watches.
 * `observation()` may be called at any time and returns what was seen so far.
 */
export function createUsageTap(
  provider: ProviderId,
  answer: { statusCode: number; contentType?: string; contentEncoding?: string },
): { stream: Transform; observation(): CallObservation } {
  const seen = new Seen();
  let sink = watcherFor(provider, answer, seen);

  const stream = new Transform({
    transform(chunk: Buffer | Uint8Array, _encoding, done) {
      if (sink) {
        try {
          sink.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        } catch {
          sink.abandon();
          sink = undefined;
        }
      }
      done(null, chunk);
    },
    flush(done) {
      const current = sink;
      sink = undefined;
      if (!current) return done();
      try {
        current.end(() => done());
      } catch {
        done();
      }
    },
    destroy(error, done) {
      try {
        sink?.abandon();
      } catch {
        // nothing to undo
      }
      sink = undefined;
      done(error);
    },
  });

  return { stream, observation: () => seen.snapshot() };
}

/**
 * The same watching without a stream stage, for a caller that already has the chunks (the proxy
 * listens to the upstream body's 'data' beside its pipeline: an extra Transform in the pipeline
 * costs more than the watching itself). `end` resolves once everything is read (a compressed
 * answer's decompressor caught up); `abandon` stops at once; `observation` is what was seen so far.
 */
export function watchUsage(
  provider: ProviderId,
  answer: { statusCode: number; contentType?: string; contentEncoding?: string },
): { write(chunk: Buffer): void; end(): Promise<void>; abandon(): void; observation(): CallObservation } {
  const seen = new Seen();
  let sink = watcherFor(provider, answer, seen);
  const stop = () => {
    try {
      sink?.abandon();
    } catch {
      // nothing to undo
    }
    sink = undefined;
  };
  return {
    write(chunk) {
      if (!sink) return;
      try {
        sink.write(chunk);
      } catch {
        stop();
      }
    },
    end() {
      const current = sink;
      sink = undefined;
      if (!current) return Promise.resolve();
      return new Promise<void>((resolve) => {
        try {
          current.end(resolve);
        } catch {
          resolve();
        }
      });
    },
    abandon: stop,
    observation: () => seen.snapshot(),
  };
}

/**
 * The same reading for an answer body that is already a value (e.g. a durable call's final answer,
 * parsed elsewhere), synchronously. An array is read as a streamed answer (Gemini's
 * `:streamGenerateContent` without `alt=sse`).
 */
export function observeJsonBody(provider: ProviderId, statusCode: number, body: unknown): CallObservation {
  const seen = new Seen();
  if (statusCode < 200 || statusCode >= 300 || typeof body !== 'object' || body === null) return seen.snapshot();
  const interpret = interpreterFor(provider, seen);
  try {
    if (Array.isArray(body)) for (const element of body) interpret.streamedValue(element);
    else interpret.body(body);
  } catch {
    // an unexpected shape stays here
  }
  return seen.snapshot();
}

// ---------------------------------------------------------------------------------------------
// What was seen so far

class Seen {
  model?: string;
  usage?: TokenUsage;
  streamError?: { type: string; message?: string };
  complete = false;

  /** Reading left for when the observation is asked for (Gemini's last usageMetadata). */
  private deferred: (() => void) | undefined;

  defer(read: () => void): void {
    this.deferred = read;
  }

  snapshot(): CallObservation {
    const read = this.deferred;
    this.deferred = undefined;
    try {
      read?.();
    } catch {
      // a parse problem stays here
    }
    const out: CallObservation = {};
    if (this.model !== undefined) out.model = this.model;
    if (this.usage) out.usage = { ...this.usage };
    if (this.streamError) out.streamError = { ...this.streamError };
    if (this.complete && this.usage) out.complete = true;
    return out;
  }

  setModel(value: unknown): void {
    if (typeof value === 'string' && value.length > 0) this.model = value;
  }

  setUsage(usage: TokenUsage | undefined): void {
    if (usage) this.usage = usage;
  }

  /** The provider's final counts: what setUsage was given last is the whole call's. */
  setFinalUsage(usage: TokenUsage | undefined): void {
    if (!usage) return;
    this.usage = usage;
    this.complete = true;
  }

  setError(type: unknown, message: unknown): void {
    if (this.streamError) return; // the first error is the cause; later ones are fallout
    this.streamError = { type: typeof type === 'string' && type ? type : 'error' };
    if (typeof message === 'string') this.streamError.message = message;
  }
}

/** Receives the (decompressed) bytes of an answer. */
interface Sink {
  write(bytes: Buffer): void;
  /** The answer ended: finish (parse what was kept), then call back. Never throws. */
  end(done: () => void): void;
  /** Stop watching and free what is held. */
  abandon(): void;
  /** False once nothing more can be observed (e.g. a JSON body over the limit): decompressing for it can stop. */
  readonly active: boolean;
}

function watcherFor(
  provider: ProviderId,
  answer: { statusCode: number; contentType?: string; contentEncoding?: string },
  seen: Seen,
): Sink | undefined {
  // Usage only comes with a successful answer; error bodies carry none.
  if (answer.statusCode < 200 || answer.statusCode >= 300 || answer.statusCode === 204) return undefined;
  const type = mediaType(answer.contentType);
  const interpret = interpreterFor(provider, seen);
  let inner: Sink;
  if (type === 'text/event-stream') inner = new SseSink(interpret);
  else if (type === undefined || type === 'application/json' || type.endsWith('+json')) inner = new JsonSink(interpret, type === undefined);
  else return undefined;
  const encoding = answer.contentEncoding?.trim().toLowerCase();
  if (!encoding || encoding === 'identity' || encoding === 'none') return inner;
  if (encoding === 'gzip' || encoding === 'x-gzip' || encoding === 'br' || encoding === 'deflate')
    return new Decompressing(encoding, inner);
  return undefined; // zstd, several codings, …: not observed
}

function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// Decompression (a copy, for the watching only)

class Decompressing implements Sink {
  private zl: zlib.Gunzip | zlib.BrotliDecompress | zlib.Inflate | zlib.InflateRaw | undefined;
  private failed = false;
  private ended = false;
  private waiting: (() => void) | undefined;

  constructor(
    private readonly encoding: 'gzip' | 'x-gzip' | 'br' | 'deflate',
    private readonly inner: Sink,
  ) {}

  /** deflate: a first byte on its own, until the second says whether a zlib header is there. */
  private head: Buffer | undefined;

  write(bytes: Buffer): void {
    if (this.failed) return;
    if (!this.zl) {
      if (this.encoding === 'deflate' && (this.head?.length ?? 0) + bytes.length < 2) {
        this.head = Buffer.from(bytes);
        return;
      }
      if (this.head) {
        bytes = Buffer.concat([this.head, bytes]);
        this.head = undefined;
      }
      this.zl = this.open(bytes);
    }
    this.zl.write(bytes);
  }

  private open(first: Buffer) {
    let zl: zlib.Gunzip | zlib.BrotliDecompress | zlib.Inflate | zlib.InflateRaw;
    if (this.encoding === 'br') zl = zlib.createBrotliDecompress();
    else if (this.encoding === 'deflate') {
      // HTTP "deflate" should be zlib-wrapped (RFC 9110), but some servers send raw deflate.
      const zlibWrapped = (first[0]! & 0x0f) === 8 && ((first[0]! << 8) | first[1]!) % 31 === 0;
      zl = zlibWrapped ? zlib.createInflate() : zlib.createInflateRaw();
    } else zl = zlib.createGunzip();
    zl.on('data', (out: Buffer) => {
      if (this.failed) return;
      try {
        this.inner.write(out);
        if (!this.inner.active) this.fail(); // e.g. a JSON body over the limit: no use decompressing the rest
      } catch {
        this.fail();
      }
    });
    zl.on('error', () => this.fail());
    zl.on('end', () => this.finish());
    zl.on('close', () => this.finish());
    return zl;
  }

  private fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.inner.abandon();
    this.zl?.destroy();
    this.release();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.failed) return this.release();
    this.inner.end(() => this.release());
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  end(done: () => void): void {
    if (this.failed || !this.zl) {
      // Nothing (or a lone byte) came: there is nothing to decompress.
      this.abandon();
      done();
      return;
    }
    this.waiting = done;
    if (this.ended) return this.release();
    this.zl.end();
  }

  abandon(): void {
    this.failed = true;
    this.inner.abandon();
    this.zl?.destroy();
    this.waiting = undefined;
  }

  get active(): boolean {
    return !this.failed;
  }
}

// ---------------------------------------------------------------------------------------------
// Per-provider interpretation of one SSE data payload or one JSON value

interface Interpreter {
  /** Whether the data of an SSE event with this name can matter (false: skip it without decoding). */
  relevant(eventName: string): boolean;
  /** One SSE `data:` payload; `eventName` from the `event:` line, if any. */
  sseData(eventName: string | undefined, data: Buffer): void;
  /** One element of a streamed JSON array, as bytes. */
  streamedObject(bytes: Buffer): void;
  /** One element of a streamed JSON array, already parsed. */
  streamedValue(value: unknown): void;
  /** A whole (non-streamed) JSON body. */
  body(value: unknown): void;
}

function interpreterFor(provider: ProviderId, seen: Seen): Interpreter {
  switch (provider) {
    case 'anthropic':
      return anthropic(seen);
    case 'openai':
      return openai(seen);
    case 'gemini':
      return gemini(seen);
  }
}

const ANTHROPIC_EVENTS = new Set(['message_start', 'message_delta', 'error']);

function anthropic(seen: Seen): Interpreter {
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

/** Responses API events whose data carries the final usage (in data.response). */
const OPENAI_FINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

function openai(seen: Seen): Interpreter {
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

function gemini(seen: Seen): Interpreter {
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

/**
 * The last two chunks of a stream, not read yet (views, not copies). Two, so that a last chunk
 * without the usage (one the provider sends after it) does not lose it.
 */
class LastChunks {
  private last: Buffer | undefined;
  private previous: Buffer | undefined;

  /** Keeps a chunk; true when nothing was kept before (the reading needs scheduling). */
  keep(bytes: Buffer): boolean {
    const first = this.last === undefined;
    this.previous = this.last;
    this.last = bytes;
    return first;
  }

  /** The kept chunks, newest first, and forgets them. */
  take(): Buffer[] {
    const out = this.last === undefined ? [] : this.previous === undefined ? [this.last] : [this.last, this.previous];
    this.last = this.previous = undefined;
    return out;
  }
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

// ---------------------------------------------------------------------------------------------
// SSE: lines, on bytes

const DATA = [0x64, 0x61, 0x74, 0x61, 0x3a]; // data:
const EVENT = [0x65, 0x76, 0x65, 0x6e, 0x74, 0x3a]; // event:

/** Whether the line `bytes[start, end)` starts with the field name `field` (bytes, colon included). */
function isField(bytes: Buffer, start: number, end: number, field: readonly number[]): boolean {
  if (end - start < field.length) return false;
  for (let i = 0; i < field.length; i++) if (bytes[start + i] !== field[i]) return false;
  return true;
}

function sameAscii(bytes: Buffer, start: number, end: number, text: string): boolean {
  if (end - start !== text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[start + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** `bytes[start, end)` as a trimmed ASCII string (an event name), or undefined when empty or too long. */
function asciiTrimmed(bytes: Buffer, start: number, end: number): string | undefined {
  while (start < end && (bytes[start] === 0x20 || bytes[start] === 0x09)) start++;
  while (end > start && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09)) end--;
  if (start === end || end - start > 128) return undefined;
  let out = '';
  for (let i = start; i < end; i++) out += String.fromCharCode(bytes[i]!);
  return out;
}

class SseSink implements Sink {
  private eventName: string | undefined;
  /** Whether the current event's data can matter (computed once per event name). */
  private eventRelevant = true;
  /** The last event name seen and its relevance: events repeat, so the name is not rebuilt for each. */
  private lastName: string | undefined;
  private lastRelevant = true;
  /** An unfinished line: its pieces (views of earlier chunks) and their total length. */
  private pieces: Buffer[] = [];
  private pending = 0;
  /** The unfinished line is being skipped (irrelevant, or too long). */
  private skipping = false;
  private prefixChecked = false;
  private done = false;

  constructor(private readonly interpret: Interpreter) {}

  write(bytes: Buffer): void {
    if (this.done) return;
    let pos = 0;
    const n = bytes.length;
    while (pos < n) {
      const nl = bytes.indexOf(0x0a, pos);
      if (nl === -1) return this.hold(bytes, pos);
      if (this.skipping || this.pending + nl - pos > MAX_LINE_BYTES) this.reset();
      else if (this.pending === 0) this.line(bytes, pos, nl);
      else {
        this.pieces.push(bytes.subarray(pos, nl));
        const line = Buffer.concat(this.pieces, this.pending + nl - pos);
        this.reset();
        this.line(line, 0, line.length);
      }
      pos = nl + 1;
    }
  }

  private hold(bytes: Buffer, from: number): void {
    if (this.skipping) return;
    this.pending += bytes.length - from;
    if (this.pending > MAX_LINE_BYTES) {
      this.pieces = [];
      this.skipping = true;
      return;
    }
    const tail = from === 0 ? bytes : bytes.subarray(from);
    this.pieces.push(tail);
    // A data line of an event that cannot matter is dropped as soon as its start is known.
    if (!this.prefixChecked && this.pending >= 5 && this.eventName !== undefined) {
      this.prefixChecked = true;
      const start = this.pieces.length === 1 ? tail : Buffer.concat(this.pieces, this.pending);
      if (!this.eventRelevant && isField(start, 0, start.length, DATA)) {
        this.pieces = [];
        this.skipping = true;
      }
    }
  }

  private reset(): void {
    if (this.pending !== 0) this.pieces = [];
    this.pending = 0;
    this.skipping = false;
    this.prefixChecked = false;
  }

  /** One line, `bytes[start, end)` without its \n. */
  private line(bytes: Buffer, start: number, end: number): void {
    if (end > start && bytes[end - 1] === 0x0d) end--;
    if (end === start) {
      this.eventName = undefined; // end of an event
      this.eventRelevant = true;
    } else if (isField(bytes, start, end, DATA)) {
      if (!this.eventRelevant) return;
      let from = start + DATA.length;
      if (bytes[from] === 0x20) from++;
      this.interpret.sseData(this.eventName, bytes.subarray(from, end));
    } else if (isField(bytes, start, end, EVENT)) {
      this.event(bytes, start + EVENT.length, end);
    }
    // comments (`: ping`), id:, retry:: nothing to see
  }

  private event(bytes: Buffer, start: number, end: number): void {
    while (start < end && bytes[start] === 0x20) start++;
    if (this.lastName === undefined || !sameAscii(bytes, start, end, this.lastName)) {
      this.lastName = asciiTrimmed(bytes, start, end);
      this.lastRelevant = this.lastName === undefined || this.interpret.relevant(this.lastName);
    }
    this.eventName = this.lastName;
    this.eventRelevant = this.lastRelevant;
  }

  end(done: () => void): void {
    if (!this.done && !this.skipping && this.pending > 0) {
      const line = Buffer.concat(this.pieces, this.pending);
      this.reset();
      try {
        this.line(line, 0, line.length);
      } catch {
        // a parse problem stays here
      }
    }
    this.abandon();
    done();
  }

  abandon(): void {
    this.done = true;
    this.reset();
  }

  get active(): boolean {
    return !this.done;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON: a body kept and parsed once, or a streamed array split into its elements

class JsonSink implements Sink {
  private mode: 'sniff' | 'body' | 'big' | 'array' | 'sse' | 'off' = 'sniff';
  private pieces: Buffer[] = [];
  private size = 0;
  /** A body over MAX_OBSERVED_JSON_BYTES: its first bytes (where the model is) and its last pieces (where the usage is). */
  private head: Buffer | undefined;
  private tail: BoundedTail | undefined;
  private array: ArrayScanner | undefined;
  private sse: SseSink | undefined;

  /** `sniffSse`: no content type was given, so an SSE stream is recognised by its first byte too. */
  constructor(
    private readonly interpret: Interpreter,
    private readonly sniffSse: boolean,
  ) {}

  write(bytes: Buffer): void {
    if (this.mode === 'sniff') {
      let i = 0;
      while (i < bytes.length && isSpace(bytes[i]!)) i++;
      if (i === bytes.length) return;
      const first = bytes[i]!;
      if (first === 0x7b /* { */) this.mode = 'body';
      else if (first === 0x5b /* [ */) {
        this.mode = 'array';
        this.array = new ArrayScanner((element) => this.interpret.streamedObject(element));
      } else if (this.sniffSse && (first === 0x3a || first === 0x64 || first === 0x65) /* ':' comment, 'd'ata:, 'e'vent: */) {
        this.mode = 'sse';
        this.sse = new SseSink(this.interpret);
      } else this.mode = 'off';
    }
    if (this.mode === 'body') {
      this.size += bytes.length;
      this.pieces.push(bytes);
      if (this.size > MAX_OBSERVED_JSON_BYTES) this.goBig();
    } else if (this.mode === 'big') this.tail!.push(bytes);
    else if (this.mode === 'array') this.array!.write(bytes);
    else if (this.mode === 'sse') this.sse!.write(bytes);
  }

  /** Too big to keep whole (many embeddings, say): keep its head and a bounded tail, and read the usage from those. */
  private goBig(): void {
    const whole = Buffer.concat(this.pieces, this.size);
    this.head = Buffer.from(whole.subarray(0, BIG_BODY_HEAD_BYTES));
    this.tail = new BoundedTail(BIG_BODY_TAIL_BYTES);
    this.tail.push(whole.subarray(whole.length - BIG_BODY_TAIL_BYTES));
    this.pieces = [];
    this.mode = 'big';
  }

  end(done: () => void): void {
    try {
      if (this.mode === 'body') this.interpret.body(parse(Buffer.concat(this.pieces, this.size)));
      else if (this.mode === 'big') this.interpret.body(headAndTail(this.head!, this.tail!.take()));
      else if (this.mode === 'sse') return this.sse!.end(done);
    } catch {
      // a parse problem stays here
    }
    this.abandon();
    done();
  }

  abandon(): void {
    this.mode = 'off';
    this.pieces = [];
    this.head = undefined;
    this.tail = undefined;
    this.array = undefined;
    this.sse?.abandon();
  }

  get active(): boolean {
    return this.mode !== 'off';
  }
}

/** The last `limit` bytes (at least) of a stream, as the pieces they came in. */
class BoundedTail {
  private pieces: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  push(bytes: Buffer): void {
    this.pieces.push(bytes);
    this.size += bytes.length;
    while (this.pieces.length > 1 && this.size - this.pieces[0]!.length >= this.limit) this.size -= this.pieces.shift()!.length;
  }

  take(): Buffer {
    const out = Buffer.concat(this.pieces, this.size);
    this.pieces = [];
    this.size = 0;
    return out;
  }
}

/**
 * What a body too big to parse says about its usage, as an object the interpreters read like a
 * whole body: every provider puts its usage last (Anthropic's and OpenAI's `usage`, Gemini's
 * `usageMetadata` and `modelVersion`), and Anthropic its model first. The last structural key of
 * that name in the tail is the body's own (inside a JSON string a quote is always escaped).
 */
function headAndTail(head: Buffer, tail: Buffer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const objectAt = (bytes: Buffer, key: Buffer): unknown => {
    const at = findLastKey(bytes, key);
    if (at === -1) return undefined;
    const start = valueAt(bytes, at + key.length);
    const end = bytes[start] === 0x7b ? closingEnd(bytes, start) : -1;
    return end === -1 ? undefined : parse(bytes.subarray(start, end));
  };
  const stringOf = (key: Buffer): string | undefined => {
    for (const bytes of [tail, head]) {
      const at = findLastKey(bytes, key);
      const value = at === -1 ? undefined : stringAt(bytes, valueAt(bytes, at + key.length));
      if (value !== undefined) return value;
    }
    return undefined;
  };
  out.usage = objectAt(tail, KEY_USAGE);
  out.usageMetadata = objectAt(tail, KEY_USAGE_METADATA);
  out.model = stringOf(KEY_MODEL);
  out.modelVersion = stringOf(KEY_MODEL_VERSION);
  if (findLastKey(tail, KEY_FINISH_REASON) !== -1) out.candidates = [{ finishReason: 'tail' }];
  return out;
}

/** Splits a JSON array arriving in pieces into its top-level object elements, without parsing it. */
class ArrayScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private collecting = false;
  private tooBig = false;
  private pieces: Buffer[] = [];
  private pending = 0;

  constructor(private readonly onElement: (bytes: Buffer) => void) {}

  write(bytes: Buffer): void {
    let start = this.collecting ? 0 : -1;
    let i = 0;
    const n = bytes.length;
    while (i < n) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        // Short strings (keys, small values) by hand; past 32 bytes, let indexOf find the quote.
        const stop = Math.min(n, i + 32);
        while (i < stop) {
          const c = bytes[i]!;
          if (c === 0x22) break;
          i += c === 0x5c ? 2 : 1;
        }
        if (i < stop) {
          this.inString = false;
          i++;
          continue;
        }
        if (i >= n) {
          this.escaped = i > n; // the chunk ended on a backslash
          break;
        }
        const quote = bytes.indexOf(0x22, i);
        if (quote === -1) {
          this.escaped = backslashesBefore(bytes, n, i) % 2 === 1;
          break;
        }
        if (backslashesBefore(bytes, quote, i) % 2 === 0) this.inString = false;
        i = quote + 1;
        continue;
      }
      const c = bytes[i]!;
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) {
        this.depth++;
        if (this.depth === 2 && c === 0x7b) {
          this.collecting = true;
          start = i;
        }
      } else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 1 && this.collecting) {
          this.element(bytes.subarray(start, i + 1));
          start = -1;
        } else if (this.depth <= 0) {
          this.depth = 0;
        }
      }
      i++;
    }
    if (this.collecting && start !== -1) this.hold(bytes.subarray(start));
  }

  private hold(part: Buffer): void {
    if (this.tooBig) return;
    this.pending += part.length;
    if (this.pending > MAX_LINE_BYTES) {
      this.tooBig = true;
      this.pieces = [];
    } else this.pieces.push(part);
  }

  private element(last: Buffer): void {
    const tooBig = this.tooBig || this.pending + last.length > MAX_LINE_BYTES;
    const bytes = tooBig ? undefined : this.pending === 0 ? last : Buffer.concat([...this.pieces, last], this.pending + last.length);
    this.collecting = false;
    this.tooBig = false;
    this.pieces = [];
    this.pending = 0;
    if (bytes) this.onElement(bytes);
  }
}

// ---------------------------------------------------------------------------------------------
// Small byte helpers (JSON structure characters are ASCII, so UTF-8 bytes can be scanned directly)

const KEY_MODEL = Buffer.from('"model"');
const KEY_USAGE = Buffer.from('"usage"');
const KEY_ERROR = Buffer.from('"error"');
const KEY_USAGE_METADATA = Buffer.from('"usageMetadata"');
const KEY_MODEL_VERSION = Buffer.from('"modelVersion"');
const KEY_FINISH_REASON = Buffer.from('"finishReason"');
const TYPE_PREFIX = Buffer.from('{"type":"');

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** The number of backslashes right before `at`, not looking before `floor`. */
function backslashesBefore(bytes: Buffer, at: number, floor: number): number {
  let k = at - 1;
  while (k >= floor && bytes[k] === 0x5c) k--;
  return at - 1 - k;
}

/** Where `key` (a quoted name) occurs as a key of this JSON text: not inside a string (escaped quotes) and followed by a colon. */
function findKey(bytes: Buffer, key: Buffer, from: number): number {
  let at = bytes.indexOf(key, from);
  while (at !== -1) {
    if ((at === 0 || bytes[at - 1] !== 0x5c) && bytes[skipSpaces(bytes, at + key.length)] === 0x3a) return at;
    at = bytes.indexOf(key, at + 1);
  }
  return -1;
}

function findLastKey(bytes: Buffer, key: Buffer): number {
  let at = bytes.lastIndexOf(key);
  while (at !== -1) {
    if ((at === 0 || bytes[at - 1] !== 0x5c) && bytes[skipSpaces(bytes, at + key.length)] === 0x3a) return at;
    at = at === 0 ? -1 : bytes.lastIndexOf(key, at - 1);
  }
  return -1;
}

function skipSpaces(bytes: Buffer, at: number): number {
  while (at < bytes.length && isSpace(bytes[at]!)) at++;
  return at;
}

/** The index of the value after a key ending at `afterKey` (past the colon and spaces). */
function valueAt(bytes: Buffer, afterKey: number): number {
  const colon = skipSpaces(bytes, afterKey);
  return skipSpaces(bytes, colon + 1);
}

/** The index just past the object or array starting at `start`, or -1 when it is not complete (a JS loop: meant for small values). */
function closingEnd(bytes: Buffer, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** The JSON string starting at `start`, decoded, or undefined. */
function stringAt(bytes: Buffer, start: number): string | undefined {
  if (bytes[start] !== 0x22) return undefined;
  let quote = bytes.indexOf(0x22, start + 1);
  while (quote !== -1 && backslashesBefore(bytes, quote, start + 1) % 2 === 1) quote = bytes.indexOf(0x22, quote + 1);
  if (quote === -1 || quote - start > 512) return undefined;
  const raw = bytes.subarray(start, quote + 1);
  if (raw.indexOf(0x5c) === -1) return raw.toString('utf8', 1, raw.length - 1);
  const value = parse(raw);
  return typeof value === 'string' ? value : undefined;
}

/** A data payload's `{"type":"…"` (as Anthropic and the Responses API write it), or undefined. */
function sniffType(data: Buffer): string | undefined {
  if (!startsWith(data, TYPE_PREFIX)) return undefined;
  const end = data.indexOf(0x22, TYPE_PREFIX.length);
  if (end === -1 || end - TYPE_PREFIX.length > 64) return undefined;
  return data.toString('latin1', TYPE_PREFIX.length, end);
}

/** Whether the JSON object in `bytes` starts with the key `key` (e.g. `{"error": …`). */
function startsWithKey(bytes: Buffer, key: Buffer): boolean {
  const open = skipSpaces(bytes, 0);
  if (bytes[open] !== 0x7b) return false;
  const at = skipSpaces(bytes, open + 1);
  if (bytes.length - at < key.length) return false;
  for (let i = 0; i < key.length; i++) if (bytes[at + i] !== key[i]) return false;
  return bytes[skipSpaces(bytes, at + key.length)] === 0x3a;
}

function parse(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** A token count: a finite, non-negative number (rounded down), else undefined. */
function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
}
