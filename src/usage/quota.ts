// Quota state from the providers' quota endpoints, in the one shape headers use (rateLimits.ts),
// and the rules both share: windows merge by name (newest observation wins), a reset that moves
// by under 60 s is jitter (the known reset stays), a window whose reset has passed is unknown
// (never exhausted). Pure: answers in, plain objects out; nothing here throws.
//
// Answers read:
// - Anthropic `GET /api/oauth/usage`: `{five_hour: {utilization: 26, resets_at}, seven_day: …,
//   seven_day_<family>: …, extra_usage: {…}}` and the newer `limits: [{…}]` list (each entry names
//   its window with `window`, `name`, `id` or `type`). Utilization is in PERCENT (26 → 0.26);
//   a null `resets_at` is unknown capacity (the window is kept, without utilization); a null window is left out.
// - ChatGPT sign-in `GET /backend-api/wham/usage`: `{rate_limit: {primary_window: {used_percent,
//   limit_window_seconds, reset_at | reset_after_seconds}, secondary_window: …}}` → `primary`,
//   `secondary` (the names the Codex headers use), and `credits: {has_credits, unlimited, balance}`
//   (what the account can still spend past its plan's windows) → `credits`.
// - Gemini Code Assist `POST /v1internal:retrieveUserQuota {project}`: `{buckets: [{modelId,
//   tokenType, remainingFraction, resetTime}]}`, one daily bucket per model. `remainingFraction` is
//   a fraction LEFT (0.87 → utilization 0.13); each bucket becomes `one_day_<family>` (the model's
//   family, model/families.ts, so a spent bucket benches that family only), the most used bucket of
//   a family standing for it.
import { modelFamily } from '../model/families.js';
import type { QuotaFormat } from '../providers/types.js';
import type { RateLimitState, RateLimitWindow } from './rateLimits.js';

/** Which answer format a provider's quota endpoint speaks (src/providers/types.ts QuotaEndpoint). */
export type { QuotaFormat };

/** A reset that moves by less than this is the same window reported again. */
export const RESET_JITTER_MS = 60_000;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function finiteNumber(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  if (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v.trim())) return Number(v);
  return undefined;
}

function isoOf(v: unknown): string | undefined {
  if (typeof v === 'string' && v.trim() !== '') {
    const ms = Date.parse(v);
    return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
  }
  const n = finiteNumber(v);
  if (n === undefined || n === 0) return undefined;
  const ms = n >= 1e11 ? n : n * 1000; // unix seconds (or ms when that large)
  const date = new Date(ms);
  return Number.isFinite(date.getTime()) ? date.toISOString() : undefined;
}

function snake(name: string): string {
  return name
    .trim()
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toLowerCase();
}

/** One window from `{utilization | used_percent | percent, resets_at | reset_at | …}` (percent → fraction). */
function windowFrom(entry: Json, observedAt: string, nowMs: number): RateLimitWindow | undefined {
  const window: RateLimitWindow = { source: 'endpoint', observedAt };
  // An explicit null reset: the provider does not know when (or whether) this window runs out,
  // so its capacity is unknown: no utilization, never counted as exhausted.
  if (entry.resets_at === null || entry.reset_at === null) return window;
  const percent = finiteNumber(entry.utilization ?? entry.used_percent ?? entry.percent_used ?? entry.percent);
  if (percent !== undefined) window.utilization = percent / 100;
  const reset = isoOf(entry.resets_at ?? entry.reset_at ?? entry.resetsAt ?? entry.reset);
  if (reset !== undefined) window.reset = reset;
  else {
    const after = finiteNumber(entry.reset_after_seconds ?? entry.resets_in_seconds);
    if (after !== undefined) window.reset = new Date(nowMs + after * 1000).toISOString();
  }
  const seconds = finiteNumber(entry.limit_window_seconds ?? entry.window_seconds);
  if (seconds !== undefined) window.windowMinutes = seconds / 60;
  if (typeof entry.status === 'string') window.status = entry.status;
  return window.utilization === undefined && window.reset === undefined && window.status === undefined ? undefined : window;
}

/** A quota endpoint's answer as rate-limit state; undefined when it held no window at all. */
export function parseQuotaAnswer(format: QuotaFormat, body: unknown, now: Date = new Date()): RateLimitState | undefined {
  if (!isObject(body)) return undefined;
  const observedAt = now.toISOString();
  const state: RateLimitState = { observedAt, windows: {} };
  const nowMs = now.getTime();
  if (format === 'anthropic-oauth-usage') {
    for (const [name, value] of Object.entries(body)) {
      if (name === 'limits' || name === 'extra_usage' || !isObject(value)) continue;
      const window = windowFrom(value, observedAt, nowMs);
      if (window) state.windows[snake(name)] = window;
    }
    if (Array.isArray(body.limits)) {
      for (const entry of body.limits) {
        if (!isObject(entry)) continue;
        const name = [entry.window, entry.name, entry.id, entry.type].find((v): v is string => typeof v === 'string' && v.trim() !== '');
        const window = name === undefined ? undefined : windowFrom(entry, observedAt, nowMs);
        if (name !== undefined && window) state.windows[snake(name)] = window;
      }
    }
    const extra = body.extra_usage;
    if (isObject(extra) && typeof extra.is_enabled === 'boolean') {
      const percent = finiteNumber(extra.utilization);
      state.overage = {
        status: extra.is_enabled ? 'enabled' : 'disabled',
        ...(percent === undefined ? {} : { utilization: percent / 100 }),
      };
    }
  } else if (format === 'code-assist-user-quota') {
    for (const bucket of Array.isArray(body.buckets) ? body.buckets : []) {
      if (!isObject(bucket) || typeof bucket.modelId !== 'string' || bucket.modelId.trim() === '') continue;
      const left =
        typeof bucket.remainingFraction === 'number' && Number.isFinite(bucket.remainingFraction) ? bucket.remainingFraction : undefined;
      const window: RateLimitWindow = { source: 'endpoint', observedAt, windowMinutes: 24 * 60 };
      // Rounded to 1e-6: 1 − 0.8 would otherwise read 0.19999999999999996.
      if (left !== undefined) window.utilization = Math.round(Math.min(1, Math.max(0, 1 - left)) * 1e6) / 1e6;
      const reset = isoOf(bucket.resetTime);
      if (reset !== undefined) window.reset = reset;
      if (window.utilization === undefined && window.reset === undefined) continue;
      const name = `one_day_${modelFamily(bucket.modelId) ?? snake(bucket.modelId)}`;
      const before = state.windows[name];
      if (!before || (window.utilization ?? 0) > (before.utilization ?? 0)) state.windows[name] = window;
    }
  } else {
    const limits = isObject(body.rate_limit) ? body.rate_limit : body;
    for (const which of ['primary', 'secondary'] as const) {
      const entry = limits[`${which}_window`];
      const window = isObject(entry) ? windowFrom(entry, observedAt, nowMs) : undefined;
      if (window) state.windows[which] = window;
    }
    if (limits.limit_reached === true) state.status = 'rejected';
    else if (limits.allowed === true) state.status = 'allowed';
    const credits = body.credits;
    if (isObject(credits)) {
      state.credits = {
        ...(typeof credits.has_credits === 'boolean' ? { hasCredits: credits.has_credits } : {}),
        ...(typeof credits.unlimited === 'boolean' ? { unlimited: credits.unlimited } : {}),
        ...(typeof credits.balance === 'string' || typeof credits.balance === 'number' ? { balance: String(credits.balance) } : {}),
      };
    }
  }
  return Object.keys(state.windows).length > 0 || state.status !== undefined ? state : undefined;
}

/** Stamps windows that do not say where they came from (a header observation). */
export function stampWindows(state: RateLimitState, source: 'header' | 'endpoint'): RateLimitState {
  let changed = false;
  const windows: Record<string, RateLimitWindow> = {};
  for (const [name, w] of Object.entries(state.windows)) {
    if (w.source && w.observedAt) windows[name] = w;
    else {
      changed = true;
      windows[name] = { ...w, source: w.source ?? source, observedAt: w.observedAt ?? state.observedAt };
    }
  }
  return changed ? { ...state, windows } : state;
}

/**
 * a later than b. Both are usually toISOString() output (same length, UTC): compared as strings,
 * which orders them as times without parsing — this runs for every proxied answer's headers.
 */
function isLater(a: string, b: string): boolean {
  if (a.length === b.length && a.endsWith('Z') && b.endsWith('Z')) return a > b;
  return Date.parse(a) > Date.parse(b);
}

/**
 * Two states of one credential as one: each window from the newer observation (a reset moving by
 * under RESET_JITTER_MS keeps the older reset: jitter, not a new window); the top-level fields
 * from the newer state. `stale` holds only while the newest endpoint read was refused.
 */
export function mergeRateLimits(a: RateLimitState | null | undefined, b: RateLimitState | null | undefined): RateLimitState | null {
  if (!a) return b ?? null;
  if (!b) return a;
  const [older, newer] = isLater(a.observedAt, b.observedAt) ? [b, a] : [a, b];
  const windows: Record<string, RateLimitWindow> = { ...older.windows };
  for (const name in newer.windows) {
    const w = newer.windows[name]!;
    const before = windows[name];
    if (before && isLater(before.observedAt ?? older.observedAt, w.observedAt ?? newer.observedAt)) continue;
    if (
      before?.reset &&
      w.reset &&
      before.reset !== w.reset &&
      Math.abs(Date.parse(before.reset) - Date.parse(w.reset)) < RESET_JITTER_MS
    ) {
      windows[name] = { ...w, reset: before.reset };
    } else windows[name] = w;
  }
  const merged: RateLimitState = { ...older, ...newer, windows };
  if (merged.stale !== undefined && !newer.stale) delete merged.stale;
  return merged;
}

/**
 * The rate-limit book's merge of a fresh header observation (this process's newest, on every
 * proxied answer): mergeRateLimits(before, stampWindows(fresh, 'header')), in one pass and without
 * copying each window — `fresh` is the caller's own parse and is stamped in place (it is owned by
 * the book from here on).
 */
export function withHeaderObservation(before: RateLimitState | undefined, fresh: RateLimitState): RateLimitState {
  if (before && isLater(before.observedAt, fresh.observedAt)) return mergeRateLimits(before, stampWindows(fresh, 'header'))!;
  const windows: Record<string, RateLimitWindow> = before ? { ...before.windows } : {};
  for (const name in fresh.windows) {
    const w = fresh.windows[name]!;
    w.source ??= 'header';
    w.observedAt ??= fresh.observedAt;
    const prior = windows[name];
    if (prior?.observedAt && isLater(prior.observedAt, w.observedAt)) continue;
    if (prior?.reset && w.reset && prior.reset !== w.reset && Math.abs(Date.parse(prior.reset) - Date.parse(w.reset)) < RESET_JITTER_MS) {
      w.reset = prior.reset;
    }
    windows[name] = w;
  }
  if (!before) return fresh.windows === windows ? fresh : { ...fresh, windows };
  const merged: RateLimitState = { ...before, ...fresh, windows };
  if (merged.stale !== undefined && !fresh.stale) delete merged.stale;
  return merged;
}

/** The state as it stands at `now`: a window whose reset has passed keeps only its reset (unknown capacity, never exhausted). */
export function asOf(state: RateLimitState, now: number = Date.now()): RateLimitState {
  let changed = false;
  const windows: Record<string, RateLimitWindow> = {};
  for (const [name, w] of Object.entries(state.windows)) {
    if (w.reset !== undefined && Date.parse(w.reset) <= now && (w.utilization !== undefined || w.remaining !== undefined || w.status)) {
      changed = true;
      const { utilization: _u, remaining: _r, status: _s, ...rest } = w;
      windows[name] = rest;
    } else windows[name] = w;
  }
  return changed ? { ...state, windows } : state;
}

/**
 * True when a read shows room: no window (as of `now`) is used up. A window with no utilization
 * (unknown) counts as room; so does one whose reset has passed.
 */
export function hasRoom(state: RateLimitState, now: number = Date.now(), threshold = 1): boolean {
  const current = asOf(state, now);
  return Object.values(current.windows).every((w) => {
    if (w.status === 'rejected') return false;
    if (w.utilization !== undefined && w.utilization >= threshold) return false;
    if (w.remaining !== undefined && w.limit !== undefined && w.remaining <= 0) return false;
    return true;
  });
}
