// Where a call's session comes from (DESIGN.md "Pools", Sessions) and the key it is stored under.
// The client's session id never leaves this module raw: bindings are stored under a hash
// namespaced by the calling key, so two keys that send the same id never share a binding.
import { createHash } from 'node:crypto';

const MAX_BODY = 1024 * 1024;
const MAX_ID = 200;
/** Claude Code before v2.1.78: `user_<sha256 hex>_account_<uuid or empty>_session_<uuid>`. */
const LEGACY_USER_ID = /^user_[0-9a-f]+_account_[0-9a-f-]*_session_([0-9a-f-]+)$/i;

/**
 * The session id of a call: `x-claude-code-session-id`; else the body's `metadata.user_id`
 * session (Claude Code ≥ 2.1.78 sends a JSON string with `session_id`, older versions the
 * `…_session_<uuid>` form); else `x-maestro-session`. Undefined when none, or when it is longer
 * than 200 characters.
 */
export function sessionIdOf(headers: Record<string, string | string[] | undefined>, body: Buffer | undefined): string | undefined {
  const fromHeader = header(headers, 'x-claude-code-session-id');
  if (fromHeader !== undefined) return bounded(fromHeader);
  const fromBody = body ? sessionOfBody(body) : undefined;
  if (fromBody !== undefined) return bounded(fromBody);
  const maestro = header(headers, 'x-maestro-session');
  return maestro === undefined ? undefined : bounded(maestro);
}

/** Session keys already computed (a session's every call would hash the same input again); dropped whole when full. */
const known = new Map<string, string>();
const KNOWN_MAX = 10_000;

/** The stored form of a session: sha256(keyId \0 sessionId), base64url, 32 characters. */
export function sessionKeyOf(keyId: string, sessionId: string): string {
  const input = `${keyId}\0${sessionId}`;
  let key = known.get(input);
  if (key === undefined) {
    key = createHash('sha256').update(input).digest('base64url').slice(0, 32);
    if (known.size >= KNOWN_MAX) known.clear();
    known.set(input, key);
  }
  return key;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const raw = headers[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function bounded(id: string): string | undefined {
  return id.length > MAX_ID ? undefined : id;
}

function sessionOfBody(body: Buffer): string | undefined {
  // Only a body Maestro would hold anyway; a cheap check first so bodies without metadata skip the parse.
  if (body.length === 0 || body.length > MAX_BODY || !body.includes('"metadata"')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const metadata = isObject(parsed) ? parsed.metadata : undefined;
  const userId = isObject(metadata) ? metadata.user_id : undefined;
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > 4096) return undefined;
  if (userId.startsWith('{')) {
    try {
      const inner: unknown = JSON.parse(userId);
      const session = isObject(inner) ? inner.session_id : undefined;
      return typeof session === 'string' && session.trim() !== '' ? session.trim() : undefined;
    } catch {
      return undefined;
    }
  }
  return LEGACY_USER_ID.exec(userId)?.[1];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
