// The provider's last reported rate-limit state per credential, from the headers of every answer
// (src/usage/rateLimits.ts reads them) and from rate-limit errors inside 200 streams. Kept in
// memory on the request path; shared with the other processes through the database at a low
// rate (every `shareMs`, only what changed), so GET /v1/credentials/:id shows the newest any
// process saw. The worker's quota reads (src/activities/quota.ts) are stored apart and merged in
// window by window when read: each window says its source (`header` or `endpoint`) and age.
import type { UsageStore } from '../db/usage.js';
import type { Logger } from '../logger.js';
import type { RateLimitState } from './rateLimits.js';
import { asOf, mergeRateLimits, stampWindows, withHeaderObservation } from './quota.js';

export class RateLimitBook {
  private readonly states = new Map<string, RateLimitState>();
  private readonly dirty = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: UsageStore,
    private readonly opts: { log?: Logger; shareMs?: number } = {},
  ) {
    this.timer = setInterval(() => void this.share(), opts.shareMs ?? 10_000);
    this.timer.unref();
  }

  /** A new observation (the book keeps `state` itself): its windows replace those of the same name (a reset moved by under 60 s is kept); others are kept. */
  observe(credentialId: string, state: RateLimitState): void {
    this.states.set(credentialId, withHeaderObservation(this.states.get(credentialId), state));
    this.dirty.add(credentialId);
  }

  /** A rate-limit or overload error inside a 200 stream: recorded like a 429. */
  observeStreamError(credentialId: string, error: { type: string; message?: string }, now = new Date()): void {
    this.observe(credentialId, { observedAt: now.toISOString(), status: error.type, windows: {} });
  }

  /**
   * The header state (this process's newest, or the shared one when that is newer: another
   * process saw it) merged window by window with the last quota read; a window whose reset has
   * passed is shown as unknown.
   */
  async get(credentialId: string): Promise<RateLimitState | null> {
    const mine = this.states.get(credentialId);
    const [shared, read] = await Promise.all([
      this.store.rateLimit(credentialId).catch(() => undefined),
      this.store.quota(credentialId).catch(() => undefined),
    ]);
    const theirs = shared?.state as RateLimitState | undefined;
    let headers = mine ?? theirs ?? null;
    if (mine && theirs && Date.parse(theirs.observedAt) > Date.parse(mine.observedAt)) headers = theirs;
    const merged = mergeRateLimits(headers && stampWindows(headers, 'header'), read?.state as RateLimitState | undefined);
    return merged && asOf(merged);
  }

  /** This process's newest, without waiting (the pools' routing reads it on the request path). */
  current(credentialId: string): RateLimitState | undefined {
    return this.states.get(credentialId);
  }

  /** What every credential's state says now, for the gauges. */
  entries(): IterableIterator<[string, RateLimitState]> {
    return this.states.entries();
  }

  forget(credentialId: string): void {
    this.states.delete(credentialId);
    this.dirty.delete(credentialId);
  }

  async share(): Promise<void> {
    if (this.dirty.size === 0) return;
    const ids = [...this.dirty];
    this.dirty.clear();
    const rows = ids.flatMap((id) => {
      const state = this.states.get(id);
      return state
        ? [{ credentialId: id, state: state as unknown as Record<string, unknown>, observedAt: new Date(state.observedAt) }]
        : [];
    });
    try {
      await this.store.saveRateLimits(rows);
    } catch (error) {
      for (const id of ids) this.dirty.add(id);
      this.opts.log?.debug({ error: (error as Error).message }, 'could not share rate-limit state; will retry');
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.share();
  }
}
