// One provider answer (or in-stream error) → one explicit failure scope, decided before anything
// acts on it (DESIGN.md "Pools", "Failures are classified…"). Pure: status, headers and, when the
// body was held, its error type and message in; a Classified out. Nothing here throws.
//
// Scopes, and what the router does with them:
// - window   a credential-wide window (5h, 7d, Codex primary/secondary) is exhausted: bench the
//            member until `until` (the window's reset); fail over.
// - family   a model-family window (7d_opus, 7d_oi…) is exhausted: bench that family only.
// - request  a 429 that names no exhausted window: cool ≤ 60 s, fail over.
// - overload 529 / overloaded_error: cool ≤ 60 s, fail over.
// - auth     401/403 (the refresh already failed by the time this is asked): fail over.
// - billing  extra usage or credits refused: never fail over as if it were a rate limit.
// - ok       2xx; other: a client error no member would answer differently (pass it through).
//
// Fail closed: a `rejected` window we do not recognise benches its own name as a family (never
// nothing); a garbage status on a 429 counts as rejected; a rejected window whose reset is
// missing is benched for a bounded time, one whose reset has passed is no bench at all (providers
// reset early and the header may be stale).
import type { FailureScope } from '../model/pools.js';
import type { ProviderId } from '../model/providers.js';
import { parseRetryAfter } from '../errors.js';
import { parseRateLimitHeaders, type RateLimitWindow } from '../usage/rateLimits.js';
import { familyOfWindow, KNOWN_FAMILIES, modelFamily } from '../model/families.js';

export interface Classified {
  scope: FailureScope | 'ok' | 'other';
  /** For scope 'family': the model family benched. */
  family?: string;
  /** For 'window'/'family': the window that binds, e.g. 'five_hour', 'seven_day_opus'. */
  window?: string;
  /** ms epoch: window/family → the window's reset; request/overload → a short cool-down (≤ 60 s); auth → undefined. */
  until?: number;
  /** Short human text, no secrets. */
  evidence: string;
  failover: boolean;
}

export type Headers = Record<string, string | string[] | undefined>;

/** What a held JSON error body says (Anthropic `error.type/message`, OpenAI `error.type|code/message`, Gemini `error.status/message`). */
export interface ErrorBodyView {
  type?: string;
  message?: string;
  /** Codex usage_limit_reached: `error.resets_at` (unix seconds). */
  resetsAt?: number;
  /** Codex usage_limit_reached: `error.resets_in_seconds`. */
  resetsInSeconds?: number;
}

export interface AnswerInput {
  provider: ProviderId;
  status: number;
  headers: Headers;
  model?: string;
  now: number;
  errorBody?: ErrorBodyView;
}

export interface StreamErrorInput {
  provider: ProviderId;
  /** The error event's `error.type` (Anthropic `overloaded_error`, `rate_limit_error`…). */
  errorType: string;
  model?: string;
  /** The headers of the (200) answer the stream belongs to. */
  headers?: Headers;
  now: number;
  message?: string;
}

/** A request-scoped cool-down without a usable retry-after. */
export const REQUEST_COOL_DEFAULT_MS = 30_000;
/** The longest a request-scoped 429 or an overload cools a member. */
export const REQUEST_COOL_MAX_MS = 60_000;
/** A rejected window whose reset nobody told us: bench this long (re-checked afterwards), never for ever. */
export const UNKNOWN_RESET_BENCH_MS = 5 * 60_000;
/** A reset further away than this is garbage, not a window (the longest windows are weekly). */
const MAX_RESET_AHEAD_MS = 32 * 24 * 3600_000;

const UNIFIED_STATUSES = new Set(['allowed', 'allowed_warning', 'rejected']);
const BILLING_TEXT =
  /credit balance|out of (?:extra usage|usage credits|credits)|extra usage|usage credits|billing|purchase credits|spend(?:ing)? (?:cap|limit)|payment|insufficient[_ ]quota|quota exceeded for billing/i;

/** Classifies one provider answer (headers and status; the error body when it was held). */
export function classifyAnswer(input: AnswerInput): Classified {
  const { provider, status, now } = input;
  if (status >= 200 && status < 300) return { scope: 'ok', evidence: `${status}`, failover: false };
  const headers = lower(input.headers);
  const body = input.errorBody;
  const bodyType = body?.type?.trim();
  const retryAfterMs = retryAfter(headers, now);

  if (status === 529 || bodyType === 'overloaded_error' || (status === 503 && /overloaded/i.test(body?.message ?? ''))) {
    return {
      scope: 'overload',
      until: now + cool(retryAfterMs),
      evidence: `${status} overloaded${bodyType ? ` (${bodyType})` : ''}`,
      failover: true,
    };
  }
  if (status === 402 || (isLimitStatus(status) && isBillingBody(body))) {
    // A rate limit the headers prove wins over the words (a 429 that also mentions extra usage is still a 5h exhaustion).
    const limits = status === 429 ? limitOf(provider, headers, input.model, now, body) : undefined;
    if (limits && (limits.scope === 'window' || limits.scope === 'family')) return limits;
    return billing(`${status} ${bodyType ?? 'billing'}: ${short(body?.message ?? 'payment required')}`);
  }
  if (status === 401 || status === 403) {
    return { scope: 'auth', evidence: `${status} ${bodyType ?? (status === 401 ? 'unauthorized' : 'forbidden')}`, failover: true };
  }
  if (status === 429) {
    return (
      limitOf(provider, headers, input.model, now, body) ?? {
        scope: 'request',
        until: now + cool(retryAfterMs),
        evidence: `429 without an exhausted window${retryAfterMs !== undefined ? `, retry-after ${Math.ceil(retryAfterMs / 1000)}s` : ''}`,
        failover: true,
      }
    );
  }
  return { scope: 'other', evidence: `${status}${bodyType ? ` ${bodyType}` : ''}`, failover: false };
}

/**
 * Classifies an error event that arrived in a 200 stream before any content. `headers` are that
 * answer's: when they show an exhausted window, the rate-limit error is that window's.
 */
export function classifyStreamError(input: StreamErrorInput): Classified {
  const { provider, now } = input;
  const type = input.errorType.trim();
  const headers = lower(input.headers ?? {});
  switch (type) {
    case 'overloaded_error':
      return {
        scope: 'overload',
        until: now + REQUEST_COOL_DEFAULT_MS,
        evidence: 'stream overloaded_error before content',
        failover: true,
      };
    case 'rate_limit_error':
    case 'rate_limit_exceeded':
    case 'usage_limit_reached':
    case 'RESOURCE_EXHAUSTED': {
      const limits = limitOf(provider, headers, input.model, now, { type, message: input.message });
      if (limits && (limits.scope === 'window' || limits.scope === 'family'))
        return { ...limits, evidence: `stream ${type}: ${limits.evidence}` };
      return { scope: 'request', until: now + REQUEST_COOL_DEFAULT_MS, evidence: `stream ${type} before content`, failover: true };
    }
    case 'insufficient_quota':
    case 'billing_error':
      return billing(`stream ${type}`);
    case 'authentication_error':
    case 'permission_error':
      return { scope: 'auth', evidence: `stream ${type}`, failover: true };
    default:
      return { scope: 'other', evidence: `stream ${short(type)}`, failover: false };
  }
}

/**
 * Plan limits only: whether an answer shows the member spending extra usage. Anthropic:
 * `…-unified-overage-in-use: true`, a representative claim of `overage`, or overage `allowed`
 * while the unified status is past the plan (`rejected`). Odd values count as in use (fail
 * closed). Other providers report nothing we can read → not in use.
 */
export function overageOf(provider: ProviderId, headers: Headers): { inUse: boolean; status?: string; evidence?: string } {
  if (provider !== 'anthropic') return { inUse: false };
  // Every answer of a pool is read here: Node's own (lowercase) headers are read as they are, not
  // copied; a subscription answer always carries the unified status, so only others are scanned.
  const h =
    headers['anthropic-ratelimit-unified-status'] !== undefined || !Object.keys(headers).some((name) => name !== name.toLowerCase())
      ? headers
      : lower(headers);
  const get = (name: string) => {
    const raw = h[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    return typeof value === 'string' ? value.trim() : undefined;
  };
  const inUseRaw = get('anthropic-ratelimit-unified-overage-in-use')?.toLowerCase();
  const status = get('anthropic-ratelimit-unified-overage-status');
  const unified = get('anthropic-ratelimit-unified-status')?.toLowerCase();
  const claim = get('anthropic-ratelimit-unified-representative-claim')?.toLowerCase();
  const withStatus = status !== undefined ? { status } : {};
  if (inUseRaw !== undefined && inUseRaw !== 'false') {
    return {
      inUse: true,
      ...withStatus,
      evidence: inUseRaw === 'true' ? 'overage-in-use: true' : `overage-in-use: unreadable (${short(inUseRaw)})`,
    };
  }
  if (claim === 'overage') return { inUse: true, ...withStatus, evidence: 'representative-claim: overage' };
  if (unified === 'rejected' && status !== undefined) {
    const s = status.toLowerCase();
    if (s === 'allowed' || s === 'allowed_warning')
      return { inUse: true, status, evidence: `unified status rejected, overage-status ${s}` };
    if (s !== 'rejected') return { inUse: true, status, evidence: `unified status rejected, overage-status unreadable (${short(s)})` };
  }
  if (unified !== undefined && !UNIFIED_STATUSES.has(unified) && status !== undefined && status.toLowerCase() !== 'rejected') {
    return { inUse: true, status, evidence: `unified status unreadable (${short(unified)}), overage-status ${short(status)}` };
  }
  return { inUse: false, ...withStatus };
}

/**
 * The error type and message of a held JSON error body, for classifyAnswer: Anthropic
 * `{type:'error', error:{type, message}}`; OpenAI `{error:{type, code, message}}` (the code when it
 * is the telling word, e.g. `insufficient_quota`) and Codex `{error:{type:'usage_limit_reached',
 * resets_at, resets_in_seconds}}`; Gemini `{error:{status, message}}` (also inside an array).
 * Undefined for anything else or a body over 64 KiB.
 */
export function errorBodyOf(body: Buffer | string | undefined): ErrorBodyView | undefined {
  if (body === undefined || body.length === 0 || body.length > 64 * 1024) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return undefined;
  }
  const outer = Array.isArray(parsed) ? (parsed[0] as unknown) : parsed;
  const error = isRecord(outer) && isRecord(outer.error) ? outer.error : undefined;
  if (!error) return undefined;
  const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const code = str(error.code);
  const type = (code && TELLING_CODES.has(code) ? code : undefined) ?? str(error.type) ?? str(error.status) ?? code;
  const view: ErrorBodyView = {};
  if (type !== undefined) view.type = type;
  const message = str(error.message);
  if (message !== undefined) view.message = message.slice(0, 1000);
  const resetsAt = num(error.resets_at);
  if (resetsAt !== undefined) view.resetsAt = resetsAt;
  const resetsIn = num(error.resets_in_seconds);
  if (resetsIn !== undefined) view.resetsInSeconds = resetsIn;
  return Object.keys(view).length > 0 ? view : undefined;
}

const TELLING_CODES = new Set(['insufficient_quota', 'rate_limit_exceeded', 'usage_limit_reached', 'billing_hard_limit_reached']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// Rate limits from headers (and Codex/Gemini error bodies)

function limitOf(
  provider: ProviderId,
  headers: Record<string, string>,
  model: string | undefined,
  now: number,
  body: ErrorBodyView | undefined,
): Classified | undefined {
  if (provider === 'anthropic') return anthropicLimit(headers, model, now);
  if (provider === 'openai') return openaiLimit(headers, model, now, body);
  return geminiLimit(model, now, body);
}

function anthropicLimit(headers: Record<string, string>, model: string | undefined, now: number): Classified | undefined {
  const state = parseRateLimitHeaders('anthropic', headers, new Date(now));
  const overallRaw = headers['anthropic-ratelimit-unified-status']?.toLowerCase();
  const retryAfterMs = retryAfter(headers, now);
  const overallReset = isoMs(state?.reset);
  const rejected: Array<{ name: string; w: RateLimitWindow }> = [];
  for (const [name, w] of Object.entries(state?.windows ?? {})) if (windowRejected(w)) rejected.push({ name, w });

  const benches = rejected.map(({ name, w }) => bench(name, w, overallReset, retryAfterMs, now));
  const live = benches.filter((b) => b.until > now);
  const stale = benches.filter((b) => b.until <= now);
  const credential = live.filter((b) => familyOfWindow(b.name) === undefined);
  if (credential.length > 0) {
    const binding = credential.reduce((a, b) => (b.until > a.until ? b : a));
    return { scope: 'window', window: binding.name, until: binding.until, evidence: `429 ${describe(credential)}`, failover: true };
  }
  const families = live.filter((b) => familyOfWindow(b.name) !== undefined);
  if (families.length > 0) return familyBench(families, model);

  const overall = overallRaw === undefined ? undefined : UNIFIED_STATUSES.has(overallRaw) ? overallRaw : 'rejected'; // fail closed
  if (overall === 'rejected' && stale.length === 0) {
    const claim = state?.representativeClaim?.toLowerCase();
    if (claim === 'overage') return billing('429 unified rejected with representative-claim overage (extra usage refused)');
    const name = claim && /^[a-z0-9_]+$/.test(claim) ? claim : 'unified';
    const b = bench(name, state?.windows[name] ?? {}, overallReset, retryAfterMs, now);
    if (b.until > now) {
      const text = `429 unified status ${overallRaw ?? ''} (claim ${claim ?? 'none'})${b.known ? `, resets ${isoShort(b.until)}` : ', reset unknown'}`;
      if (familyOfWindow(name) !== undefined && name !== 'unified') return { ...familyBench([b], model), evidence: text };
      return { scope: 'window', window: name, until: b.until, evidence: text, failover: true };
    }
  }
  if (stale.length > 0) {
    return {
      scope: 'request',
      until: now + cool(retryAfterMs),
      evidence: `429 ${stale.map((b) => b.name).join(', ')} rejected but reset already passed: not a bench`,
      failover: true,
    };
  }
  // Extra usage refused and nothing else: out of credits (better-ccflare #261 shape), not a rate limit.
  const disabled = headers['anthropic-ratelimit-unified-overage-disabled-reason'];
  const overage = headers['anthropic-ratelimit-unified-overage-status']?.toLowerCase();
  if (
    (overall === undefined || overall === 'rejected') &&
    (disabled === 'out_of_credits' || (overall === 'rejected' && overage === 'rejected'))
  ) {
    return billing(`429 extra usage refused (overage ${overage ?? 'unknown'}${disabled ? `, ${short(disabled)}` : ''})`);
  }
  return undefined;
}

function openaiLimit(
  headers: Record<string, string>,
  model: string | undefined,
  now: number,
  body: ErrorBodyView | undefined,
): Classified | undefined {
  const state = parseRateLimitHeaders('openai', headers, new Date(now));
  const retryAfterMs = retryAfter(headers, now);
  const exhausted = Object.entries(state?.windows ?? {})
    .filter(([name, w]) => isCodexWindow(name) && w.utilization !== undefined && w.utilization >= 1)
    .map(([name, w]) => bench(name, w, undefined, retryAfterMs, now));
  const fromBody = bodyReset(body, now);
  const live = exhausted.filter((b) => b.until > now);
  const credential = live.filter((b) => familyOfWindow(b.name) === undefined);
  if (credential.length > 0) {
    const binding = credential.reduce((a, b) => (b.until > a.until ? b : a));
    return { scope: 'window', window: binding.name, until: binding.until, evidence: `429 codex ${describe(credential)}`, failover: true };
  }
  const families = live.filter((b) => familyOfWindow(b.name) !== undefined);
  if (families.length > 0) return familyBench(families, model);
  if (body?.type === 'usage_limit_reached') {
    const until = fromBody ?? (retryAfterMs !== undefined && retryAfterMs > 0 ? now + retryAfterMs : now + UNKNOWN_RESET_BENCH_MS);
    return {
      scope: 'window',
      window: 'usage_limit',
      until,
      evidence: `429 usage_limit_reached${fromBody ? `, resets ${isoShort(until)}` : ', reset unknown'}`,
      failover: true,
    };
  }
  return undefined;
}

function geminiLimit(model: string | undefined, now: number, body: ErrorBodyView | undefined): Classified | undefined {
  // Code Assist: "You have exhausted your capacity on this model. Your quota will reset after 3h20m15s."
  const after = /reset after (\d+h)?(\d+m)?(\d+(?:\.\d+)?s)?/i.exec(body?.message ?? '');
  if (!after || (!after[1] && !after[2] && !after[3])) return undefined;
  const seconds = (parseFloat(after[1] ?? '0') * 3600 || 0) + (parseFloat(after[2] ?? '0') * 60 || 0) + (parseFloat(after[3] ?? '0') || 0);
  if (!(seconds * 1000 > REQUEST_COOL_MAX_MS) || seconds * 1000 > MAX_RESET_AHEAD_MS) return undefined;
  const until = now + Math.ceil(seconds) * 1000;
  const family = modelFamily(model) ?? model ?? 'unknown';
  return {
    scope: 'family',
    family,
    window: 'model_quota',
    until,
    evidence: `429 model quota exhausted, resets ${isoShort(until)}`,
    failover: true,
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

interface Bench {
  name: string;
  until: number;
  /** Whether `until` is a reset the provider stated (else a bounded guess). */
  known: boolean;
  utilization?: number;
}

/** A window counts as rejected on a 429 when it says so, says something unreadable, or is used up without a status. */
function windowRejected(w: RateLimitWindow): boolean {
  if (w.status !== undefined) {
    const s = w.status.toLowerCase();
    return s === 'rejected' || !UNIFIED_STATUSES.has(s);
  }
  return w.utilization !== undefined && w.utilization >= 1;
}

function bench(name: string, w: RateLimitWindow, overallReset: number | undefined, retryAfterMs: number | undefined, now: number): Bench {
  const utilization = w.utilization !== undefined ? { utilization: w.utilization } : {};
  const own = isoMs(w.reset);
  if (own !== undefined && own - now <= MAX_RESET_AHEAD_MS) return { name, until: own, known: true, ...utilization };
  if (overallReset !== undefined && overallReset > now && overallReset - now <= MAX_RESET_AHEAD_MS)
    return { name, until: overallReset, known: true, ...utilization };
  if (retryAfterMs !== undefined && retryAfterMs > REQUEST_COOL_MAX_MS && retryAfterMs <= MAX_RESET_AHEAD_MS)
    return { name, until: now + retryAfterMs, known: true, ...utilization };
  return { name, until: now + UNKNOWN_RESET_BENCH_MS, known: false, ...utilization };
}

/** The family a scoped window benches: a model family it names, else the request's model's (the one refused), else its own name. */
function familyBench(benches: Bench[], model: string | undefined): Classified {
  const requested = modelFamily(model);
  const resolve = (b: Bench) => {
    const own = familyOfWindow(b.name)!;
    return KNOWN_FAMILIES.includes(own) ? own : (requested ?? own);
  };
  const binding = benches.find((b) => resolve(b) === requested) ?? benches.reduce((a, b) => (b.until > a.until ? b : a));
  return {
    scope: 'family',
    family: resolve(binding),
    window: binding.name,
    until: binding.until,
    evidence: `429 ${describe(benches)}`,
    failover: true,
  };
}

function describe(benches: Bench[]): string {
  return benches
    .map(
      (b) =>
        `${b.name} rejected${b.utilization !== undefined ? ` (${Math.round(b.utilization * 100)} %)` : ''}${b.known ? `, resets ${isoShort(b.until)}` : ', reset unknown'}`,
    )
    .join('; ');
}

function billing(evidence: string): Classified {
  return { scope: 'billing', evidence, failover: false };
}

function isLimitStatus(status: number): boolean {
  return status === 400 || status === 403 || status === 429;
}

function isBillingBody(body: ErrorBodyView | undefined): boolean {
  if (!body) return false;
  if (body.type === 'insufficient_quota' || body.type === 'billing_error' || body.type === 'billing_hard_limit_reached') return true;
  return BILLING_TEXT.test(body.message ?? '');
}

function isCodexWindow(name: string): boolean {
  return /(?:^|_)(?:primary|secondary)$/.test(name);
}

function bodyReset(body: ErrorBodyView | undefined, now: number): number | undefined {
  if (body?.resetsAt !== undefined && Number.isFinite(body.resetsAt)) {
    const ms = body.resetsAt * 1000;
    if (ms > now && ms - now <= MAX_RESET_AHEAD_MS) return ms;
  }
  if (body?.resetsInSeconds !== undefined && Number.isFinite(body.resetsInSeconds) && body.resetsInSeconds > 0) {
    const ms = body.resetsInSeconds * 1000;
    if (ms <= MAX_RESET_AHEAD_MS) return now + ms;
  }
  return undefined;
}

/** A short cool-down: retry-after when given, capped at 60 s; 30 s when not; at least 1 s. */
function cool(retryAfterMs: number | undefined): number {
  if (retryAfterMs === undefined) return REQUEST_COOL_DEFAULT_MS;
  return Math.min(REQUEST_COOL_MAX_MS, Math.max(1_000, retryAfterMs));
}

function retryAfter(headers: Record<string, string>, now: number): number | undefined {
  const seconds = parseRetryAfter(headers['retry-after'], now);
  if (seconds !== undefined) return seconds * 1000;
  const ms = headers['retry-after-ms'];
  return ms !== undefined && /^\d+(\.\d+)?$/.test(ms) ? Number(ms) : undefined;
}

/** Header names lower-cased, first values only. */
function lower(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(headers)) {
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (typeof value === 'string') out[name.toLowerCase()] = value.trim();
  }
  return out;
}

function isoMs(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : undefined;
}

function isoShort(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Provider text in evidence: bounded, one line. */
function short(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 120 ? `${line.slice(0, 117)}…` : line;
}
