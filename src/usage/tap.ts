// Reads token usage out of a provider's answer while it streams to the client: a pass-through
// Transform that hands every chunk on untouched (same Buffer, same order, synchronously) and only
// watches. It never throws into the pipeline: a parse problem, an unexpected shape or a corrupt
// compressed body just ends the watching.
//
// Cost matters (this sits on every proxied call), so the watching works on bytes:
// - SSE (./framing/sse.ts): lines are found with Buffer.indexOf; an event the usage does not
//   depend on (Anthropic's content_block_delta, ping, OpenAI's response.output_text.delta…) is
//   recognised from its `event:` line (or a `{"type":"…"` prefix) and its data is never decoded
//   nor parsed. Only the few events that carry usage, the model or an error are JSON.parse'd.
//   Where the usage can be in any chunk but only the last one counts (Gemini's cumulative
//   usageMetadata; OpenAI chat completions, whose usage chunk is the last before [DONE]), the last
//   two chunks are kept (views, no copy) and read only when the observation is asked for; for
//   Gemini only the small usageMetadata object is cut out and parsed.
// - A JSON body (./framing/json.ts) is kept (at most 4 MiB, decompressed) and parsed once at the end.
// - Gemini's streamed JSON array (`[{…},\r\n{…}]`, ./framing/jsonArray.ts) is split into its
//   elements by a string-aware bracket scanner; each element is treated like one SSE chunk.
// - Compressed answers (./framing/decompressing.ts): a copy of each chunk goes through the one
//   decoder (src/auth/decode.ts) for the watching only; the bytes passed on stay compressed. zlib
//   works asynchronously, so the end of the stream waits for the decoder to catch up (chunks
//   themselves are never held back).
// What the frames say is read by the provider's usage dialect (./dialects/, named by its
// ProviderDefinition's `usageDialect`), into a `Seen` (./observation.ts).
import { Transform } from 'node:stream';
import { canDecode, parseContentEncoding } from '../auth/decode.js';
import type { ProviderId } from '../model/providers.js';
import { interpreterFor } from './dialects/index.js';
import { Decompressing } from './framing/decompressing.js';
import { JsonSink } from './framing/json.js';
import type { Sink } from './framing/sink.js';
import { SseSink } from './framing/sse.js';
import { Seen, type CallObservation } from './observation.js';

export type { CallObservation, TokenUsage } from './observation.js';
export { MAX_OBSERVED_JSON_BYTES } from './framing/sink.js';

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
  if (!answer.contentEncoding) return inner;
  const codings = parseContentEncoding(answer.contentEncoding);
  if (codings.length === 0 || (codings.length === 1 && codings[0] === 'none')) return inner;
  return canDecode(codings) ? new Decompressing(codings, inner) : undefined; // zstd, …: not observed
}

function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}
