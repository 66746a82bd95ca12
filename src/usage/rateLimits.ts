// The provider's rate-limit state, read from the headers of one answer. Pure: headers in, a plain
// object out (or undefined when the answer carried no rate-limit header at all). Values that do not
// parse are ignored, one by one; nothing here throws.
//
// Window names:
// - Anthropic API keys: `anthropic-ratelimit-<x>-{limit,remaining,reset}` → `<x>` with `-` → `_`
//   (`requests`, `tokens`, `input_tokens`, `output_tokens`); `anthropic-priority-<x>-*` (Priority
//   Tier) → `priority_<x>`. Resets are RFC 3339.
// - Anthropic subscriptions (OAuth): `anthropic-ratelimit-unified-<family>-{status,utilization,reset}`
//   with families `5h` → `five_hour`, `7d` → `seven_day`, `7d_opus` → `seven_day_opus`,
//   `7d_sonnet` → `seven_day_sonnet` (any `<n><h|d|w|m>[_<name>]`); another family is kept under its
//   own name (`-` → `_`). The `overage` family goes to `overage`. Resets are unix seconds.
// - OpenAI: `x-ratelimit-{limit,remaining,reset}-<x>` → `<x>` (`requests`, `tokens`); resets are
//   durations (`6m0s`, `1s`, `20ms`) from now. The Codex backend (ChatGPT subscriptions):
//   `x-codex-{primary,secondary}-{used-percent,window-minutes,reset-at,reset-after-seconds}` →
//   `primary`, `secondary` (utilization = used_percent / 100); other Codex limit families
//   (`x-codex-<name>-primary-*`) → `<name>_primary`, `<name>_secondary`.
// - `retry-after` (seconds or an HTTP date; `retry-after-ms` when it is absent) → retryAfter,
//   in whole seconds, rounded up.
import type { ProviderId } from '../model/providers.js';
import { isStorableDate } from '../dates.js';
import { parseRetryAfter } from '../errors.js';

export interface RateLimitWindow {
  limit?: number;
  remaining?: number;
  /** When the window resets, ISO 8601. */
  reset?: string;
  /** How much of the window is used, a 0..1 fraction (may pass 1 when over). */
  utilization?: number;
  status?: string;
  /** The window's length, when the provider says (Codex). */
  windowMinutes?: number;
  /** Where it was learnt: an answer's headers, or the provider's quota endpoint (src/usage/quota.ts). Stamped by RateLimitBook. */
  source?: 'header' | 'endpoint';
  /** When it was learnt, ISO 8601. Stamped by RateLimitBook. */
  observedAt?: string;
}

export interface RateLimitState {
  observedAt: string;
  /** Anthropic subscriptions: the overall unified status (allowed | allowed_warning | rejected). */
  status?: string;
  /** Anthropic subscriptions: when the binding limit resets, ISO 8601. */
  reset?: string;
  /** Seconds to wait, from `retry-after`. */
  retryAfter?: number;
  windows: Record<string, RateLimitWindow>;
  /** Anthropic subscriptions: the window that binds now, e.g. `five_hour`, `seven_day`. */
  representativeClaim?: string;
  overage?: { status?: string; reset?: string; disabledReason?: string; utilization?: number };
  /** ChatGPT sign-in (quota read): credits the account can spend past its plan's windows; balance as the provider writes it. */
  credits?: { hasCredits?: boolean; unlimited?: boolean; balance?: string };
  /** Anthropic subscriptions: `anthropic-ratelimit-unified-fallback-percentage`. */
  fallbackPercentage?: number;
  /** The last quota read was refused (expired or revoked token): the endpoint windows are as old as their observedAt says. */
  stale?: true;
}

const UNIFIED = 'anthropic-ratelimit-unified-';
const ANTHROPIC = 'anthropic-ratelimit-';
const ANTHROPIC_PRIORITY = 'anthropic-priority-';
const OPENAI = 'x-ratelimit-';
const CODEX = 'x-codex-';

/** The provider's rate-limit state from an answer's headers; undefined when there is none. */
export function parseRateLimitHeaders(
  provider: ProviderId,
  headers: Record<string, string | string[] | undefined>,
  now: Date = new Date(),
): RateLimitState | undefined {
  const state: RateLimitState = { observedAt: validIso(now) ?? new Date().toISOString(), windows: {} };
  let seen = false;
  let retryAfterMs: string | undefined;
  const nowMs = now.getTime();
  /** Codex windows whose reset came from `-reset-at`, which `-reset-after-seconds` must not overwrite. */
  const absoluteReset = new Set<string>();

  for (const [rawName, rawValue] of Object.entries(headers)) {
    const value = headerValue(rawValue);
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (name === 'retry-after') {
      const seconds = parseRetryAfter(value, nowMs);
      if (seconds !== undefined) {
        state.retryAfter = Math.ceil(seconds); // whole seconds, rounded up
        seen = true;
      }
      continue;
    }
    if (name === 'retry-after-ms') {
      retryAfterMs = value;
      continue;
    }
    if (provider === 'anthropic') {
      if (name.startsWith(UNIFIED)) seen = unified(state, name.slice(UNIFIED.length), value) || seen;
      else if (name.startsWith(ANTHROPIC)) seen = anthropicWindow(state, name.slice(ANTHROPIC.length), value, '') || seen;
      else if (name.startsWith(ANTHROPIC_PRIORITY))
        seen = anthropicWindow(state, name.slice(ANTHROPIC_PRIORITY.length), value, 'priority_') || seen;
    } else if (provider === 'openai') {
      if (name.startsWith(OPENAI)) seen = openaiWindow(state, name.slice(OPENAI.length), value, nowMs) || seen;
      else if (name.startsWith(CODEX)) seen = codexWindow(state, name.slice(CODEX.length), value, nowMs, absoluteReset) || seen;
    }
  }

  if (state.retryAfter === undefined && retryAfterMs !== undefined && /^\d+(\.\d+)?$/.test(retryAfterMs)) {
    state.retryAfter = Math.ceil(Number(retryAfterMs) / 1000);
    seen = true;
  }
  return seen ? state : undefined;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  if (typeof first !== 'string') return undefined;
  const trimmed = first.trim();
  return trimmed === '' ? undefined : trimmed;
}

function windowOf(state: RateLimitState, name: string): RateLimitWindow {
  return (state.windows[name] ??= {});
}

// ---------------------------------------------------------------------------------------------
// Anthropic

function anthropicWindow(state: RateLimitState, rest: string, value: string, prefix: string): boolean {
  const match = /^([a-z0-9-]+)-(limit|remaining|reset)$/.exec(rest);
  if (!match) return false;
  const [, family, field] = match as unknown as [string, string, 'limit' | 'remaining' | 'reset'];
  if (field === 'reset') {
    const reset = dateToIso(value);
    if (reset === undefined) return false;
    windowOf(state, prefix + snake(family)).reset = reset;
  } else {
    const n = nonNegative(value);
    if (n === undefined) return false;
    windowOf(state, prefix + snake(family))[field] = n;
  }
  return true;
}

function unified(state: RateLimitState, rest: string, value: string): boolean {
  switch (rest) {
    case 'status':
      state.status = value;
      return true;
    case 'reset': {
      const reset = unixToIso(value);
      if (reset === undefined) return false;
      state.reset = reset;
      return true;
    }
    case 'representative-claim':
      state.representativeClaim = value;
      return true;
    case 'fallback-percentage': {
      const n = nonNegative(value);
      if (n === undefined) return false;
      state.fallbackPercentage = n;
      return true;
    }
    case 'overage-disabled-reason':
      (state.overage ??= {}).disabledReason = value;
      return true;
  }
  const match = /^([a-z0-9_-]+?)-(status|utilization|reset)$/.exec(rest);
  if (!match) return false;
  const [, family, field] = match as unknown as [string, string, 'status' | 'utilization' | 'reset'];
  const target: { status?: string; utilization?: number; reset?: string } =
    family === 'overage' ? (state.overage ??= {}) : windowOf(state, unifiedWindowName(family));
  if (field === 'status') target.status = value;
  else if (field === 'utilization') {
    const n = nonNegative(value);
    if (n === undefined) return dropEmpty(state, family);
    target.utilization = n;
  } else {
    const reset = unixToIso(value);
    if (reset === undefined) return dropEmpty(state, family);
    target.reset = reset;
  }
  return true;
}

/** An unparsable value must not leave an empty window behind. */
function dropEmpty(state: RateLimitState, family: string): false {
  if (family === 'overage') {
    if (state.overage && Object.keys(state.overage).length === 0) delete state.overage;
  } else {
    const name = unifiedWindowName(family);
    const window = state.windows[name];
    if (window && Object.keys(window).length === 0) delete state.windows[name];
  }
  return false;
}

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'];
const UNITS: Record<string, string> = { m: 'minute', h: 'hour', d: 'day', w: 'week' };

/** `5h` → `five_hour`, `7d` → `seven_day`, `7d_opus` → `seven_day_opus`; anything else snake_cased. */
export function unifiedWindowName(family: string): string {
  const match = /^(\d+)([mhdw])(?:_([a-z0-9_]+))?$/.exec(family);
  if (!match) return snake(family);
  const [, digits, unit, rest] = match as unknown as [string, string, string, string | undefined];
  const base = `${NUMBER_WORDS[Number(digits)] ?? digits}_${UNITS[unit]!}`;
  return rest ? `${base}_${rest}` : base;
}

// ---------------------------------------------------------------------------------------------
// OpenAI and the Codex backend

function openaiWindow(state: RateLimitState, rest: string, value: string, nowMs: number): boolean {
  const match = /^(limit|remaining|reset)-([a-z0-9_-]+)$/.exec(rest);
  if (!match) return false;
  const [, field, family] = match as unknown as [string, 'limit' | 'remaining' | 'reset', string];
  if (field === 'reset') {
    const seconds = durationSeconds(value);
    const reset = seconds !== undefined ? msToIso(nowMs + seconds * 1000) : dateToIso(value);
    if (reset === undefined) return false;
    windowOf(state, snake(family)).reset = reset;
  } else {
    const n = nonNegative(value);
    if (n === undefined) return false;
    windowOf(state, snake(family))[field] = n;
  }
  return true;
}

function codexWindow(state: RateLimitState, rest: string, value: string, nowMs: number, absoluteReset: Set<string>): boolean {
  const match = /^(?:([a-z0-9_-]+)-)?(primary|secondary)-(used-percent|window-minutes|reset-at|reset-after-seconds)$/.exec(rest);
  if (!match) return false;
  const [, family, which, field] = match as unknown as [string, string | undefined, string, string];
  const name = family ? `${snake(family)}_${which}` : which;
  const n = nonNegative(value);
  if (n === undefined) return false;
  const window = windowOf(state, name);
  if (field === 'used-percent') window.utilization = n / 100;
  else if (field === 'window-minutes') window.windowMinutes = n;
  else if (field === 'reset-at') {
    const reset = unixToIso(value);
    if (reset === undefined) return dropEmptyWindow(state, name);
    window.reset = reset; // absolute: wins over reset-after-seconds
    absoluteReset.add(name);
  } else if (!absoluteReset.has(name)) {
    const reset = msToIso(nowMs + n * 1000);
    if (reset === undefined) return dropEmptyWindow(state, name);
    window.reset = reset;
  }
  return true;
}

function dropEmptyWindow(state: RateLimitState, name: string): false {
  const window = state.windows[name];
  if (window && Object.keys(window).length === 0) delete state.windows[name];
  return false;
}

// ---------------------------------------------------------------------------------------------
// Values

function snake(name: string): string {
  return name.replace(/-/g, '_');
}

function nonNegative(value: string): number | undefined {
  if (!/^\d+(\.\d+)?$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function validIso(date: Date): string | undefined {
  return msToIso(date.getTime());
}

// Every answer carries the same few reset times until a window rolls over, and the proxy reads
// them on every call: the ISO form of recent instants is remembered (a small, cleared cache).
const isoCache = new Map<number, string | undefined>();

function msToIso(ms: number): string | undefined {
  if (!Number.isFinite(ms)) return undefined;
  if (isoCache.has(ms)) return isoCache.get(ms);
  const date = new Date(ms);
  const iso = isStorableDate(date) ? date.toISOString() : undefined;
  if (isoCache.size >= 256) isoCache.clear();
  isoCache.set(ms, iso);
  return iso;
}

/** Unix seconds (or milliseconds, when the number is that large) → ISO. */
function unixToIso(value: string): string | undefined {
  const n = nonNegative(value);
  if (n === undefined || n === 0) return undefined;
  return msToIso(n >= 1e11 ? n : n * 1000);
}

/** An RFC 3339 / HTTP date → ISO. */
function dateToIso(value: string): string | undefined {
  if (/^\d+(\.\d+)?$/.test(value)) return undefined; // a bare number is not a date here
  return msToIso(Date.parse(value));
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400 };

/** A Go-style duration (`6m0s`, `1s`, `20ms`, `1h2m3.5s`) or bare seconds → seconds. */
export function durationSeconds(value: string): number | undefined {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d))+$/.test(value)) return undefined;
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g)) total += Number(amount) * DURATION_UNITS[unit!]!;
  return Number.isFinite(total) ? total : undefined;
}
