// The contract of the usage watcher's framing (./sse.ts, ./json.ts, ./jsonArray.ts, and
// ./decompressing.ts in front of them): a sink for an answer's bytes, and the limits on what it keeps.

/** The most of a JSON body (decompressed) kept for parsing; of a bigger body only its head and tail are read. */
export const MAX_OBSERVED_JSON_BYTES = 4 * 1024 * 1024;
/** The longest SSE line (or JSON array element) considered; a longer one is skipped. */
export const MAX_LINE_BYTES = MAX_OBSERVED_JSON_BYTES;

/** Receives the (decompressed) bytes of an answer. */
export interface Sink {
  write(bytes: Buffer): void;
  /** The answer ended: finish (parse what was kept), then call back. Never throws. */
  end(done: () => void): void;
  /** Stop watching and free what is held. */
  abandon(): void;
  /** False once nothing more can be observed (e.g. a JSON body over the limit): decompressing for it can stop. */
  readonly active: boolean;
}
