// Usage from proxied calls, aggregated in memory per key, credential, provider, model and hour,
// and added to PostgreSQL in one upsert per batch (every `flushMs`, default 2 s, and at shutdown).
// A crash loses at most the batch not yet written: about `flushMs` of usage. The same numbers feed
// the Prometheus counter and the per-key daily token budget. (Durable calls are recorded by the
// worker that made them, src/activities/messages.ts, with the same row shape: usageRow below.)
//
// Nothing a client sends can stop the writing: what becomes a key is cleaned and bounded (the
// model name), counts are clamped, a batch the database refuses because of one row is split until
// that row is found and dropped (logged and counted), and what waits in memory is bounded.
import type { Counter, Gauge } from 'prom-client';
import type { UsageRow, UsageStore } from '../db/usage.js';
import { LimitExceededError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Principal } from '../clientKeys/registry.js';
import type { TokenUsage } from './tap.js';

export interface CallRecord {
  keyId: string;
  credentialId: string;
  provider: string;
  /** The pool that routed the call, if one did. */
  poolId?: string;
  model?: string;
  /** Undefined when the answer carried none (an error, a stream cut before any usage). */
  usage?: TokenUsage;
  error: boolean;
  /** The call's final counts never arrived (a stream cut short): `usage` is what was reported before. */
  incomplete?: boolean;
  /** For an incomplete call: the tokens a budget is charged beyond `usage` (its stated upper bound). */
  incompleteCharge?: number;
  at?: Date;
}

/** The recorder's Prometheus series (src/usage/metrics.ts). */
export interface UsageMetrics {
  tokens?: Counter<'provider' | 'type'>;
  /** Batches the database did not take: `unavailable` (kept for the next batch) or `refused` (split to find the bad row). */
  writeFailures?: Counter<'reason'>;
  /** Calls whose usage was dropped: `refused` (a row the database would not take) or `memory` (the in-memory bound). */
  dropped?: Counter<'reason'>;
  /** Rows waiting in memory for the next batch. */
  pending?: Gauge;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const COUNTS = [
  'requests',
  'errors',
  'incomplete',
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'incompleteCharge',
] as const;
/** Rows held in memory at most (a database outage, a client varying `model`): ~300 bytes each. */
export const MAX_PENDING_ROWS = 20_000;
/** Distinct models per key, credential and hour kept apart in one batch; more are summed as OTHER_MODEL. */
const MAX_MODELS_PER_KEY = 100;
/** No call reports more than this many tokens of one kind; a larger number is a provider's (or a fake's) error. */
export const MAX_CALL_TOKENS = 1e12;
/** What a model name that is not one (or one too many) is recorded as. */
export const OTHER_MODEL = '(other)';
/** A model name as providers spell them: `claude-sonnet-4-5`, `gpt-4o-2024-08-06`, `models/gemini-2.5-pro`, `ft:gpt-4o:org:x`. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/;

const startOfUtcDay = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
/** What a budget counts: every token the provider reports (input, output, cache reads and writes). */
export const budgetTokens = (u: TokenUsage) => u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens;

/** A model name fit to be a key: as given when it looks like one, '' when none, else OTHER_MODEL. */
export function cleanModel(model: string | undefined): string {
  if (model === undefined || model === '') return '';
  return MODEL_NAME.test(model) ? model : OTHER_MODEL;
}

/** A token count fit for a bigint column: a whole number in [0, MAX_CALL_TOKENS]. */
export function clampTokens(n: number | undefined): number {
  if (n === undefined || !Number.isFinite(n) || n <= 0) return 0;
  return Math.min(Math.floor(n), MAX_CALL_TOKENS);
}

/** One call as a usage row (cleaned and clamped): the proxy's batches and the worker's durable calls alike. */
export function usageRow(call: CallRecord): UsageRow {
  const at = call.at ?? new Date();
  const u = call.usage;
  return {
    hour: new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS),
    keyId: call.keyId,
    credentialId: call.credentialId,
    provider: call.provider,
    poolId: call.poolId ?? '',
    model: cleanModel(call.model),
    requests: 1,
    errors: call.error ? 1 : 0,
    incomplete: call.incomplete ? 1 : 0,
    inputTokens: clampTokens(u?.inputTokens),
    outputTokens: clampTokens(u?.outputTokens),
    cacheReadTokens: clampTokens(u?.cacheReadTokens),
    cacheWriteTokens: clampTokens(u?.cacheWriteTokens),
    incompleteCharge: call.incomplete ? clampTokens(call.incompleteCharge) : 0,
  };
}

/** The tokens a row charges to its key's budget. */
const chargedTokens = (r: UsageRow) => r.inputTokens + r.outputTokens + r.cacheReadTokens + r.cacheWriteTokens + r.incompleteCharge;

const rowId = (r: UsageRow) =>
  `${r.hour.getTime()}\u0000${r.keyId}\u0000${r.credentialId}\u0000${r.provider}\u0000${r.model}\u0000${r.poolId}`;

/** A PostgreSQL error about the data itself (class 22: bad text, a number out of range; 23: a constraint): retrying cannot help. */
function refusedData(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

export class UsageRecorder {
  private pending = new Map<string, UsageRow>();
  /** Distinct models per (hour, key, credential, provider) in `pending`, to bound what a client can vary. */
  private modelsPerKey = new Map<string, number>();
  /** Per budgeted key: its tokens today in the table (every process's flushed usage), as last read. */
  private readonly flushedToday = new Map<string, number>();
  /** Per key: tokens recorded here and not yet in `flushedToday`. */
  private sinceRead = new Map<string, number>();
  /**
   * Per key: tokens of the batch being written, until the totals read after it (which include
   * them) replace `flushedToday`. Still counted meanwhile: a call admitted during a flush must see them.
   */
  private writing = new Map<string, number>();
  private day = startOfUtcDay(Date.now());
  private readonly budgeted = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;
  private readonly metrics: UsageMetrics;

  constructor(
    private readonly store: Pick<UsageStore, 'add' | 'tokensSince'>,
    private readonly opts: { log?: Logger; flushMs?: number; metrics?: UsageMetrics } = {},
  ) {
    this.metrics = opts.metrics ?? {};
    this.timer = setInterval(() => void this.flush(), opts.flushMs ?? 2_000);
    this.timer.unref();
  }

  record(call: CallRecord): void {
    const row = usageRow(call);
    if (!this.hold(row)) {
      this.metrics.dropped?.inc({ reason: 'memory' });
      this.opts.log?.error(
        { keyId: row.keyId, credentialId: row.credentialId, pendingRows: this.pending.size },
        'usage not recorded: too many rows wait for the database (is PostgreSQL down?)',
      );
      return;
    }
    this.countTokens(call.provider, row);
    const at = call.at?.getTime() ?? Date.now();
    this.rollDay(at);
    const charged = chargedTokens(row);
    if (charged > 0) this.sinceRead.set(call.keyId, (this.sinceRead.get(call.keyId) ?? 0) + charged);
  }

  /**
   * Tokens of a call recorded elsewhere (a durable call, written by the worker): counted against
   * the key's budget here at once, as if recorded here, until the next read of the day's totals
   * (which includes them, since the worker wrote them before the answer came back).
   */
  chargeRecordedElsewhere(keyId: string, tokens: number): void {
    if (tokens <= 0) return;
    this.rollDay(Date.now());
    this.sinceRead.set(keyId, (this.sinceRead.get(keyId) ?? 0) + tokens);
  }

  /** Adds a row to the batch; false when the batch is at its bound and this row would need a new entry. */
  private hold(row: UsageRow): boolean {
    let id = rowId(row);
    if (!this.pending.has(id)) {
      const group = `${row.hour.getTime()}\u0000${row.keyId}\u0000${row.credentialId}\u0000${row.provider}`;
      const models = this.modelsPerKey.get(group) ?? 0;
      if (models >= MAX_MODELS_PER_KEY || this.pending.size >= MAX_PENDING_ROWS) {
        row.model = OTHER_MODEL;
        id = rowId(row);
      }
      if (!this.pending.has(id)) {
        if (this.pending.size >= MAX_PENDING_ROWS) return false;
        this.modelsPerKey.set(group, models + 1);
        this.pending.set(id, row);
        return true;
      }
    }
    const held = this.pending.get(id)!;
    for (const k of COUNTS) held[k] += row[k];
    return true;
  }

  private countTokens(provider: string, row: UsageRow): void {
    if (!this.metrics.tokens) return;
    if (row.inputTokens) this.counter(provider, 'input').inc(row.inputTokens);
    if (row.outputTokens) this.counter(provider, 'output').inc(row.outputTokens);
    if (row.cacheReadTokens) this.counter(provider, 'cache_read').inc(row.cacheReadTokens);
    if (row.cacheWriteTokens) this.counter(provider, 'cache_write').inc(row.cacheWriteTokens);
  }

  /** The labelled child of the token counter, made once (prom-client hashes labels on every inc otherwise). */
  private readonly counters = new Map<string, { inc(n: number): void }>();
  private counter(provider: string, type: string): { inc(n: number): void } {
    const id = `${provider}\u0000${type}`;
    let child = this.counters.get(id);
    if (!child) this.counters.set(id, (child = this.metrics.tokens!.labels(provider, type)));
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
    return (this.flushedToday.get(keyId) ?? 0) + (this.writing.get(keyId) ?? 0) + (this.sinceRead.get(keyId) ?? 0);
  }

  /** Rows waiting for the next batch. */
  get pendingRows(): number {
    return this.pending.size;
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
    this.modelsPerKey = new Map();
    this.sinceRead = new Map();
    this.writing = written;
    const putBack = () => {
      this.writing = new Map();
      for (const [id, n] of written) this.sinceRead.set(id, (this.sinceRead.get(id) ?? 0) + n);
    };
    const kept = await this.add([...batch.values()]);
    if (kept.length > 0) {
      // Back into the next batch (summed with whatever arrived meanwhile): nothing is lost while the database is away.
      for (const row of kept) {
        if (!this.hold(row)) this.metrics.dropped?.inc({ reason: 'memory' });
      }
      putBack();
      this.metrics.pending?.set(this.pending.size);
      return;
    }
    this.metrics.pending?.set(this.pending.size);
    if (this.budgeted.size === 0) {
      this.writing = new Map();
      return;
    }
    try {
      const totals = await this.store.tokensSince([...this.budgeted], new Date(this.day));
      // The batch is in these totals now: it stops being counted apart in the same step.
      for (const id of this.budgeted) this.flushedToday.set(id, totals.get(id) ?? 0);
      this.writing = new Map();
    } catch (error) {
      putBack(); // the old totals stand; these tokens are counted on top of them
      this.opts.log?.debug({ error: (error as Error).message }, 'could not read token budgets; using the last totals');
    }
  }

  /**
   * Writes rows; returns those to keep for the next batch (the database is unavailable). A batch
   * refused for its data is split in halves until each refused row stands alone; that row is
   * dropped (logged, counted) and the others are written.
   */
  private async add(rows: UsageRow[]): Promise<UsageRow[]> {
    if (rows.length === 0) return [];
    try {
      await this.store.add(rows);
      return [];
    } catch (error) {
      if (!refusedData(error)) {
        this.metrics.writeFailures?.inc({ reason: 'unavailable' });
        this.opts.log?.warn({ rows: rows.length, error: (error as Error).message }, 'could not write usage; keeping it for the next batch');
        return rows;
      }
      this.metrics.writeFailures?.inc({ reason: 'refused' });
      if (rows.length === 1) {
        const [row] = rows as [UsageRow];
        this.metrics.dropped?.inc({ reason: 'refused' });
        // The row's own text (the model) is a client's: its length only, never its content.
        this.opts.log?.error(
          {
            keyId: row.keyId,
            credentialId: row.credentialId,
            provider: row.provider,
            modelLength: row.model.length,
            requests: row.requests,
            error: (error as Error).message,
          },
          'usage row refused by the database; dropped',
        );
        return [];
      }
      const half = Math.ceil(rows.length / 2);
      return [...(await this.add(rows.slice(0, half))), ...(await this.add(rows.slice(half)))];
    }
  }

  private rollDay(now: number): void {
    const day = startOfUtcDay(now);
    if (day === this.day) return;
    this.day = day;
    this.flushedToday.clear();
    this.writing = new Map();
    this.sinceRead.clear();
  }
}
