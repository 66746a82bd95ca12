// The per-provider reading of an answer's frames. A dialect (named by each ProviderDefinition's
// `usageDialect`) turns one SSE data payload, one streamed JSON element or one JSON body into
// what it says of the usage, the model and in-stream errors, written into a `Seen`.

export interface Interpreter {
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
