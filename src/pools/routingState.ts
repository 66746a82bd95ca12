// Each API process's copy of the pools and their shared routing state (src/db/routing.ts), so the
// request path reads memory and never the database. It learns of changes by LISTEN (the caller
// calls changed() on a `maestro_routing_changed` notification) and by a check every `tickMs`
// (1 s) that reads the rows past the last seq seen — so a cooldown set by any process is
// honoured here within about a second even when a notification is lost. Its own changes apply
// here at once and are written behind (a write that fails is logged; the next success or bench
// writes again).
//
// Seqs are taken before commit, so a row may become visible after one with a higher seq: each
// check re-reads SEQ_MARGIN seqs below the newest seen, and a row applies only when its seq is
// newer than what this copy holds for the same key.
import type { Logger } from '../logger.js';
import type { PoolRecord, PoolStore } from '../db/pools.js';
import type { CooldownRow, NewPoolEvent, RoutingStore, SessionRow } from '../db/routing.js';

const SEQ_MARGIN = 100;
const NO_POOLS: readonly PoolRecord[] = [];
/** Pools (their policy and members) are re-read at least this often, besides on notification. */
const POOLS_RELOAD_MS = 10_000;

export interface Cooldown {
  /** ms epoch; null = cleared. */
  until: number | null;
  reason: string;
  evidence: string;
  setAt: number;
  /** The shared row's seq; 0 while a change made here is not yet read back. */
  seq: number;
}

export interface Session {
  credentialId: string;
  expiresAt: number;
  seq: number;
}

export interface Inflight {
  count: number;
  pickedAt: number;
}

export interface RoutingStateOptions {
  store: RoutingStore;
  pools: PoolStore;
  /** This process's id in the shared in-flight counts. */
  processId: string;
  log?: Logger;
  tickMs?: number;
  /** A cooldown was cleared (by anyone): the caller drops what it believed about that credential's windows. */
  onCleared?: (credentialId: string) => void;
}

export class RoutingState {
  private poolsById = new Map<string, PoolRecord>();
  private poolsByName = new Map<string, PoolRecord>();
  /** Each provider's pools, made at reload: every proxied call asks, pooled or not. */
  private poolsByProvider = new Map<string, readonly PoolRecord[]>();
  private readonly cooldowns = new Map<string, Map<string, Cooldown>>();
  /** Sessions by pool, then by session key (no composite key built and hashed per look-up). */
  private readonly sessions = new Map<string, Map<string, Session>>();
  private readonly inflightHere = new Map<string, Inflight>();
  private inflightElsewhere = new Map<string, Inflight>();
  private lastSeq = 0;
  private poolsLoadedAt = 0;
  private poolsDirty = true;
  private syncing: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<() => void>();
  private events: NewPoolEvent[] = [];

  constructor(private readonly opts: RoutingStateOptions) {}

  async start(): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.opts.tickMs ?? 1_000);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.syncing;
    for (const [id, c] of this.inflightHere) this.inflightHere.set(id, { ...c, count: 0 });
    await this.flush().catch(() => {});
  }

  /** A notification: something changed (`pools`, `pool_members`, `routing_cooldowns`, `pool_sessions`). */
  changed(table: string): void {
    if (table === 'pools' || table === 'pool_members') this.poolsDirty = true;
    void this.sync();
  }

  /** This process changed a pool: its copy is re-read now (the notification may come after the answer). */
  reloadPools(): Promise<void> {
    this.poolsDirty = true;
    return this.sync();
  }

  /** After a (re)connect of the listener: anything may have changed. */
  resync(): void {
    this.poolsDirty = true;
    this.lastSeq = 0;
    void this.sync();
  }

  /** Resolves on the next change this copy applies, or after `ms` (a held request's wait). */
  nextChange(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        off();
        resolve();
      };
      const timer = setTimeout(done, ms);
      const off = this.onChange(done);
    });
  }

  /** Calls `listener` after every change this copy applies (a held request waits on it). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // --- reads (the request path) ---

  pool(idOrName: string): PoolRecord | undefined {
    return this.poolsById.get(idOrName.toLowerCase()) ?? this.poolsByName.get(idOrName);
  }

  allPools(): PoolRecord[] {
    return [...this.poolsById.values()];
  }

  poolsOf(provider: string): readonly PoolRecord[] {
    return this.poolsByProvider.get(provider) ?? NO_POOLS;
  }

  cooldownsOf(credentialId: string): ReadonlyMap<string, Cooldown> | undefined {
    return this.cooldowns.get(credentialId);
  }

  session(poolId: string, sessionKey: string, now: number): Session | undefined {
    const s = this.sessions.get(poolId)?.get(sessionKey);
    return s && s.expiresAt > now ? s : undefined;
  }

  sessionsOf(poolId: string, credentialId: string, now: number): number {
    let n = 0;
    for (const s of this.sessions.get(poolId)?.values() ?? []) if (s.credentialId === credentialId && s.expiresAt > now) n++;
    return n;
  }

  /** The pool's sessions, made on first use. */
  private sessionsIn(poolId: string): Map<string, Session> {
    let held = this.sessions.get(poolId);
    if (!held) this.sessions.set(poolId, (held = new Map()));
    return held;
  }

  /** Calls in flight on a credential across every live process, and when any of them last picked it. */
  inflight(credentialId: string): Inflight {
    const here = this.inflightHere.get(credentialId);
    const there = this.inflightElsewhere.get(credentialId);
    return { count: (here?.count ?? 0) + (there?.count ?? 0), pickedAt: Math.max(here?.pickedAt ?? 0, there?.pickedAt ?? 0) };
  }

  // --- changes made here ---

  // Counted in place: two calls per proxied call, no object made for either.
  started(credentialId: string, now: number): void {
    const c = this.inflightHere.get(credentialId);
    if (c) {
      c.count++;
      c.pickedAt = now;
    } else this.inflightHere.set(credentialId, { count: 1, pickedAt: now });
  }

  finished(credentialId: string): void {
    const c = this.inflightHere.get(credentialId);
    if (c && c.count > 0) c.count--;
  }

  /** Benches a credential or one of its families, unless a longer bench stands. True when it grew. */
  bench(c: { credentialId: string; scope: string; until: number; reason: string; evidence: string; now: number }): boolean {
    const scopes = this.cooldowns.get(c.credentialId) ?? new Map<string, Cooldown>();
    const before = scopes.get(c.scope);
    if (before && before.until !== null && before.until >= c.until) return false;
    scopes.set(c.scope, { until: c.until, reason: c.reason, evidence: c.evidence, setAt: c.now, seq: 0 });
    this.cooldowns.set(c.credentialId, scopes);
    this.notify();
    this.write(() =>
      this.opts.store.setCooldown({
        credentialId: c.credentialId,
        scope: c.scope,
        until: new Date(c.until),
        reason: c.reason,
        evidence: c.evidence,
        setAt: new Date(c.now),
      }),
    );
    return true;
  }

  /** Clears benches set at or before `seenAt` (every scope, or those listed). Returns the scopes that were standing. */
  clear(credentialId: string, seenAt: number, scopes?: string[]): string[] {
    const held = this.cooldowns.get(credentialId);
    if (!held) return [];
    const cleared: string[] = [];
    for (const [scope, c] of held) {
      if (c.until === null || c.setAt > seenAt || (scopes && !scopes.includes(scope))) continue;
      held.set(scope, { ...c, until: null, setAt: seenAt, seq: 0 });
      cleared.push(scope);
    }
    if (cleared.length === 0) return [];
    this.opts.onCleared?.(credentialId);
    this.notify();
    this.write(() => this.opts.store.clearCooldowns(credentialId, new Date(seenAt), cleared));
    return cleared;
  }

  bind(poolId: string, sessionKey: string, credentialId: string, expiresAt: number): void {
    const held = this.sessionsIn(poolId);
    held.set(sessionKey, { credentialId, expiresAt, seq: held.get(sessionKey)?.seq ?? 0 });
    this.write(() => this.opts.store.bindSession({ poolId, sessionKey, credentialId, expiresAt: new Date(expiresAt) }));
  }

  /**
   * A new session's first binding: kept here at once, and written unless another process bound
   * the session first — then its binding is adopted, so the session's next calls go where its
   * first went. Resolves once written (at most `timeoutMs`): the caller answers its client after
   * that, so the session's next call, on any process, finds the binding.
   */
  bindNew(poolId: string, sessionKey: string, credentialId: string, expiresAt: number, timeoutMs = 500): Promise<void> {
    this.sessionsIn(poolId).set(sessionKey, { credentialId, expiresAt, seq: 0 });
    const written = this.opts.store
      .bindSessionIfAbsent({ poolId, sessionKey, credentialId, expiresAt: new Date(expiresAt) })
      .then((standing) => this.applySession(standing))
      .catch((error: unknown) => {
        this.opts.log?.warn(
          { error: (error as Error).message },
          'routing state: a session binding was not written; other processes learn of it later',
        );
      });
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([written, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]).finally(() =>
      clearTimeout(timer),
    );
  }

  /** True when this process holds the session's binding (its calls need no read of the database). */
  knowsSession(poolId: string, sessionKey: string): boolean {
    return this.sessions.get(poolId)?.has(sessionKey) ?? false;
  }

  /**
   * A session this process has not seen: its binding from the database, if another process made
   * one (one indexed read per session and process; the session's later calls read memory). A
   * database that does not answer within `timeoutMs` leaves the session unbound here.
   */
  async learnSession(poolId: string, sessionKey: string, timeoutMs = 500): Promise<void> {
    if (this.knowsSession(poolId, sessionKey)) return;
    let timer: NodeJS.Timeout | undefined;
    const found = await Promise.race([
      this.opts.store.findSession(poolId, sessionKey).catch(() => undefined),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
    if (found) this.applySession(found);
  }

  acquireProbe(credentialId: string, leaseMs: number): Promise<boolean> {
    return this.opts.store.acquireProbe(credentialId, this.opts.processId, leaseMs);
  }

  /** An event for the pools' timelines, written with the next check (in order). */
  event(e: NewPoolEvent): void {
    if (this.events.length < 10_000) this.events.push(e);
  }

  // --- catching up ---

  /** Reads what changed since the last check (one at a time; a request meanwhile runs one more after). */
  sync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      do {
        this.again = false;
        try {
          await this.catchUp();
        } catch (error) {
          this.opts.log?.warn({ error: (error as Error).message }, 'routing state: could not read the shared state; keeping the last copy');
        }
      } while (this.again);
    })().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async catchUp(): Promise<void> {
    const now = Date.now();
    if (this.poolsDirty || now - this.poolsLoadedAt > POOLS_RELOAD_MS) {
      this.poolsDirty = false;
      const pools = await this.opts.pools.list();
      this.poolsById = new Map(pools.map((p) => [p.id, p]));
      this.poolsByName = new Map(pools.map((p) => [p.name, p]));
      const byProvider = new Map<string, PoolRecord[]>();
      for (const p of pools) byProvider.set(p.provider, [...(byProvider.get(p.provider) ?? []), p]);
      this.poolsByProvider = byProvider;
      this.poolsLoadedAt = now;
      this.notify();
    }
    const since = Math.max(0, this.lastSeq - SEQ_MARGIN);
    const [cooldowns, sessions] = await Promise.all([this.opts.store.cooldownsSince(since), this.opts.store.sessionsSince(since)]);
    let changed = false;
    for (const row of cooldowns) changed = this.applyCooldown(row) || changed;
    for (const row of sessions) this.applySession(row);
    if (changed) this.notify();
    await this.flush();
  }

  private applyCooldown(row: CooldownRow): boolean {
    this.lastSeq = Math.max(this.lastSeq, row.seq);
    const scopes = this.cooldowns.get(row.credentialId) ?? new Map<string, Cooldown>();
    const held = scopes.get(row.scope);
    if (held && held.seq >= row.seq && held.seq !== 0) return false;
    // A change made here and not yet read back stands against an older row.
    if (held && held.seq === 0 && held.setAt > row.setAt) return false;
    scopes.set(row.scope, { until: row.until, reason: row.reason, evidence: row.evidence, setAt: row.setAt, seq: row.seq });
    this.cooldowns.set(row.credentialId, scopes);
    if (row.until === null && held?.until != null) this.opts.onCleared?.(row.credentialId);
    return held?.until !== row.until;
  }

  private applySession(row: SessionRow): void {
    this.lastSeq = Math.max(this.lastSeq, row.seq);
    const sessions = this.sessionsIn(row.poolId);
    const held = sessions.get(row.sessionKey);
    if (held && held.seq >= row.seq && held.seq !== 0) return;
    sessions.set(row.sessionKey, { credentialId: row.credentialId, expiresAt: row.expiresAt, seq: row.seq });
  }

  private async flush(): Promise<void> {
    const now = Date.now();
    for (const [poolId, sessions] of this.sessions) {
      for (const [key, s] of sessions) if (s.expiresAt <= now) sessions.delete(key);
      if (sessions.size === 0) this.sessions.delete(poolId);
    }
    this.inflightElsewhere = await this.opts.store.shareInflight(this.opts.processId, this.inflightHere);
    for (const [id, c] of this.inflightHere) if (c.count === 0 && now - c.pickedAt > 5_000) this.inflightHere.delete(id);
    if (this.events.length > 0) {
      const events = this.events;
      this.events = [];
      await this.opts.store.addEvents(events).catch((error: unknown) => {
        this.opts.log?.warn({ error: (error as Error).message, events: events.length }, 'pool events not written');
      });
    }
  }

  private write(change: () => Promise<unknown>): void {
    change().catch((error: unknown) => {
      this.opts.log?.warn(
        { error: (error as Error).message },
        'routing state: a change was not written; other processes learn of it later',
      );
    });
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}
