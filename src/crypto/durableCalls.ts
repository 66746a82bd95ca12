// Durable provider calls carry an HMAC made by the API that accepted them (keys derived from the
// encryption key ring) over the workflow id, the credential, the request, the time it was
// issued and the Maestro key that asked (its usage is recorded by the worker, against that key). The worker sends a call only if the HMAC checks out for the workflow it runs in, is
// under a week old, and that workflow run is the first to present it (see DurableCallClaims): so
// access to Temporal alone (starting sendMessageWorkflow by hand, or again with a copied sealed
// input) is not enough to spend a credential.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { EncryptionKey } from '../config.js';

const INFO = 'maestro:durable-call:v1';
/** A signature is good this long after it was issued (a durable call's retries end well before). */
export const DURABLE_CALL_LIFETIME_MS = 7 * 24 * 3600_000;
const CLOCK_SKEW_MS = 5 * 60_000;

export class DurableCallSigner {
  private readonly keys: Array<{ id: string; key: Buffer }>;

  constructor(keys: EncryptionKey[]) {
    // A key of its own per ring key (HKDF): the sealing keys never sign anything directly.
    this.keys = keys.map(({ id, key }) => ({ id, key: Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), INFO, 32)) }));
  }

  /** `<key id>.<issued at ms>.<hex HMAC>` over the workflow id, credential id, request exactly as sent, and the asking Maestro key's id. */
  sign(workflowId: string, credentialId: string, request: unknown, now = Date.now(), callerKeyId?: string): string {
    const first = this.keys[0];
    if (!first) throw new Error('no key to sign durable calls with');
    return `${first.id}.${now}.${this.mac(first.key, workflowId, credentialId, request, now, callerKeyId).toString('hex')}`;
  }

  /** True when `signature` was made by a key of this ring for exactly this call, and is not too old. */
  verify(workflowId: string, credentialId: string, request: unknown, signature: unknown, now = Date.now(), callerKeyId?: string): boolean {
    if (typeof signature !== 'string') return false;
    const [keyId, issued, hex] = signature.split('.');
    const entry = this.keys.find((k) => k.id === keyId);
    const issuedAt = Number(issued);
    const given = Buffer.from(hex ?? '', 'hex');
    if (!entry || !Number.isSafeInteger(issuedAt) || given.length !== 32) return false;
    if (issuedAt > now + CLOCK_SKEW_MS || now - issuedAt > DURABLE_CALL_LIFETIME_MS) return false;
    return timingSafeEqual(this.mac(entry.key, workflowId, credentialId, request, issuedAt, callerKeyId), given);
  }

  private mac(
    key: Buffer,
    workflowId: string,
    credentialId: string,
    request: unknown,
    issuedAt: number,
    callerKeyId: string | undefined,
  ): Buffer {
    // JSON keeps key order across Temporal's JSON payloads, so signer and verifier hash the same text.
    // Without a key id, the text of the calls signed before it was added.
    const signed =
      callerKeyId === undefined
        ? [workflowId, credentialId, request, issuedAt]
        : [workflowId, credentialId, request, issuedAt, callerKeyId];
    return createHmac('sha256', key).update(JSON.stringify(signed)).digest();
  }
}
