import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { credentialAad, KeyRing, legacyCredentialAad, oauthSessionAad } from '../../src/crypto/keyRing.js';
import { ConfigError, SealError } from '../../src/errors.js';

const k1 = { id: 'k1', key: randomBytes(32) };
const k2 = { id: 'k2', key: randomBytes(32) };
const aad = credentialAad('7a1c0e56-1c1e-4a55-9d2f-0b9f3a7f0c11', 'anthropic', 'oauth', 1);
const secret = 'sk-ant-oat01-' + randomBytes(24).toString('base64url');

/** Runs `fn`, expects a SealError, and returns its message for further checks. */
function sealErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SealError);
    return (error as SealError).message;
  }
  throw new Error('expected a SealError, but the secret opened');
}

describe('KeyRing', () => {
  it('round-trips under the sealing key and reports that key id', () => {
    const ring = new KeyRing([k1, k2]);
    expect(ring.sealingKeyId).toBe('k1');
    expect(ring.keyIds).toEqual(['k1', 'k2']);
    const sealed = ring.seal(secret, aad);
    expect(sealed.keyId).toBe('k1');
    expect(ring.open(sealed.ciphertext, 'k1', aad).toString()).toBe(secret);
    expect(ring.open(ring.seal(Buffer.from([0, 1, 2]), aad).ciphertext, 'k1', aad)).toEqual(Buffer.from([0, 1, 2]));
  });

  it('uses a fresh IV per seal, and the ciphertext holds neither the secret nor the key', () => {
    const ring = new KeyRing([k1]);
    const a = ring.seal(secret, aad).ciphertext;
    const b = ring.seal(secret, aad).ciphertext;
    expect(a.equals(b)).toBe(false);
    expect(a.subarray(1, 13).equals(b.subarray(1, 13))).toBe(false); // the IVs differ
    for (const blob of [a, b]) {
      expect(blob.includes(secret)).toBe(false);
      expect(blob.includes(Buffer.from(secret).toString('base64'))).toBe(false);
      expect(blob.includes(k1.key)).toBe(false);
      // format byte + 12-byte IV + 16-byte tag + ciphertext of the same length as the plaintext
      expect(blob.length).toBe(1 + 12 + 16 + Buffer.byteLength(secret));
    }
  });

  it('opens with any key of the ring: an older key still opens what it sealed', () => {
    const old = new KeyRing([k2]);
    const sealed = old.seal(secret, aad);
    const rotated = new KeyRing([k1, k2]);
    expect(rotated.open(sealed.ciphertext, sealed.keyId, aad).toString()).toBe(secret);
  });

  it('rejects a flipped byte anywhere (format, IV, tag, body) with a SealError', () => {
    const ring = new KeyRing([k1]);
    const { ciphertext } = ring.seal(secret, aad);
    for (const index of [0, 1, 12, 13, 28, 29, ciphertext.length - 1]) {
      const tampered = Buffer.from(ciphertext);
      tampered[index] = tampered[index]! ^ 0x01;
      const message = sealErrorOf(() => ring.open(tampered, 'k1', aad));
      expect(message).not.toContain(secret);
    }
  });

  it('rejects truncated bytes and a wrong or unknown key id', () => {
    const ring = new KeyRing([k1, k2]);
    const { ciphertext } = ring.seal(secret, aad);
    expect(sealErrorOf(() => ring.open(ciphertext.subarray(0, 20), 'k1', aad))).toMatch(/truncated/);
    expect(sealErrorOf(() => ring.open(ciphertext.subarray(0, ciphertext.length - 1), 'k1', aad))).toMatch(/authentication failed/);
    expect(sealErrorOf(() => ring.open(ciphertext, 'k2', aad))).toMatch(/key id "k2".*authentication failed/);
    const unknown = sealErrorOf(() => ring.open(ciphertext, 'retired', aad));
    expect(unknown).toMatch(/key id "retired" is not in MAESTRO_ENCRYPTION_KEYS/);
    expect(unknown).not.toContain(k1.key.toString('base64'));
  });

  it('binds the ciphertext to its AAD: another credential id, provider, auth type or version does not open', () => {
    const ring = new KeyRing([k1]);
    const { ciphertext } = ring.seal(secret, aad);
    const id = '7a1c0e56-1c1e-4a55-9d2f-0b9f3a7f0c11';
    sealErrorOf(() => ring.open(ciphertext, 'k1', credentialAad('00000000-0000-4000-8000-000000000000', 'anthropic', 'oauth', 1)));
    sealErrorOf(() => ring.open(ciphertext, 'k1', credentialAad(id, 'openai', 'oauth', 1)));
    sealErrorOf(() => ring.open(ciphertext, 'k1', credentialAad(id, 'anthropic', 'api_key', 1)));
    sealErrorOf(() => ring.open(ciphertext, 'k1', credentialAad(id, 'anthropic', 'oauth', 2)));
    sealErrorOf(() => ring.open(ciphertext, 'k1', legacyCredentialAad(id, 'anthropic')));
    // and a credential's ciphertext is never a login session's, even with the same id and provider
    sealErrorOf(() => ring.open(ciphertext, 'k1', oauthSessionAad('7a1c0e56-1c1e-4a55-9d2f-0b9f3a7f0c11', 'anthropic', '', '')));
  });

  it('keeps AADs unambiguous whatever the fields contain', () => {
    expect(credentialAad('a', 'b\nc', 'oauth', 1)).not.toBe(credentialAad('a\nb', 'c', 'oauth', 1));
    expect(oauthSessionAad('i', 'p', 'n","x', 'r')).not.toBe(oauthSessionAad('i', 'p', 'n', 'x","r'));
  });

  it('refuses an empty ring, a key of the wrong size and duplicate ids with a ConfigError', () => {
    expect(() => new KeyRing([])).toThrow(ConfigError);
    expect(() => new KeyRing([{ id: 'short', key: randomBytes(16) }])).toThrow(/key "short" must be 32 bytes/);
    expect(() => new KeyRing([k1, { id: 'k1', key: randomBytes(32) }])).toThrow(/"k1" appears twice/);
  });

  it('keeps a private copy of key material', () => {
    const key = randomBytes(32);
    const ring = new KeyRing([{ id: 'mine', key }]);
    const { ciphertext } = ring.seal(secret, aad);
    key.fill(0);
    expect(ring.open(ciphertext, 'mine', aad).toString()).toBe(secret);
  });
});
