// The client key format (DESIGN.md): `msk_<id>_<secret>`, id 16 hex characters, secret 32 random
// bytes in base64url. Only SHA-256(secret) is stored: the secret is high-entropy random, so a
// fast hash compared in constant time is right (no password hashing needed, nothing reversible).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_PATTERN = /^msk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;

export interface NewKey {
  id: string;
  /** The whole key, shown once. */
  key: string;
  secretHash: Buffer;
}

export function generateKey(): NewKey {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, key: `msk_${id}_${secret}`, secretHash: hashSecret(secret) };
}

export const hashSecret = (secret: string): Buffer => createHash('sha256').update(secret).digest();

/** The id and secret of a presented key in the client key format, else undefined. */
export function parseKey(presented: string): { id: string; secret: string } | undefined {
  const match = KEY_PATTERN.exec(presented);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

export function secretMatches(secret: string, storedHash: Buffer): boolean {
  return timingSafeEqual(hashSecret(secret), storedHash);
}
