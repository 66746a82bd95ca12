// Each API process's in-memory copy of the client keys: a request's key check is a Map lookup and
// one SHA-256, never a database query. The copy follows the table three ways, so a revoked key is
// refused everywhere within ~1 s even when one of them fails:
// - a notification per changed key (src/db/changes.ts) reloads that key at once;
// - every reconnect of the listener reloads everything;
// - every `recheckMs` the (id, version) pairs are compared with the table and what differs is
//   reloaded: a listener that died without a word cannot keep a revoked key alive.
// Keys from MAESTRO_API_KEYS are admin keys, compared as SHA-256 digests in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeyStore, StoredKey } from '../db/apiKeys.js';
import type { KeyCredentialGrant, KeyLimits, KeyRole } from '../model/credentials.js';
import type { ProviderId } from '../model/providers.js';
import { UnauthorizedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { parseKey, secretMatches } from './keyFormat.js';

/** Who is calling: the key's id (never the key), its role and what it may reach. */
export interface Principal {
  /** `env:<n>` for the n-th MAESTRO_API_KEYS key; else the client key's id. */
  keyId: string;
  name: string;
  role: KeyRole;
  credentials: readonly KeyCredentialGrant[];
  credentialIds: ReadonlySet<string>;
  providers: ReadonlySet<ProviderId>;
  /** Pool ids a client key may use. */
  pools: ReadonlySet<string>;
  limits: KeyLimits;
}

interface Entry {
  version: number;
  secretHash: Buffer;
  revoked: boolean;
  expiresAtMs: number | null;
  principal: Principal;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

function entryFor(key: StoredKey): Entry {
  return {
    version: key.version,
    secretHash: key.secretHash,
    revoked: key.revokedAt !== null,
    expiresAtMs: key.expiresAt ? key.expiresAt.getTime() : null,
    principal: {
      keyId: key.id,
      name: key.name,
      role: key.role,
      credentials: key.credentials,
      credentialIds: new Set(key.credentials.map((c) => c.id)),
      providers: new Set(key.providers),
      pools: new Set(key.pools),
      limits: key.limits,
    },
  };
}

export const MISSING_KEY_MESSAGE = 'missing Maestro API key: send Authorization: Bearer <key> or x-api-key: <key>';

export class KeyRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly bootstrap: Array<{ digest: Buffer; principal: Principal }>;
  private timer: NodeJS.Timeout | undefined;
  private rechecking: Promise<void> | undefined;

  constructor(
    private readonly store: ApiKeyStore,
    bootstrapKeys: string[],
    private readonly opts: { log?: Logger; recheckMs?: number } = {},
  ) {
    this.bootstrap = bootstrapKeys.map((key, i) => ({
      digest: digest(key),
      principal: {
        keyId: `env:${i + 1}`,
        name: `MAESTRO_API_KEYS #${i + 1}`,
        role: 'admin',
        credentials: [],
        credentialIds: new Set(),
        providers: new Set(),
        pools: new Set(),
        limits: {},
      },
    }));
  }

  /** Loads every key, then keeps re-checking; resolves once the first load is in. */
  async start(): Promise<void> {
    await this.reloadAll();
    this.timer = setInterval(() => void this.recheck(), this.opts.recheckMs ?? 1_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The principal for a presented key, or the 401 to answer. Synchronous for every key in memory;
   * a key in the client format whose id is not (yet) known here, e.g. created through another
   * process a moment ago, is looked up once in the table (the failed-key limit bounds how often).
   */
  authenticate(presented: string | undefined, now = Date.now()): Principal | UnauthorizedError | Promise<Principal | UnauthorizedError> {
    if (presented === undefined) return new UnauthorizedError(MISSING_KEY_MESSAGE);
    const parsed = parseKey(presented);
    if (parsed && !this.entries.has(parsed.id) && !this.isBootstrap(presented)) {
      return this.lookUp(parsed.id).then(() => this.check(presented, parsed, now));
    }
    return this.check(presented, parsed, now);
  }

  private readonly lookingUp = new Map<string, Promise<void>>();

  private lookUp(id: string): Promise<void> {
    let pending = this.lookingUp.get(id);
    if (!pending) {
      pending = this.store
        .find(id)
        .then((key) => {
          if (key) this.apply(key);
        })
        .finally(() => this.lookingUp.delete(id));
      this.lookingUp.set(id, pending);
    }
    return pending;
  }

  private isBootstrap(presented: string): boolean {
    const presentedDigest = digest(presented);
    let found = false;
    for (const b of this.bootstrap) found = timingSafeEqual(b.digest, presentedDigest) || found; // no early exit
    return found;
  }

  private check(presented: string, parsed: { id: string; secret: string } | undefined, now: number): Principal | UnauthorizedError {
    const entry = parsed && this.entries.get(parsed.id);
    if (parsed && entry && secretMatches(parsed.secret, entry.secretHash)) {
      // Only a caller holding the real key learns why it stopped working.
      if (entry.revoked) return new UnauthorizedError(`Maestro key ${parsed.id} was revoked; ask an admin for a new key`);
      if (entry.expiresAtMs !== null && entry.expiresAtMs <= now) {
        return new UnauthorizedError(
          `Maestro key ${parsed.id} expired at ${new Date(entry.expiresAtMs).toISOString()}; ask an admin for a new key`,
        );
      }
      return entry.principal;
    }
    const presentedDigest = digest(presented);
    let found: Principal | undefined;
    for (const b of this.bootstrap) if (timingSafeEqual(b.digest, presentedDigest)) found ??= b.principal; // no early exit
    return found ?? new UnauthorizedError('invalid Maestro API key');
  }

  /** A notification: reload this key (a newer version in memory is never replaced by an older read). */
  async reload(id: string): Promise<void> {
    try {
      const key = await this.store.find(id);
      if (!key) this.entries.delete(id);
      else this.apply(key);
    } catch (error) {
      // The periodic re-check will pick it up.
      this.opts.log?.warn({ keyId: id, error: (error as Error).message }, 'could not reload a changed Maestro key; the next re-check will');
    }
  }

  async reloadAll(): Promise<void> {
    const keys = await this.store.list();
    const seen = new Set<string>();
    for (const key of keys) {
      seen.add(key.id);
      this.apply(key);
    }
    for (const id of this.entries.keys()) if (!seen.has(id)) this.entries.delete(id);
  }

  /** Compares (id, version) with the table and reloads what differs. One at a time. */
  recheck(): Promise<void> {
    this.rechecking ??= this.compare().finally(() => (this.rechecking = undefined));
    return this.rechecking;
  }

  private async compare(): Promise<void> {
    let versions: Map<string, number>;
    try {
      versions = await this.store.versions();
    } catch (error) {
      this.opts.log?.debug({ error: (error as Error).message }, 'Maestro key re-check failed; keys stay as last read');
      return;
    }
    for (const id of this.entries.keys()) if (!versions.has(id)) this.entries.delete(id);
    const changed = [...versions].filter(([id, version]) => this.entries.get(id)?.version !== version).map(([id]) => id);
    for (const id of changed) await this.reload(id);
  }

  private apply(key: StoredKey): void {
    const current = this.entries.get(key.id);
    if (current && current.version > key.version) return;
    this.entries.set(key.id, entryFor(key));
  }
}
