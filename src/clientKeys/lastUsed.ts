// "last used" per key, kept in memory on the request path and written in one statement per
// batch (every `flushMs`, and at shutdown): a busy key costs no write per request.
import type { ApiKeyStore } from '../db/apiKeys.js';
import type { Logger } from '../logger.js';

export class LastUsedRecorder {
  private pending = new Map<string, Date>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: ApiKeyStore,
    private readonly opts: { log?: Logger; flushMs?: number } = {},
  ) {
    this.timer = setInterval(() => void this.flush(), opts.flushMs ?? 10_000);
    this.timer.unref();
  }

  /** Keys from MAESTRO_API_KEYS (`env:<n>`) have no row to write. */
  used(keyId: string): void {
    if (!keyId.startsWith('env:')) this.pending.set(keyId, new Date());
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.store.recordLastUsed(batch);
    } catch (error) {
      // Put the batch back (newer times win) for the next try.
      for (const [id, at] of batch) if (!this.pending.has(id)) this.pending.set(id, at);
      this.opts.log?.warn({ keys: batch.size, error: (error as Error).message }, 'could not record when keys were last used; will retry');
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
