// In-memory credentials for the proxy: a steady stream of proxied requests makes no database
// query. Entries are dropped when Postgres notifies a change (any process, any instance), and a
// refresh through the workflow is shared by every request waiting on the same credential.
// A periodic re-check (recheck(), about once a second) compares the cached versions with the
// table, so a listener that died without a word cannot keep a deleted or replaced credential.
import type { ProviderId } from '../model/providers.js';
import type { CredentialMetadata, CredentialStore } from '../db/credentials.js';
import { CallerGoneError, isDatabaseUnavailable } from '../errors.js';
import type { CallAuth } from '../providers/types.js';
import { callAuth } from '../auth/credentialAuth.js';
import { chooseById, chooseByName, chooseOnly, selectorKind } from './selection.js';

export interface CachedCredential {
  metadata: CredentialMetadata;
  auth: CallAuth;
  /** ms since epoch, or null when the token has no known expiry. */
  expiresAtMs: number | null;
}

/** `promise`, or a CallerGoneError as soon as `signal` aborts (the promise itself runs on). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new CallerGoneError('the caller went away'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CallerGoneError('the caller went away'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export interface TokenCacheOptions {
  store: CredentialStore;
  /** Refreshes through the credential's workflow (the refreshNow update); ifVersion = the version that failed. */
  refresh: (credentialId: string, ifVersion: number) => Promise<unknown>;
  /** Fall back to the provider's API key when its OAuth credential needs a new login. */
  apiKeyFallback: boolean;
}

export class TokenCache {
  private readonly byId = new Map<string, Promise<CachedCredential>>();
  /**
   * Selector → credential id. A change anywhere marks them stale (a default may be another now):
   * a stale one is picked again, but if the database cannot answer, the last pick still serves
   * (a cached token keeps working through an outage).
   */
  private readonly bySelector = new Map<string, { id: string; stale: boolean }>();
  private generation = 0;
  private readonly refreshing = new Map<string, Promise<void>>();
  private newestCreated: number | null | undefined;
  /**
   * Each loaded credential, read without waiting: a pool's fast path takes it, the router reads
   * its status, recheck() compares its version.
   */
  private readonly ready = new Map<string, CachedCredential>();
  private rechecking: Promise<void> | undefined;

  constructor(private readonly options: TokenCacheOptions) {}

  /** The credential a proxied request uses: by id or name when given, else the provider's default. */
  async resolve(provider: ProviderId, given: string | undefined): Promise<CachedCredential> {
    // Ids match in any case: one spelling, one entry (and one pick), however the client writes it.
    const kind = selectorKind(given);
    const selector = 'id' in kind ? kind.id : given;
    const key = `${provider}\u0000${selector ?? ''}`;
    const known = this.bySelector.get(key);
    if (known && !known.stale) return this.load(known.id);
    const generation = this.generation;
    let id: string;
    try {
      id = await this.pick(provider, selector);
    } catch (error) {
      // The database is away: the last pick serves (still stale, so it is picked again next time).
      if (known && isDatabaseUnavailable(error)) return this.load(known.id);
      throw error;
    }
    // A change while picking: keep the pick for now, but pick again next time.
    this.bySelector.set(key, { id, stale: generation !== this.generation });
    return this.load(id);
  }

  /**
   * Refresh once for everyone waiting on this credential, then reload it. The shared refresh is
   * bounded by the workflows client; `signal` releases only this caller's wait (a client that
   * disconnected), never the others'.
   */
  async refresh(credentialId: string, failedVersion: number, signal?: AbortSignal): Promise<CachedCredential> {
    let pending = this.refreshing.get(credentialId);
    if (!pending) {
      pending = this.options
        .refresh(credentialId, failedVersion)
        .then(() => this.invalidate(credentialId))
        .finally(() => this.refreshing.delete(credentialId));
      this.refreshing.set(credentialId, pending);
    }
    await (signal ? abortable(pending, signal) : pending);
    return this.load(credentialId);
  }

  /** A loaded credential, without waiting; undefined when not loaded (or changed since): then resolve() it. */
  loaded(credentialId: string): CachedCredential | undefined {
    return this.ready.get(credentialId);
  }

  /** A loaded credential's stored status; undefined when not loaded (or changed since). */
  statusOf(credentialId: string): string | undefined {
    return this.ready.get(credentialId)?.metadata.status;
  }

  /** Drops one credential (or everything); selectors are re-resolved since defaults may change. */
  invalidate(credentialId?: string): void {
    if (credentialId) {
      this.byId.delete(credentialId);
      this.ready.delete(credentialId);
    } else {
      this.byId.clear();
      this.ready.clear();
    }
    this.staleSelectors();
  }

  /**
   * Drops every entry whose row changed or went, and every selector once a credential was created
   * (a provider's default may be another now). Two indexed queries, whatever the traffic.
   */
  recheck(): Promise<void> {
    this.rechecking ??= this.compare().finally(() => (this.rechecking = undefined));
    return this.rechecking;
  }

  private async compare(): Promise<void> {
    const held = [...this.ready].map(([id, entry]) => [id, entry.metadata.version] as const);
    const [current, newest] = await Promise.all([
      this.options.store.versions(held.map(([id]) => id)),
      this.options.store.newestCreatedAt(),
    ]);
    for (const [id, version] of held) {
      // Only if the entry is still the one compared (a reload meanwhile has its own version).
      if (current.get(id) !== version && this.ready.get(id)?.metadata.version === version) this.invalidate(id);
    }
    if (this.newestCreated !== undefined && newest !== this.newestCreated) this.staleSelectors();
    this.newestCreated = newest;
  }

  private staleSelectors(): void {
    this.generation++;
    for (const entry of this.bySelector.values()) entry.stale = true;
  }

  get size(): number {
    return this.byId.size;
  }

  private load(id: string): Promise<CachedCredential> {
    let entry = this.byId.get(id);
    if (!entry) {
      entry = this.options.store.getWithSecret(id).then(({ metadata, secret }) => {
        const loaded = {
          metadata,
          auth: callAuth(metadata, secret),
          expiresAtMs: metadata.expiresAt ? Date.parse(metadata.expiresAt) : null,
        };
        if (this.byId.get(id) === entry) {
          this.ready.set(id, loaded);
        }
        return loaded;
      });
      this.byId.set(id, entry);
      // A failed load is not cached: the next request tries again.
      entry.catch(() => {
        if (this.byId.get(id) === entry) this.byId.delete(id);
      });
    }
    return entry;
  }

  /** The lookups a pick needs; the choice itself is src/credentials/selection.ts's. */
  private async pick(provider: ProviderId, selector: string | undefined): Promise<string> {
    const { store } = this.options;
    const kind = selectorKind(selector);
    if ('id' in kind) return chooseById(provider, kind.id, await store.get(kind.id));
    const [oauth, apiKey] = await Promise.all([store.find(provider, kind.name, 'oauth'), store.find(provider, kind.name, 'api_key')]);
    return (
      chooseByName(provider, selector, { oauth, apiKey }, this.options.apiKeyFallback) ??
      chooseOnly(provider, await store.list({ provider }))
    );
  }
}
