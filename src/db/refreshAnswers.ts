// The write-ahead log of token answers (table refresh_answers). The moment a token endpoint
// answers 2xx, the raw answer is sealed (AES-256-GCM, bound to credential id and the version it
// refreshes) and recorded, so whichever attempt runs next, on whichever worker, stores it instead
// of presenting the spent refresh token again. The same sealed form travels in the activity's
// heartbeat details, which cover a database that is down: Temporal only ever sees ciphertext.
import { z } from 'zod';
import type { KeyRing } from '../crypto/keyRing.js';
import { SealError } from '../errors.js';
import type { Db } from './pool.js';

/** A token endpoint's 2xx answer as it arrived: the body text and when the request left (ms). */
export interface RecordedAnswer {
  body: string;
  startedAt: number;
}

/** A sealed RecordedAnswer in plain JSON (heartbeat details, or a row). */
export interface SealedAnswer {
  keyId: string;
  /** base64 ciphertext */
  data: string;
}

export const sealedAnswerSchema = z.object({ keyId: z.string().min(1), data: z.string().min(1) });
const recordedSchema = z.object({ body: z.string(), startedAt: z.number() });

const aad = (credentialId: string, expectedVersion: number) => `refresh-answer\u0000${credentialId}\u0000${expectedVersion}`;

export class RefreshAnswerStore {
  constructor(
    private readonly db: Db,
    private readonly keys: KeyRing,
  ) {}

  seal(credentialId: string, expectedVersion: number, answer: RecordedAnswer): SealedAnswer {
    const { ciphertext, keyId } = this.keys.seal(JSON.stringify(answer), aad(credentialId, expectedVersion));
    return { keyId, data: ciphertext.toString('base64') };
  }

  /** Opens only what was sealed for this credential and version (anything else: SealError). */
  open(credentialId: string, expectedVersion: number, sealed: SealedAnswer): RecordedAnswer {
    const plaintext = this.keys.open(Buffer.from(sealed.data, 'base64'), sealed.keyId, aad(credentialId, expectedVersion));
    const parsed = recordedSchema.safeParse(JSON.parse(plaintext.toString('utf8')));
    if (!parsed.success) throw new SealError(`sealed token answer of credential ${credentialId} is not a token answer`);
    return parsed.data;
  }

  /** Records (or re-records) the answer that refreshes `expectedVersion`. */
  async record(
    credentialId: string,
    expectedVersion: number,
    sealed: SealedAnswer,
    state: 'pending' | 'unusable' = 'pending',
  ): Promise<void> {
    const values = { sealed: Buffer.from(sealed.data, 'base64'), key_id: sealed.keyId, state };
    await this.db
      .insertInto('refresh_answers')
      .values({ credential_id: credentialId, expected_version: expectedVersion, ...values })
      .onConflict((oc) => oc.columns(['credential_id', 'expected_version']).doUpdateSet(values))
      .execute();
  }

  /** A pending (not yet stored) answer for this credential and version, if one was recorded. */
  async findPending(credentialId: string, expectedVersion: number): Promise<SealedAnswer | undefined> {
    const row = await this.db
      .selectFrom('refresh_answers')
      .select(['sealed', 'key_id'])
      .where('credential_id', '=', credentialId)
      .where('expected_version', '=', expectedVersion)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    return row && { keyId: row.key_id, data: row.sealed.toString('base64') };
  }

  /** The answer is stored (or superseded): drop it and any older pending ones of this credential. */
  async settle(credentialId: string, expectedVersion: number): Promise<void> {
    await this.db
      .deleteFrom('refresh_answers')
      .where('credential_id', '=', credentialId)
      .where('expected_version', '<=', expectedVersion)
      .where('state', '=', 'pending')
      .execute();
  }

  async list(credentialId: string): Promise<Array<{ expectedVersion: number; state: string; receivedAt: string }>> {
    const rows = await this.db
      .selectFrom('refresh_answers')
      .select(['expected_version', 'state', 'received_at'])
      .where('credential_id', '=', credentialId)
      .orderBy('expected_version')
      .execute();
    return rows.map((r) => ({ expectedVersion: r.expected_version, state: r.state, receivedAt: r.received_at.toISOString() }));
  }
}
