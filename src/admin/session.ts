// The admin page's sign-in: the admin key is pasted once, checked exactly as the API checks keys
// (the same registry and the same failed-key limiter), and exchanged for a server-side session
// (src/db/adminSessions.ts). The browser keeps only the session token, in an HttpOnly,
// SameSite=Strict cookie (Secure over HTTPS), never the key. Every change carries the session's
// CSRF token (header x-csrf-token or form field _csrf).
import { timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { AdminSession, AdminSessionStore } from '../db/adminSessions.js';
import type { Principal } from '../clientKeys/registry.js';
import { ForbiddenError, MaestroError, UnauthorizedError } from '../errors.js';

export const SESSION_COOKIE = 'maestro_admin';
/** A session unused this long ends. */
export const IDLE_MS = 30 * 60_000;
/** A session ends this long after sign-in, used or not. */
export const ABSOLUTE_MS = 12 * 3600_000;

export interface SignInDeps {
  sessions: Pick<AdminSessionStore, 'create' | 'use' | 'delete' | 'deleteExpired'>;
  /** The API's key registry: the same check as every /v1 call. */
  authenticate(key: string): Principal | UnauthorizedError | Promise<Principal | UnauthorizedError>;
  /** The API's failed-key limiter, per client address. */
  limiter: { refused(address: string): MaestroError | undefined; failed(address: string): void };
  addressOf(req: Request): string;
  /** Whether the key a session was opened with may still be used (not revoked, not expired). */
  keyStillValid(keyId: string): Promise<boolean>;
}

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * No Path attribute: the browser scopes the cookie to the directory the sign-in was posted from
 * (`…/admin`), so it is sent to the admin page only, whatever prefix a reverse proxy adds.
 */
function cookie(req: Request, value: string, maxAgeSeconds: number): string {
  const secure = req.secure ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

/** Checks the pasted key and opens a session; the error to show otherwise (never echoing the key). */
export async function signIn(deps: SignInDeps, req: Request, res: Response, key: string): Promise<void> {
  const address = deps.addressOf(req);
  const limited = deps.limiter.refused(address);
  if (limited) throw limited;
  const who = await deps.authenticate(key.trim());
  if (who instanceof MaestroError) {
    deps.limiter.failed(address);
    throw new UnauthorizedError('that key is not a valid Maestro admin key');
  }
  if (who.role !== 'admin') {
    // A client key is refused like a wrong one, and counted: the page is for admin keys only.
    deps.limiter.failed(address);
    throw new ForbiddenError('client keys cannot open the admin page; sign in with an admin key');
  }
  // Ended sessions go at each sign-in: the table stays as small as the number of people signed in.
  await deps.sessions.deleteExpired(IDLE_MS);
  const { token } = await deps.sessions.create(who.keyId, ABSOLUTE_MS);
  res.setHeader('set-cookie', cookie(req, token, ABSOLUTE_MS / 1000));
}

export async function signOut(deps: Pick<SignInDeps, 'sessions'>, req: Request, res: Response): Promise<void> {
  const token = readCookie(req, SESSION_COOKIE);
  if (token) await deps.sessions.delete(token);
  res.setHeader('set-cookie', cookie(req, '', 0));
}

/** The request's live session, or undefined (no cookie, unknown, expired, or its key revoked). */
export async function currentSession(deps: SignInDeps, req: Request): Promise<AdminSession | undefined> {
  const token = readCookie(req, SESSION_COOKIE);
  if (!token || !/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
  const session = await deps.sessions.use(token, IDLE_MS);
  if (!session) return undefined;
  if (!(await deps.keyStillValid(session.keyId))) {
    await deps.sessions.delete(token);
    return undefined;
  }
  return session;
}

/** Whether a change request carries the session's CSRF token (header or form field). */
export function csrfOk(req: Request, session: AdminSession): boolean {
  const header = req.headers['x-csrf-token'];
  const body: unknown = req.body;
  const field = body && typeof body === 'object' && '_csrf' in body ? (body as { _csrf: unknown })._csrf : undefined;
  const given = typeof header === 'string' ? header : typeof field === 'string' ? field : '';
  const a = Buffer.from(given);
  const b = Buffer.from(session.csrfToken);
  return a.length === b.length && timingSafeEqual(a, b);
}
