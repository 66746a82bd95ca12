// Durable provider calls carry an HMAC made by the API that accepted them (keys derived from the
// encryption key ring), and the worker sends only calls whose HMAC checks out: access to Temporal
// alone (starting sendMessageWorkflow by hand with a stored credential id) is not enough to spend a
// credential.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { EncryptionKey } from '../config.js';

const INFO = 'maestro:durable-call:v1';

export class DurableCallSigner {
  private readonly keys: Array<{ id: string; key: Buffer }>;

  constructor(keys: EncryptionKey[]) {
    // A key of its own per ring key (HKDF): the sealing keys never sign anything directly.
    this.keys = keys.map(({ id, key }) => ({ id, key: Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), INFO, 32)) }));
  }

  /** `<key id>.<hex HMAC>` over the credential id and the request exactly as it will be sent. */
  sign(credentialId: string, request: unknown): string {
    const first = this.keys[0];
    if (!first) throw new Error('no key to sign durable calls with');
    return `${first.id}.${this.mac(first.key, credentialId, request).toString('hex')}`;
  }

  /** True when `signature` was made by a key of this ring for exactly this credential and request. */
  verify(credentialId: string, request: unknown, signature: unknown): boolean {
    if (typeof signature !== 'string') return false;
    const dot = signature.indexOf('.');
    const entry = this.keys.find((k) => k.id === signature.slice(0, dot));
    const given = Buffer.from(signature.slice(dot + 1), 'hex');
    if (!entry || given.length !== 32) return false;
    return timingSafeEqual(this.mac(entry.key, credentialId, request), given);
  }

  private mac(key: Buffer, credentialId: string, request: unknown): Buffer {
    // JSON keeps key order across Temporal's JSON payloads, so signer and verifier hash the same text.
    return createHmac('sha256', key)
      .update(JSON.stringify([credentialId, request]))
      .digest();
  }
}
