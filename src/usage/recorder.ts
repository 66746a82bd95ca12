// Usage from proxied and durable calls, aggregated in memory per key, credential, provider,
// model and hour, and added to PostgreSQL in one upsert per batch (every `flushMs`, default 2 s,
// and at shutdown). A crash loses at most the batch not yet written: about `flushMs` of usage.
// The same numbers feed the Prometheus counter and the per-key daily token budget.
import type { Counter } from 'prom-client';
import type { UsageRow, UsageStore } from '../db/usage.js';
import { LimitExceededError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Principal } from '../clientKeys/registry.js';
import type { TokenUsage } from './tap.js';

export interface CallRecord {
  keyId: string;
  credentialId: string;
  provider: string;
  model?: string;
  /** Undefined when the answer carried none (an error, a stream cut before any usage). */
  usage?: TokenUsage;
  error: boolean;
  at?: Date;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const COUNTS = ['requests', 'errors', 'inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens'] as const;
const startOfUtcDay = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
/** What a budget counts: every token the provider reports (input, output, cache reads and writes). */
export const budgetTokens = (u: TokenUsage) => u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens;

export class UsageRecorder {
  private pending = new Map<string, UsageRow>();
  /** Per budgeted key: its tokens today in the table (every process's flushed usage), as last read. */
  private readonly flushedToday = new Map<string, number>();
  /** Per key: tokens recorded here and not yet in `flushedToday`. */
  private sinceRead = new Map<string, number>();
  private day = startOfUtcDay(Date.now());
  private readonly budgeted = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: UsageStore,
    private readonly opts: { log?: Logger; flushMs?: number; tokens?: Counter<'provider' | 'type'> } = {},
  ) {
    this.timer = setInterval(() => void this.flush(), opts.flushMs ?? 2_000);
    this.timer.unref();
  }

  record(call: CallRecord): void {
    const at = call.at ?? new Date();
    const hour = new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS);
    const model = (call.model ?? '').slice(0, 200);
    const id = `${hour.getTime()}\u0000${call.keyId}\u0000${call.credentialId}\u0000${call.provider}\u0000${model}`;
    let row = this.pending.get(id);
    if (!row) {
      row = {
        hour,
        keyId: call.keyId,
        credentialId: call.credentialId,
        provider: call.provider,
        model,
        requests: 0,
        errors: 0,
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
      };
      this.pending.set(id, row);
    }
    row.requests++;
    if (call.error) row.errors++;
    const u = call.usage;
    if (!u) return;
    row.inputTokens += u.inputTokens;
    row.outputTokens += u.outputTokens;
    row.cacheReadTokens += u.cacheReadTokens;
    row.cacheWriteTokens += u.cacheWriteTokens;
    if (this.opts.tokens) {
      if (u.inputTokens) this.counter(call.provider, 'input').inc(u.inputTokens);
      if (u.outputTokens) this.counter(call.provider, 'output').inc(u.outputTokens);
      if (u.cacheReadTokens) this.counter(call.provider, 'cache_read').inc(u.cacheReadTokens);
      if (u.cacheWriteTokens) this.counter(call.provider, 'cache_write').inc(u.cacheWriteTokens);
    }
    this.rollDay(at.getTime());
    this.sinceRead.set(call.keyId, (this.sinceRead.get(call.keyId) ?? 0) + budgetTokens(u));
  }

  /** The labelled child of the token counter, made once (prom-client hashes labels on every inc otherwise). */
  private readonly counters = new Map<string, { inc(n: number): void }>();
  private counter(provider: string, type: string): { inc(n: number): void } {
    const id = `${provider}\u0000${type}`;
    let child = this.counters.get(id);
    if (!child) this.counters.set(id, (child = this.opts.tokens!.labels(provider, type)));
    return child;
  }

  /**
   * limits.tokensPerDay: refuses a key whose tokens today (every process's, as of the last read,
   * plus this process's since) reached its budget: 429 `budget_exceeded` until the next UTC day.
   */
  admit(p: Principal, now = Date.now()): void {
    const budget = p.limits.tokensPerDay;
    if (budget === undefined) return;
    if (!this.budgeted.has(p.keyId)) {
      this.budgeted.add(p.keyId);
      void this.flush(); // read this key's day now, not at the next tick
    }
    this.rollDay(now);
    const used = this.usedToday(p.keyId);
    if (used < budget) return;
    const seconds = Math.max(1, Math.ceil((this.day + DAY_MS - now) / 1000));
    throw new LimitExceededError(
      'budget_exceeded',
      `Maestro key ${p.keyId} used ${used} of its ${budget} tokens for today (UTC); the budget renews in ${seconds} s`,
      seconds,
    );
  }

  /** Tokens of this key today as this process knows them. */
  usedToday(keyId: string): number {
    return (this.flushedToday.get(keyId) ?? 0) + (this.sinceRead.get(keyId) ?? 0);
  }

  /** Adds the batch to the table, then re-reads the day's totals of keys with budgets. One at a time. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    if (this.pending.size > 0) await this.flush(); // what arrived during the last write
  }

  private async write(): Promise<void> {
    // Taken together: after the batch is in the table, the tokens in `written` are in the totals
    // read below, and whatever is recorded from here on is not (it is in the next batch).
    const batch = this.pending;
    const written = this.sinceRead;
    this.pending = new Map();
    this.sinceRead = new Map();
    const putBack = () => {
      for (const [id, n] of written) this.sinceRead.set(id, (this.sinceRead.get(id) ?? 0) + n);
    };
    try {
      await this.store.add([...batch.values()]);
    } catch (error) {
      // Back into the next batch (summed with whatever arrived meanwhile): nothing is lost while the database is away.
      for (const [id, row] of batch) {
        const now = this.pending.get(id);
        if (!now) this.pending.set(id, row);
        else for (const k of COUNTS) now[k] += row[k];
      }
      putBack();
      this.opts.log?.warn({ rows: batch.size, error: (error as Error).message }, 'could not write usage; keeping it for the next batch');
      return;
    }
    if (this.budgeted.size === 0) return;
    try {
      const totals = await this.store.tokensSince([...this.budgeted], new Date(this.day));
      for (const id of this.budgeted) this.flushedToday.set(id, totals.get(id) ?? 0);
    } catch (error) {
      putBack(); // the old totals stand; these tokens are counted on top of them
      this.opts.log?.debug({ error: (error as Error).message }, 'could not read token budgets; using the last totals');
    }
  }

  private rollDay(now: number): void {
    const day = startOfUtcDay(now);
    if (day === this.day) return;
    this.day = day;
    this.flushedToday.clear();
    this.sinceRead.clear();
  }
}
