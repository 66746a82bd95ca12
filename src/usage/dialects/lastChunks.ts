// Where the usage is in a stream whose every chunk may carry it but only the last counts (Gemini's
// cumulative usageMetadata; OpenAI chat completions, whose usage chunk is the last before [DONE]):
// the last chunks are kept, as views, and read only when the observation is asked for.

/**
 * The last two chunks of a stream, not read yet (views, not copies). Two, so that a last chunk
 * without the usage (one the provider sends after it) does not lose it.
 */
export class LastChunks {
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
