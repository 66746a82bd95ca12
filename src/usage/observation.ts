// What the usage watcher saw of one answer: the token usage, the model, an error inside a 200
// stream, and whether the provider's final counts arrived. The framing and the dialects write into
// a `Seen`; callers read a `CallObservation` snapshot.
//
// Token accounting is the same for every provider: `inputTokens` are the uncached input tokens,
// `cacheReadTokens` the input tokens served from the provider's cache, `cacheWriteTokens` those
// written to it, `outputTokens` everything generated (reasoning/thinking included). Each dialect
// (./dialects/) says how its provider's counts map onto these.

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

export class Seen {
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
