// admin_sessions (migrations/0012_admin_sessions.ts): the admin page's server-side sessions. The
// browser holds only a random session token in an HttpOnly cookie; this table holds its SHA-256,
// the admin key's id (never the key), the CSRF token and the two expiries.
import { createHash, randomBytes } from 'node:crypto';
import { sql, type ColumnType } from 'kysely';
import type { Db } from './pool.js';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
interface AdminSessionsTable {
  token_hash: Buffer;
  key_id: string;
  csrf_token: string;
  created_at: Timestamp;
  last_seen_at: Timestamp;
  expires_at: Timestamp;
}

export interface AdminSession {
  keyId: string;
  csrfToken: string;
  createdAt: Date;
  expiresAt: Date;
}

const hashOf = (token: string) => createHash('sha256').update(token).digest();
// Every time here is the database's clock: `now()` is what the columns' defaults write, with
// microseconds. Comparing them with this process's Date (milliseconds, and another host's clock in
// production) let a session idle past its end be found again within the same millisecond.
const now = sql<Date>`now()`;
const ago = (ms: number) => sql<Date>`now() - make_interval(secs => ${ms / 1000})`;
const fromNow = (ms: number) => sql<Date>`now() + make_interval(secs => ${ms / 1000})`;
const randomToken = () => randomBytes(32).toString('base64url');

export class AdminSessionStore {
  private readonly db;

  constructor(db: Db) {
    // The table is the admin page's own: declared here rather than in the shared Database type.
    this.db = db.withTables<{ admin_sessions: AdminSessionsTable }>();
  }

  /** A new session for `keyId`, ending at the latest `absoluteMs` from now; the token is returned once. */
  async create(keyId: string, absoluteMs: number): Promise<{ token: string; session: AdminSession }> {
    const token = randomToken();
    const csrfToken = randomToken();
    const row = await this.db
      .insertInto('admin_sessions')
      .values({ token_hash: hashOf(token), key_id: keyId, csrf_token: csrfToken, expires_at: fromNow(absoluteMs) })
      .returning(['key_id', 'csrf_token', 'created_at', 'expires_at'])
      .executeTakeFirstOrThrow();
    return { token, session: { keyId: row.key_id, csrfToken: row.csrf_token, createdAt: row.created_at, expiresAt: row.expires_at } };
  }

  /**
   * The live session of `token`, its idle clock restarted; undefined when unknown, past its
   * absolute end or idle longer than `idleMs` (one statement: no read-then-write race).
   */
  async use(token: string, idleMs: number): Promise<AdminSession | undefined> {
    const row = await this.db
      .updateTable('admin_sessions')
      .set({ last_seen_at: now })
      .where('token_hash', '=', hashOf(token))
      .where('expires_at', '>', now)
      .where('last_seen_at', '>', ago(idleMs))
      .returning(['key_id', 'csrf_token', 'created_at', 'expires_at'])
      .executeTakeFirst();
    return row && { keyId: row.key_id, csrfToken: row.csrf_token, createdAt: row.created_at, expiresAt: row.expires_at };
  }

  /** Sign-out. */
  async delete(token: string): Promise<void> {
    await this.db.deleteFrom('admin_sessions').where('token_hash', '=', hashOf(token)).execute();
  }

  /** Every session of a key (revoked or expired). */
  async deleteForKey(keyId: string): Promise<void> {
    await this.db.deleteFrom('admin_sessions').where('key_id', '=', keyId).execute();
  }

  /** Sessions past their absolute end or idle longer than `idleMs`. */
  async deleteExpired(idleMs: number): Promise<number> {
    const result = await this.db
      .deleteFrom('admin_sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', now), eb('last_seen_at', '<=', ago(idleMs))]))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
