// Creating, listing and revoking client keys: the one place the routes (and so the CLI, which
// calls them) go through. The whole key exists only in the creation answer.
import type { ProviderId } from '../model/providers.js';
import type { ApiKeyStore, StoredKey } from '../db/apiKeys.js';
import type { CredentialStore } from '../db/credentials.js';
import type { KeyCredentialGrant, KeyLimits, KeyRole } from '../model/credentials.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { isStorableDate, STORABLE_DATE_RANGE } from '../dates.js';
import { generateKey, KEY_ID_PATTERN } from './keyFormat.js';
import { UUID } from '../ids.js';

export interface CreateKeyInput {
  name: string;
  role: KeyRole;
  credentials?: string[];
  providers?: ProviderId[];
  /** Pools (ids or names) a client key may use. */
  pools?: string[];
  expiresAt?: Date;
  limits?: KeyLimits;
}

/** A key as the API shows it: never the secret or its hash. */
export interface KeyMetadata {
  id: string;
  name: string;
  role: KeyRole;
  credentials: string[];
  providers: ProviderId[];
  pools: string[];
  expiresAt: string | null;
  limits: KeyLimits;
  createdAt: string;
  createdBy: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

function checkKeyId(id: string): string {
  if (!KEY_ID_PATTERN.test(id)) throw new NotFoundError(`Maestro key ${id.slice(0, 40)} not found (ids are 16 hex characters)`);
  return id;
}

export function keyMetadata(k: StoredKey): KeyMetadata {
  return {
    id: k.id,
    name: k.name,
    role: k.role,
    credentials: k.credentials.map((c) => c.id),
    providers: k.providers,
    pools: k.pools,
    expiresAt: k.expiresAt?.toISOString() ?? null,
    limits: k.limits,
    createdAt: k.createdAt.toISOString(),
    createdBy: k.createdBy,
    revokedAt: k.revokedAt?.toISOString() ?? null,
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
  };
}

export class KeyService {
  constructor(
    private readonly deps: {
      keys: ApiKeyStore;
      credentials: CredentialStore;
      /** A pool by id or name (undefined when there is none). */
      findPool?: (ref: string) => Promise<{ id: string } | undefined>;
      /** This process's registry takes the change before the answer leaves (other processes: by notification). */
      changed?: (id: string) => Promise<void>;
    },
  ) {}

  async create(input: CreateKeyInput, by: string): Promise<KeyMetadata & { key: string }> {
    const credentials = input.credentials ?? [];
    const providers = [...new Set(input.providers ?? [])];
    const poolRefs = input.pools ?? [];
    if (input.role === 'client' && credentials.length === 0 && providers.length === 0 && poolRefs.length === 0) {
      throw new ValidationError('a client key must list credentials (ids or names), providers or pools it may use');
    }
    if (input.role === 'admin' && (credentials.length > 0 || providers.length > 0 || poolRefs.length > 0)) {
      throw new ValidationError('an admin key reaches everything: credentials, providers and pools apply to client keys only');
    }
    if (input.expiresAt) {
      if (!isStorableDate(input.expiresAt)) throw new ValidationError(`expiresAt must be ${STORABLE_DATE_RANGE}`);
      if (input.expiresAt.getTime() <= Date.now()) throw new ValidationError('expiresAt must be in the future');
    }
    const grants = await this.resolveCredentials(credentials);
    const pools = await this.resolvePools(poolRefs);
    const made = generateKey();
    const stored = await this.deps.keys.create({
      id: made.id,
      name: input.name,
      role: input.role,
      secretHash: made.secretHash,
      credentials: grants,
      providers,
      pools,
      limits: input.limits ?? {},
      expiresAt: input.expiresAt ?? null,
      createdBy: by,
    });
    await this.deps.changed?.(stored.id);
    return { ...keyMetadata(stored), key: made.key };
  }

  async list(): Promise<KeyMetadata[]> {
    return (await this.deps.keys.list()).map(keyMetadata);
  }

  async get(id: string): Promise<KeyMetadata> {
    return keyMetadata(await this.deps.keys.get(checkKeyId(id)));
  }

  async revoke(id: string, by: string): Promise<KeyMetadata> {
    const revoked = await this.deps.keys.revoke(checkKeyId(id), by);
    await this.deps.changed?.(id);
    return keyMetadata(revoked);
  }

  private async resolvePools(given: string[]): Promise<string[]> {
    const ids = new Set<string>();
    for (const ref of given) {
      const found = await this.deps.findPool?.(ref);
      if (!found) throw new ValidationError(`no pool with id or name "${ref.slice(0, 100)}"`);
      ids.add(found.id);
    }
    return [...ids];
  }

  /** Ids stay ids; a name must name exactly one credential (else the answer lists the candidates). */
  private async resolveCredentials(given: string[]): Promise<KeyCredentialGrant[]> {
    if (given.length === 0) return [];
    const all = await this.deps.credentials.list();
    const grants = new Map<string, KeyCredentialGrant>();
    for (const ref of given) {
      const matches = UUID.test(ref) ? all.filter((c) => c.id === ref.toLowerCase()) : all.filter((c) => c.name === ref);
      if (matches.length === 0) throw new ValidationError(`no credential with id or name "${ref.slice(0, 100)}"`);
      if (matches.length > 1) {
        const listed = matches.map((c) => `${c.id} (${c.provider} ${c.authType})`).join(', ');
        throw new ValidationError(`"${ref.slice(0, 100)}" names ${matches.length} credentials: list one by id: ${listed}`);
      }
      grants.set(matches[0]!.id, { id: matches[0]!.id, provider: matches[0]!.provider });
    }
    return [...grants.values()];
  }
}
