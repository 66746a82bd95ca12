// A credential's secret and its seal: the JSON shape, what each auth type must hold, and the
// AES-GCM seal bound to the row (id, provider, auth type, version; see credentialAad). Used by the
// store and by key rotation.
import { z } from 'zod';
import { credentialAad, legacyCredentialAad, type KeyRing } from '../crypto/keyRing.js';
import { SealError, ValidationError } from '../errors.js';
import type { AuthType, CredentialRow } from './types.js';

export interface CredentialSecret {
  accessToken?: string;
  refreshToken?: string;
  apiKey?: string;
  idToken?: string;
  accountId?: string;
}

const secretSchema = z.object({
  accessToken: z.string().optional(),
  refreshToken: z.string().optional(),
  apiKey: z.string().optional(),
  idToken: z.string().optional(),
  accountId: z.string().optional(),
});

/** Where a seal belongs: the row fields its AAD binds. */
export type SealedRowPlace = Pick<CredentialRow, 'id' | 'provider' | 'auth_type' | 'version'>;
export type SealedRow = SealedRowPlace & Pick<CredentialRow, 'secret' | 'key_id'>;

export function checkSecret(authType: AuthType, secret: CredentialSecret): void {
  if (authType === 'api_key' && !secret.apiKey) throw new ValidationError('an api_key credential needs an apiKey');
  if (authType === 'oauth' && !secret.accessToken) throw new ValidationError('an oauth credential needs an accessToken');
}

export function sealCredentialSecret(keys: KeyRing, place: SealedRowPlace, secret: CredentialSecret) {
  return keys.seal(JSON.stringify(secretSchema.parse(secret)), credentialAad(place.id, place.provider, place.auth_type, place.version));
}

/**
 * Opens a credential's sealed bytes: bound to its id, provider, auth type and version, or a seal
 * from before that binding (legacy AAD), which opens until a token write or `keys rotate` re-seals it.
 */
export function openSealedBytes(keys: KeyRing, row: SealedRow): Buffer {
  try {
    return keys.open(row.secret, row.key_id, credentialAad(row.id, row.provider, row.auth_type, row.version));
  } catch (error) {
    try {
      return keys.open(row.secret, row.key_id, legacyCredentialAad(row.id, row.provider));
    } catch {
      throw error;
    }
  }
}

/** The row's secret, opened and checked. */
export function openCredentialSecret(keys: KeyRing, row: SealedRow): CredentialSecret {
  const plaintext = openSealedBytes(keys, row);
  // Authenticated bytes that are not our JSON mean a bug, not an attacker; still never echo them.
  let json: unknown;
  try {
    json = JSON.parse(plaintext.toString('utf8'));
  } catch {
    json = undefined;
  }
  const parsed = secretSchema.safeParse(json);
  if (!parsed.success) throw new SealError(`sealed secret of credential ${row.id} is not a credential secret`);
  return parsed.data;
}
