// AES-256-GCM sealing with a key ring: the first key seals, every key opens (so rotation can
// re-seal rows while old ciphertexts stay readable). Node's own crypto only; there is no
// plaintext mode and no fallback: anything that does not authenticate is a SealError.
//
// Sealed layout: [format 0x01][96-bit IV][128-bit tag][ciphertext]. The key id is not inside
// the blob; it is stored beside it (the `key_id` column) so rotation can find stale rows with SQL.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptionKey } from '../config.js';
import { ConfigError, SealError } from '../errors.js';

const FORMAT = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;
const KEY_BYTES = 32;

export interface Sealed {
  ciphertext: Buffer;
  keyId: string;
}

export class KeyRing {
  readonly #keys = new Map<string, Buffer>();
  readonly #sealingKeyId: string;

  constructor(keys: EncryptionKey[]) {
    const first = keys[0];
    if (!first) throw new ConfigError('MAESTRO_ENCRYPTION_KEYS holds no key: at least one key is required to seal secrets');
    for (const { id, key } of keys) {
      if (this.#keys.has(id)) throw new ConfigError(`MAESTRO_ENCRYPTION_KEYS: key id "${id}" appears twice`);
      if (key.length !== KEY_BYTES) throw new ConfigError(`MAESTRO_ENCRYPTION_KEYS: key "${id}" must be ${KEY_BYTES} bytes`);
      // A private copy: a caller zeroing or reusing its buffer cannot change what we seal with.
      this.#keys.set(id, Buffer.from(key));
    }
    this.#sealingKeyId = first.id;
  }

  get sealingKeyId(): string {
    return this.#sealingKeyId;
  }

  /** Every key id this ring can open, sealing key first. */
  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  has(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  /** `aad` binds the ciphertext to its place (row id, provider): the same bytes elsewhere do not open. */
  seal(plaintext: Buffer | string, aad: string): Sealed {
    const key = this.#keys.get(this.#sealingKeyId)!;
    // A fresh random IV per seal: GCM's security collapses if an IV repeats under one key.
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const body = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
    const ciphertext = Buffer.concat([Buffer.from([FORMAT]), iv, cipher.getAuthTag(), body]);
    return { ciphertext, keyId: this.#sealingKeyId };
  }

  /** Throws SealError (naming the key id, never the secret) unless the bytes authenticate under `keyId` and `aad`. */
  open(ciphertext: Buffer, keyId: string, aad: string): Buffer {
    const key = this.#keys.get(keyId);
    if (!key) {
      throw new SealError(
        `cannot open sealed secret: key id "${keyId}" is not in MAESTRO_ENCRYPTION_KEYS (was a key removed before rotation finished?)`,
      );
    }
    if (ciphertext.length < HEADER_BYTES || ciphertext[0] !== FORMAT) {
      throw new SealError(`cannot open sealed secret (key id "${keyId}"): not a sealed value or truncated`);
    }
    const iv = ciphertext.subarray(1, 1 + IV_BYTES);
    const tag = ciphertext.subarray(1 + IV_BYTES, HEADER_BYTES);
    const body = ciphertext.subarray(HEADER_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      // Node only says "Unsupported state or unable to authenticate data"; say what it means for us.
      throw new SealError(
        `cannot open sealed secret (key id "${keyId}"): authentication failed — the bytes were altered, ` +
          'moved from another row, or sealed under a different key',
      );
    }
  }
}

// Domain-separated AADs: a credential's ciphertext can never be replayed as a login session's,
// nor one row's as another's. JSON arrays keep the encoding unambiguous whatever the fields hold.

/**
 * AAD of a credential's secret: its id, provider, auth type and the row version the seal was
 * written at. Every version bump re-seals, so an older ciphertext of the same row (an earlier
 * refresh token, a rotated-out API key) copied back by someone with database access but no keys
 * does not open, nor does the row's secret under another auth type.
 */
export function credentialAad(credentialId: string, provider: string, authType: string, version: number): string {
  return JSON.stringify(['maestro:credential:v2', credentialId, provider, authType, version]);
}

/** The AAD of seals written before the auth type and version were bound; they still open until re-sealed. */
export function legacyCredentialAad(credentialId: string, provider: string): string {
  return JSON.stringify(['maestro:credential:v1', credentialId, provider]);
}

/** AAD of a pending login: id, provider, credential name and redirect URI (a DB edit of the redirect does not open). */
export function oauthSessionAad(sessionId: string, provider: string, name: string, redirectUri: string): string {
  return JSON.stringify(['maestro:oauth-session:v1', sessionId, provider, name, redirectUri]);
}
