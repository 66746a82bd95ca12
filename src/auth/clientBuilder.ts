// The one place where the URL, headers and body rewrite of a provider call are decided. The
// proxy, the durable message activity and the tests all call buildProviderCall.
import { prependSystemBlock } from './systemBlock.js';
import { SUPPORTED_ENCODINGS } from './decode.js';
import { mapRequest, type AnswerMapping } from './backends/index.js';
import { ValidationError } from '../errors.js';
import { baseUrlFor } from '../providers/registry.js';
import type { BodyTransformRule, CallAuth, HeaderSet, ProviderDefinition } from '../providers/types.js';

export interface ProviderCall {
  url: URL;
  /** Lowercase names. No content-length: the caller sets it for the body it actually sends. */
  headers: Record<string, string>;
  /** Set when this call's body must be rewritten (e.g. Anthropic OAuth /v1/messages); returns the input when nothing changes. */
  transformBody: ((body: Buffer) => Buffer) | undefined;
  /** A sign-in backend's call (src/auth/backends/): send this body, not the client's. */
  body?: Buffer;
  /** A sign-in backend's call: how its 2xx answer becomes the public API's (undefined: as it comes). */
  answer?: AnswerMapping;
}

export interface ProviderCallInput {
  auth: CallAuth;
  method: string;
  /** Path under the provider's base URL, e.g. `/v1/messages`. */
  path: string;
  /** `?a=b` or ''. */
  search?: string;
  /** Node's IncomingHttpHeaders (lowercase names). */
  clientHeaders: Record<string, string | string[] | undefined>;
  /** The plain request body; a sign-in backend that maps calls (needsBody) requires it. */
  body?: Buffer;
}

/** True when calls with this auth go through a backend that rewrites the body: the caller must hold it whole and plain. */
export function needsBody(def: ProviderDefinition, auth: CallAuth['type']): boolean {
  return def.backends[auth] !== 'public';
}

/** Client headers that never reach a provider. */
const DROPPED_HEADERS = new Set([
  // Client credentials (the Maestro key) and client state.
  'authorization',
  'x-api-key',
  'x-goog-api-key',
  'cookie',
  // Recomputed or owned by the HTTP client.
  'host',
  'content-length',
  'expect',
  // Hop-by-hop (RFC 9110 §7.6.1) and friends.
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  // Where the end user is (proxies' and CDNs' spellings): none of the provider's business.
  'forwarded',
  'x-real-ip',
  'via',
  'client-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'cf-connecting-ipv6',
  'fastly-client-ip',
  'fly-client-ip',
  'x-original-forwarded-for',
]);
const DROPPED_PREFIXES = ['x-maestro-', 'proxy-', 'x-forwarded-', ':'];

export function buildProviderCall(def: ProviderDefinition, input: ProviderCallInput): ProviderCall {
  const base = { baseUrl: baseUrlFor(def, input.auth.type), dropQueryParams: def.dropQueryParams };
  const headerSet = def.headers[input.auth.type];
  // The public path is checked before any mapping, so what a client key may call is what is checked.
  validatePath(input.path);
  const mapped = mapRequest(def.backends[input.auth.type], {
    method: input.method,
    path: input.path,
    search: input.search ?? '',
    body: input.body,
    auth: input.auth,
  });
  if (mapped) {
    // The mapping's headers describe the body it wrote and the plain answer it reads.
    const headers = { ...buildHeaders(def, headerSet, input.auth, input.clientHeaders), ...mapped.headers };
    return { url: buildUrl(base, mapped.path, mapped.search), headers, transformBody: undefined, body: mapped.body, answer: mapped.answer };
  }
  const url = urlUnder(base, input.path, input.search ?? ''); // input.path was validated above
  const headers = buildHeaders(def, headerSet, input.auth, input.clientHeaders);
  const rule = def.bodyTransforms.find(
    (r) => r.auth === input.auth.type && r.method === input.method.toUpperCase() && r.path === input.path,
  );
  return { url, headers, transformBody: rule ? (body: Buffer) => applyBodyTransform(rule, body) : undefined };
}

// --- URL ---------------------------------------------------------------------------------------

/**
 * def.baseUrl + path, guaranteed to stay on the provider's origin and under its base path.
 * Rejects (ValidationError) anything that could walk out: relative or absolute URLs, `..`/`.`
 * segments (also percent-encoded, once or repeatedly), encoded slashes, backslashes, `//`,
 * control characters and whitespace.
 */
export function buildUrl(def: Pick<ProviderDefinition, 'baseUrl' | 'dropQueryParams'>, path: string, search: string): URL {
  validatePath(path);
  return urlUnder(def, path, search);
}

/** A base URL's parts, parsed once per base URL (there are a handful): a proxied call reuses them. */
const parsedBases = new Map<string, { origin: string; basePath: string }>();

function parsedBase(baseUrl: string): { origin: string; basePath: string } {
  let parsed = parsedBases.get(baseUrl);
  if (!parsed) {
    const base = new URL(baseUrl);
    parsed = { origin: base.origin, basePath: base.pathname.replace(/\/+$/, '') };
    parsedBases.set(baseUrl, parsed);
  }
  return parsed;
}

/** buildUrl for a path already validated. */
function urlUnder(def: Pick<ProviderDefinition, 'baseUrl' | 'dropQueryParams'>, path: string, search: string): URL {
  const { origin, basePath } = parsedBase(def.baseUrl);
  const url = new URL(origin);
  url.pathname = basePath + path;
  if (url.origin !== origin || !url.pathname.startsWith(`${basePath}/`)) {
    throw new ValidationError('the request path leaves the provider base URL');
  }
  url.search = filterSearch(search, def.dropQueryParams);
  return url;
}

function validatePath(path: string): void {
  const bad = (why: string) => new ValidationError(`invalid provider path: ${why}`);
  if (typeof path !== 'string' || !path.startsWith('/')) throw bad('it must start with /');
  if (path.length > 8192) throw bad('it is too long');
  if (path.includes('//')) throw bad('empty segments (//) are not allowed');
  if (path.includes('\\')) throw bad('backslashes are not allowed');
  if (/[\s\u0000-\u001f\u007f]/.test(path)) throw bad('whitespace and control characters are not allowed');
  if (/[?#]/.test(path)) throw bad('query and fragment belong in search');
  for (const segment of path.slice(1).split('/')) {
    const decoded = decodeRepeatedly(segment);
    if (decoded === null) throw bad('malformed percent-encoding');
    if (decoded === '.' || decoded === '..') throw bad('dot segments are not allowed');
    if (decoded !== segment && /[/\\?#]/.test(decoded)) throw bad('encoded separators are not allowed');
  }
}

function decodeRepeatedly(segment: string): string | null {
  let current = segment;
  for (let i = 0; i < 5 && current.includes('%'); i++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return i === 0 ? null : current;
    }
    if (next === current) break;
    current = next;
  }
  return current;
}

function filterSearch(search: string, drop: string[]): string {
  if (search === '' || search === '?') return '';
  if (!search.startsWith('?')) throw new ValidationError('invalid provider query: it must start with ?');
  if (search.includes('#')) throw new ValidationError('invalid provider query: fragments are not allowed');
  if (drop.length === 0) return search;
  const kept = search
    .slice(1)
    .split('&')
    .filter((pair) => {
      if (pair === '') return false;
      const rawName = pair.split('=', 1)[0]!;
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        /* keep the raw name */
      }
      return !drop.includes(name);
    });
  return kept.length ? `?${kept.join('&')}` : '';
}

// --- headers -----------------------------------------------------------------------------------

/** A header set and a provider's drops as lookups, built once per definition rather than per call. */
interface CompiledHeaders {
  /** Client headers this provider never gets, beyond DROPPED_HEADERS: its dropHeaders and the names Maestro sets. */
  dropped: Set<string>;
  /** The set's allow-list (HeaderSet.forward); undefined: every client header not dropped. */
  forward: Set<string> | undefined;
  defaults: [string, string][];
  merge: [string, string[]][];
  /** Name, template, and the prefix of a client value that is kept instead (HeaderSet.keepClient). */
  set: [string, string, string | undefined][];
}
const compiledHeaders = new WeakMap<ProviderDefinition, Map<HeaderSet, CompiledHeaders>>();

function compile(def: ProviderDefinition, set: HeaderSet): CompiledHeaders {
  let byDefinition = compiledHeaders.get(def);
  if (!byDefinition) compiledHeaders.set(def, (byDefinition = new Map()));
  let compiled = byDefinition.get(set);
  if (!compiled) {
    compiled = {
      dropped: new Set([...def.dropHeaders.map((h) => h.toLowerCase()), ...Object.keys(set.set)]),
      forward: set.forward ? new Set(set.forward) : undefined,
      defaults: Object.entries(set.defaults),
      merge: Object.entries(set.merge),
      set: Object.entries(set.set).map(([name, template]) => [name, template, set.keepClient?.[name]]),
    };
    byDefinition.set(set, compiled);
  }
  return compiled;
}

function buildHeaders(
  def: ProviderDefinition,
  set: HeaderSet,
  auth: CallAuth,
  client: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const compiled = compile(def, set);
  const connectionTokens = client.connection === undefined ? undefined : new Set(headerList(client.connection).map((t) => t.toLowerCase()));
  const headers: Record<string, string> = {};

  for (const rawName of Object.keys(client)) {
    const value = client[rawName];
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (compiled.forward) {
      if (!compiled.forward.has(name)) continue;
    } else if (
      DROPPED_HEADERS.has(name) ||
      compiled.dropped.has(name) ||
      DROPPED_PREFIXES.some((prefix) => name.startsWith(prefix)) ||
      connectionTokens?.has(name)
    ) {
      continue;
    }
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  // Only codings Maestro can read: the usage is read from a decoded copy of every answer.
  if (headers['accept-encoding'] !== undefined) headers['accept-encoding'] = readableEncodings(headers['accept-encoding']);

  const vars = authVars(auth);
  for (const value of Object.values(vars)) {
    if (value !== undefined && /[^\u0020-\u007e]/.test(value)) {
      throw new ValidationError('the credential holds characters that cannot be sent in a header');
    }
  }

  for (const [name, template] of compiled.defaults) {
    if (headers[name] !== undefined) continue;
    const value = fill(template, vars);
    if (value !== undefined) headers[name] = value;
  }
  for (const [name, ours] of compiled.merge) {
    const merged = [...new Set([...ours, ...headerList(headers[name])])];
    headers[name] = merged.join(',');
  }
  for (const [name, template, keptPrefix] of compiled.set) {
    const own = keptPrefix === undefined ? undefined : client[name];
    if (typeof own === 'string' && own.startsWith(keptPrefix!)) {
      headers[name] = own;
      continue;
    }
    const value = fill(template, vars);
    if (value === undefined) delete headers[name];
    else headers[name] = value;
  }
  return headers;
}

function authVars(auth: CallAuth): Record<string, string | undefined> {
  return auth.type === 'api_key' ? { apiKey: auth.apiKey } : { accessToken: auth.accessToken, accountId: auth.accountId };
}

/** `{name}` placeholders filled from vars; undefined when any placeholder has no value. */
function fill(template: string, vars: Record<string, string | undefined>): string | undefined {
  let missing = false;
  const out = template.replace(/\{(\w+)\}/g, (_, key: string) => {
    const value = vars[key];
    if (value === undefined || value === '') missing = true;
    return value ?? '';
  });
  return missing ? undefined : out;
}

/**
 * The client's accept-encoding without the codings Maestro cannot decode (zstd, `*`, …), so the
 * provider answers in one it can: usage is read from every answer. Nothing left: identity.
 */
export function readableEncodings(value: string): string {
  const kept = value.split(',').filter((entry) => READABLE_CODINGS.has(entry.split(';', 1)[0]!.trim().toLowerCase()));
  return kept.length ? kept.map((e) => e.trim()).join(', ') : 'identity';
}
const READABLE_CODINGS: ReadonlySet<string> = new Set([...SUPPORTED_ENCODINGS, 'x-gzip', 'identity']);

function headerList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
}

// --- body --------------------------------------------------------------------------------------

function applyBodyTransform(rule: BodyTransformRule, body: Buffer): Buffer {
  switch (rule.kind) {
    case 'prepend-system-block':
      return prependSystemBlock(body, rule.text);
  }
}
