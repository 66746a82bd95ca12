// Key rotation: re-seal every sealed row under the key ring's first key, in small transactions,
// while the service keeps running. Safe to interrupt at any point (each batch commits on its own;
// a killed batch rolls back) and to run again (only rows whose key_id differs are touched).
//
// Concurrency with token writers: each batch locks its rows (FOR UPDATE), so a refresh writing
// the same row either commits first (we then read and re-seal its new secret) or waits for our
// batch (then writes over the re-sealed row, as it should). The UPDATE is additionally guarded by
// the old key_id and ciphertext. Re-sealing never bumps `version`: the secret did not change, and
// the version is the refresh workflow's concurrency token.
import type { Db } from './pool.js';
import { SealError } from '../errors.js';
import { credentialAad, oauthSessionAad, type KeyRing } from '../crypto/keyRing.js';
import { openSealedBytes } from './credentialSecrets.js';

export type SealedTable = 'saved_authentications' | 'oauth_sessions';

export interface RotationFailure {
  table: SealedTable;
  id: string;
  keyId: string;
  reason: string;
}

export interface RotationResult {
  /** Rows re-sealed by this run. */
  rotated: number;
  /** Rows already under the sealing key when this run started (e.g. moved by an interrupted run). */
  alreadyCurrent: number;
  /** Rows that did not open (tampered, or their key is not in the ring): left as they were. */
  failed: RotationFailure[];
  /** Rows still not under the sealing key at the end. Old keys can be removed only when this is 0. */
  remaining: number;
}

export interface RotationOptions {
  batchSize?: number;
  /** Called after each committed batch with the number of rows rotated so far. */
  onBatch?: (done: number) => Promise<void> | void;
}

interface Candidate {
  id: string;
  keyId: string;
  sealed: Buffer;
  /** The AAD the row is sealed with from now on. */
  aad: string;
  /** Opens the row's current seal (a credential's may predate today's AAD). */
  open(keys: KeyRing): Buffer;
}

interface TableAccess {
  table: SealedTable;
  /** Locks and returns the next rows (by id, after `afterId`) not sealed under `sealingKeyId`. */
  next(trx: Db, sealingKeyId: string, afterId: string | undefined, limit: number): Promise<Candidate[]>;
  /** Writes the new seal if the row still holds the old one; true when a row was written. */
  write(trx: Db, row: Candidate, sealed: Buffer, keyId: string): Promise<boolean>;
  count(db: Db, sealingKeyId: string, current: boolean): Promise<number>;
}

const credentials: TableAccess = {
  table: 'saved_authentications',
  async next(trx, sealingKeyId, afterId, limit) {
    let query = trx
      .selectFrom('saved_authentications')
      .select(['id', 'provider', 'auth_type', 'version', 'secret', 'key_id'])
      .where('key_id', '<>', sealingKeyId);
    if (afterId) query = query.where('id', '>', afterId);
    const rows = await query.orderBy('id').limit(limit).forUpdate().execute();
    return rows.map((r) => ({
      id: r.id,
      keyId: r.key_id,
      sealed: r.secret,
      // Same version (re-sealing is not a token write), today's binding: a legacy seal moves to it here.
      aad: credentialAad(r.id, r.provider, r.auth_type, r.version),
      open: (keys) => openSealedBytes(keys, r),
    }));
  },
  async write(trx, row, sealed, keyId) {
    const result = await trx
      .updateTable('saved_authentications')
      .set({ secret: sealed, key_id: keyId })
      .where('id', '=', row.id)
      .where('key_id', '=', row.keyId)
      .where('secret', '=', row.sealed)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  },
  async count(db, sealingKeyId, current) {
    const { n } = await db
      .selectFrom('saved_authentications')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('key_id', current ? '=' : '<>', sealingKeyId)
      .executeTakeFirstOrThrow();
    return Number(n);
  },
};

const oauthSessions: TableAccess = {
  table: 'oauth_sessions',
  async next(trx, sealingKeyId, afterId, limit) {
    let query = trx
      .selectFrom('oauth_sessions')
      .select(['id', 'provider', 'name', 'redirect_uri', 'sealed', 'key_id'])
      .where('key_id', '<>', sealingKeyId);
    if (afterId) query = query.where('id', '>', afterId);
    const rows = await query.orderBy('id').limit(limit).forUpdate().execute();
    return rows.map((r) => {
      const aad = oauthSessionAad(r.id, r.provider, r.name, r.redirect_uri);
      return { id: r.id, keyId: r.key_id, sealed: r.sealed, aad, open: (keys: KeyRing) => keys.open(r.sealed, r.key_id, aad) };
    });
  },
  async write(trx, row, sealed, keyId) {
    const result = await trx
      .updateTable('oauth_sessions')
      .set({ sealed, key_id: keyId })
      .where('id', '=', row.id)
      .where('key_id', '=', row.keyId)
      .where('sealed', '=', row.sealed)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  },
  async count(db, sealingKeyId, current) {
    const { n } = await db
      .selectFrom('oauth_sessions')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('key_id', current ? '=' : '<>', sealingKeyId)
      .executeTakeFirstOrThrow();
    return Number(n);
  },
};

const TABLES = [credentials, oauthSessions];

export async function rotateKeys(db: Db, keys: KeyRing, opts: RotationOptions = {}): Promise<RotationResult> {
  const batchSize = opts.batchSize ?? 100;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const sealingKeyId = keys.sealingKeyId;
  const result: RotationResult = { rotated: 0, alreadyCurrent: 0, failed: [], remaining: 0 };
  for (const access of TABLES) result.alreadyCurrent += await access.count(db, sealingKeyId, true);

  for (const access of TABLES) {
    // A keyset cursor rather than "until none are left": rows that fail to open are passed over
    // instead of being selected forever, and each run makes one bounded pass.
    let afterId: string | undefined;
    for (;;) {
      const batch = await db.transaction().execute(async (trx) => {
        const rows = await access.next(trx, sealingKeyId, afterId, batchSize);
        let rotated = 0;
        for (const row of rows) {
          let plaintext: Buffer;
          try {
            plaintext = row.open(keys);
          } catch (error) {
            if (!(error instanceof SealError)) throw error;
            result.failed.push({ table: access.table, id: row.id, keyId: row.keyId, reason: error.message });
            continue;
          }
          const sealed = keys.seal(plaintext, row.aad);
          plaintext.fill(0);
          if (await access.write(trx, row, sealed.ciphertext, sealed.keyId)) rotated += 1;
        }
        return { size: rows.length, lastId: rows.at(-1)?.id, rotated };
      });
      if (batch.size === 0) break;
      afterId = batch.lastId;
      result.rotated += batch.rotated;
      await opts.onBatch?.(result.rotated);
    }
  }

  for (const access of TABLES) result.remaining += await access.count(db, sealingKeyId, false);
  return result;
}
