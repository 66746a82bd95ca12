// The fake Anthropic's per-account mode: several subscription accounts behind one fake, each with
// its own 5-hour, 7-day and weekly Opus windows, so pool tests can exhaust one account and watch
// the others serve.
//
//   const fake = await startFakeProvider({
//     provider: 'anthropic',
//     accounts: { alice: { token: 'tok-a', refreshToken: 'rt-a' }, bob: { token: 'tok-b' } },
//   });
//   fake.accounts.exhaust('alice', { window: '5h', resetInSeconds: 3600 });
//
// An account is found by the Bearer access token of a call: its seeded `token`, or any access
// token issued by refreshing its seeded `refreshToken` (or a refresh token issued from that, and
// so on: the account follows its refresh lineage). Calls with any other token behave as without
// accounts. Only `/v1/messages` is affected.
//
// Every /v1/messages answer of an account carries the unified headers Anthropic sends a
// subscription (`anthropic-ratelimit-unified-{status,reset,representative-claim,
// fallback-percentage}`, `-5h-*`, `-7d-*`, `-7d_opus-*` once the account has Opus use, and the
// overage headers). Utilization grows with the tokens each successful call spends (input + output,
// over a per-window capacity); a window at ≥ 100 % refuses with 429 `rate_limit_error` and the
// headers saying `rejected` until its reset (the 7d_opus window refuses Opus calls only). With
// overage `allowed`, an exhausted account serves on extra usage instead (overage-in-use: true,
// claim `overage`), as the real one does. A window whose reset passed starts afresh.
import { modelFamily } from '../../../src/model/families.js';
import { hex, HttpAnswer } from './wire.js';

export type AccountWindow = '5h' | '7d' | '7d_opus';
export type OverageMode = 'in-use' | 'allowed' | 'rejected';
export type AccountFailure = 'bare-429' | 'overloaded-529' | 'stream-overloaded' | 'stream-rate-limit';

export interface AccountSeed {
  /** Seeded as a valid access token of this account. */
  token?: string;
  /** Seeded as a valid refresh token; every token issued from it belongs to this account. */
  refreshToken?: string;
  /** Tokens (input + output) a window holds; utilization grows by spent / capacity. */
  capacity?: Partial<Record<AccountWindow, number>>;
  /** Starting utilization per window (fractions). */
  utilization?: Partial<Record<AccountWindow, number>>;
  overage?: OverageMode;
}

export interface AccountSnapshot {
  name: string;
  /** /v1/messages calls that reached this account (served or refused). */
  requests: number;
  /** Successful calls served. */
  served: number;
  /** Calls refused with a window-exhausted 429. */
  refused: number;
  utilization5h: number;
  reset5h: number;
  utilization7d: number;
  reset7d: number;
  utilization7dOpus: number;
  reset7dOpus: number;
  overage: OverageMode;
  /** Scripted failures still to come. */
  pendingFailures: number;
  /** The models of the calls that reached this account, in order. */
  models: Array<string | undefined>;
}

export interface FakeAccounts {
  names(): string[];
  get(name: string): AccountSnapshot;
  /** The window is used up (100 %) and refuses until `resetInSeconds` from now. */
  exhaust(name: string, opts: { window: AccountWindow; resetInSeconds: number }): void;
  setUtilization(name: string, window: AccountWindow, fraction: number): void;
  /** The provider resets early: every exhausted window is empty again now, with a fresh full-length reset. */
  resetEarly(name: string): void;
  setOverage(name: string, mode: OverageMode): void;
  /**
   * The next `count` calls to the account fail so. bare-429: 429 rate_limit_error without any limit
   * header (retry-after only when given); overloaded-529: 529 overloaded_error; stream-overloaded /
   * stream-rate-limit: a 200 event stream whose message_start is followed by an `error` event
   * before any content (a call that does not stream gets the matching JSON error, 529 / 429).
   */
  fail(name: string, kind: AccountFailure, count: number, opts?: { retryAfterSeconds?: number }): void;
  served(name: string): number;
  /** The account as Anthropic's GET /api/oauth/usage shows it (utilization in PERCENT). */
  quota(name: string): OAuthUsageAnswer;
}

export interface OAuthUsageWindow {
  utilization: number;
  resets_at: string | null;
}

export interface OAuthUsageAnswer {
  five_hour: OAuthUsageWindow | null;
  seven_day: OAuthUsageWindow | null;
  seven_day_oauth_apps: OAuthUsageWindow | null;
  seven_day_opus: OAuthUsageWindow | null;
  extra_usage: { is_enabled: boolean; monthly_limit: number | null; used_credits: number | null; utilization: number | null };
}

/** What the server does with one /v1/messages call of an account. */
export type AccountDecision =
  | { kind: 'answer'; answer: HttpAnswer }
  | { kind: 'stream-error'; events: string[]; headers: Record<string, string> }
  | { kind: 'serve'; headers: Record<string, string> };

const WINDOW_MS: Record<AccountWindow, number> = { '5h': 5 * 3600_000, '7d': 7 * 24 * 3600_000, '7d_opus': 7 * 24 * 3600_000 };
const DEFAULT_CAPACITY: Record<AccountWindow, number> = { '5h': 200_000, '7d': 2_000_000, '7d_opus': 1_000_000 };
const CLAIM: Record<AccountWindow, string> = { '5h': 'five_hour', '7d': 'seven_day', '7d_opus': 'seven_day_opus' };
const WINDOWS: AccountWindow[] = ['5h', '7d', '7d_opus'];
const RATE_LIMIT_MESSAGE = "This request would exceed your account's rate limit. Please try again later.";

interface WindowState {
  utilization: number;
  /** ms, whole seconds (the headers carry unix seconds). */
  reset: number;
  capacity: number;
}

interface Account {
  name: string;
  requests: number;
  served: number;
  refused: number;
  windows: Record<AccountWindow, WindowState>;
  /** Whether the account has used Opus (only then does it show the 7d_opus headers, as real accounts do). */
  opusSeen: boolean;
  overage: OverageMode;
  failures: Array<{ kind: AccountFailure; retryAfterSeconds?: number }>;
  models: Array<string | undefined>;
}

export function createAccounts(seeds: Record<string, AccountSeed>, now: () => number = Date.now) {
  const accounts = new Map<string, Account>();
  /** access and refresh tokens → account name */
  const byToken = new Map<string, string>();

  const wholeSeconds = (ms: number) => Math.ceil(ms / 1000) * 1000;
  for (const [name, seed] of Object.entries(seeds)) {
    const t = now();
    const windows = Object.fromEntries(
      WINDOWS.map((w) => [
        w,
        {
          utilization: seed.utilization?.[w] ?? 0,
          reset: wholeSeconds(t + WINDOW_MS[w]),
          capacity: seed.capacity?.[w] ?? DEFAULT_CAPACITY[w],
        },
      ]),
    ) as Record<AccountWindow, WindowState>;
    accounts.set(name, {
      name,
      requests: 0,
      served: 0,
      refused: 0,
      windows,
      opusSeen: (seed.utilization?.['7d_opus'] ?? 0) > 0,
      overage: seed.overage ?? 'rejected',
      failures: [],
      models: [],
    });
    if (seed.token) byToken.set(seed.token, name);
    if (seed.refreshToken) byToken.set(seed.refreshToken, name);
  }

  function account(name: string): Account {
    const a = accounts.get(name);
    if (!a) throw new Error(`fake anthropic: no account ${name}`);
    return a;
  }

  /** A window whose reset passed starts afresh. */
  function roll(a: Account): void {
    const t = now();
    for (const w of WINDOWS) {
      const s = a.windows[w];
      if (t >= s.reset) {
        s.utilization = 0;
        s.reset = wholeSeconds(t + WINDOW_MS[w]);
      }
    }
  }

  const exhausted = (s: WindowState) => s.utilization >= 1;

  /** The unified headers of the account's state; `refusing` names the window a 429 is for. */
  function headers(a: Account, refusing: AccountWindow | undefined, spilling: boolean): Record<string, string> {
    const fmt = (u: number) => String(Number(u.toFixed(4)));
    const unix = (ms: number) => String(Math.floor(ms / 1000));
    const status = (w: AccountWindow) => {
      const s = a.windows[w];
      return exhausted(s) ? 'rejected' : s.utilization >= 0.9 ? 'allowed_warning' : 'allowed';
    };
    // The claim: the window refusing, else the most used credential window.
    const busiest: AccountWindow = a.windows['7d'].utilization > a.windows['5h'].utilization ? '7d' : '5h';
    const claimWindow = refusing ?? busiest;
    const out: Record<string, string> = {
      'anthropic-ratelimit-unified-status': refusing ? 'rejected' : spilling ? 'allowed' : status(busiest),
      'anthropic-ratelimit-unified-reset': unix(a.windows[claimWindow].reset),
      'anthropic-ratelimit-unified-representative-claim': spilling ? 'overage' : CLAIM[claimWindow],
      'anthropic-ratelimit-unified-fallback-percentage': '0.5',
    };
    for (const w of WINDOWS) {
      if (w === '7d_opus' && !a.opusSeen) continue;
      out[`anthropic-ratelimit-unified-${w}-status`] = status(w);
      out[`anthropic-ratelimit-unified-${w}-utilization`] = fmt(a.windows[w].utilization);
      out[`anthropic-ratelimit-unified-${w}-reset`] = unix(a.windows[w].reset);
    }
    if (a.overage === 'rejected') {
      out['anthropic-ratelimit-unified-overage-status'] = 'rejected';
      out['anthropic-ratelimit-unified-overage-disabled-reason'] = 'org_level_disabled';
    } else {
      out['anthropic-ratelimit-unified-overage-status'] = 'allowed';
      out['anthropic-ratelimit-unified-overage-reset'] = unix(a.windows['7d'].reset);
      out['anthropic-ratelimit-unified-overage-utilization'] = spilling || a.overage === 'in-use' ? '0.01' : '0.0';
      if (spilling || a.overage === 'in-use') {
        out['anthropic-ratelimit-unified-overage-in-use'] = 'true';
        out['anthropic-ratelimit-unified-representative-claim'] = 'overage';
      }
    }
    return out;
  }

  const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  const errorBody = (type: string, message: string) => ({ type: 'error', error: { type, message } });
  const requestId = () => ({ 'request-id': `req_011CV${hex(10)}` });

  /** Decides one call of account `name` for `model` (streaming or not). */
  function decide(name: string, model: string | undefined, stream: boolean): AccountDecision {
    const a = account(name);
    roll(a);
    a.requests++;
    a.models.push(model);
    const opus = modelFamily(model) === 'opus';
    if (opus) a.opusSeen = true;

    const failure = a.failures.shift();
    if (failure) {
      const retry: Record<string, string> =
        failure.retryAfterSeconds !== undefined ? { 'retry-after': String(failure.retryAfterSeconds) } : {};
      const overloaded = failure.kind === 'overloaded-529' || failure.kind === 'stream-overloaded';
      if (failure.kind === 'bare-429' || failure.kind === 'overloaded-529' || !stream) {
        return overloaded
          ? {
              kind: 'answer',
              answer: new HttpAnswer(529, errorBody('overloaded_error', 'Overloaded'), {
                ...requestId(),
                'x-should-retry': 'true',
                ...retry,
              }),
            }
          : {
              kind: 'answer',
              answer: new HttpAnswer(429, errorBody('rate_limit_error', RATE_LIMIT_MESSAGE), {
                ...requestId(),
                'x-should-retry': 'true',
                ...retry,
              }),
            };
      }
      return {
        kind: 'stream-error',
        headers: { ...requestId(), ...headers(a, undefined, false) },
        events: [
          messageStart(model),
          sse('error', overloaded ? errorBody('overloaded_error', 'Overloaded') : errorBody('rate_limit_error', RATE_LIMIT_MESSAGE)),
        ],
      };
    }

    // The window that refuses: a credential window, or the Opus one for an Opus call; the later reset binds.
    const refusing = WINDOWS.filter((w) => exhausted(a.windows[w]) && (w !== '7d_opus' || opus)).sort(
      (x, y) => a.windows[y].reset - a.windows[x].reset,
    )[0];
    const spilling = refusing !== undefined && a.overage !== 'rejected';
    if (refusing && !spilling) {
      a.refused++;
      const h = headers(a, refusing, false);
      const retryAfter = Math.max(1, Math.ceil((a.windows[refusing].reset - now()) / 1000));
      return {
        kind: 'answer',
        answer: new HttpAnswer(429, errorBody('rate_limit_error', RATE_LIMIT_MESSAGE), {
          ...requestId(),
          ...h,
          'retry-after': String(retryAfter),
        }),
      };
    }
    return { kind: 'serve', headers: { ...requestId(), ...headers(a, undefined, spilling) } };
  }

  /** A served call spent `tokens`: every window it counts against grows (Opus calls also fill 7d_opus). */
  function spend(name: string, model: string | undefined, tokens: number): void {
    const a = account(name);
    a.served++;
    const opus = modelFamily(model) === 'opus';
    for (const w of WINDOWS) {
      if (w === '7d_opus' && !opus) continue;
      const s = a.windows[w];
      if (a.overage !== 'rejected' && exhausted(s)) continue; // spilling into extra usage: the plan window stays full
      s.utilization += tokens / s.capacity;
    }
  }

  function messageStart(model: string | undefined): string {
    return sse('message_start', {
      type: 'message_start',
      message: {
        id: `msg_fake${hex(8)}`,
        type: 'message',
        role: 'assistant',
        model: model ?? 'claude-fake',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 10, output_tokens: 1 },
      },
    });
  }

  function snapshot(a: Account): AccountSnapshot {
    return {
      name: a.name,
      requests: a.requests,
      served: a.served,
      refused: a.refused,
      utilization5h: a.windows['5h'].utilization,
      reset5h: a.windows['5h'].reset,
      utilization7d: a.windows['7d'].utilization,
      reset7d: a.windows['7d'].reset,
      utilization7dOpus: a.windows['7d_opus'].utilization,
      reset7dOpus: a.windows['7d_opus'].reset,
      overage: a.overage,
      pendingFailures: a.failures.length,
      models: [...a.models],
    };
  }

  const api: FakeAccounts = {
    names: () => [...accounts.keys()],
    get: (name) => {
      const a = account(name);
      roll(a);
      return snapshot(a);
    },
    exhaust: (name, { window, resetInSeconds }) => {
      const a = account(name);
      roll(a);
      const s = a.windows[window];
      s.utilization = Math.max(1, s.utilization);
      s.reset = wholeSeconds(now() + resetInSeconds * 1000);
      if (window === '7d_opus') a.opusSeen = true;
    },
    setUtilization: (name, window, fraction) => {
      const a = account(name);
      roll(a);
      a.windows[window].utilization = fraction;
      if (window === '7d_opus' && fraction > 0) a.opusSeen = true;
    },
    resetEarly: (name) => {
      const a = account(name);
      const t = now();
      for (const w of WINDOWS) {
        const s = a.windows[w];
        if (!exhausted(s)) continue;
        s.utilization = 0;
        s.reset = wholeSeconds(t + WINDOW_MS[w]);
      }
    },
    setOverage: (name, mode) => void (account(name).overage = mode),
    fail: (name, kind, count, opts) => {
      const a = account(name);
      for (let i = 0; i < count; i++)
        a.failures.push({ kind, ...(opts?.retryAfterSeconds !== undefined ? { retryAfterSeconds: opts.retryAfterSeconds } : {}) });
    },
    served: (name) => account(name).served,
    quota: (name) => {
      const a = account(name);
      roll(a);
      const w = (s: WindowState, seen = true): OAuthUsageWindow =>
        seen
          ? { utilization: Number((s.utilization * 100).toFixed(2)), resets_at: new Date(s.reset).toISOString() }
          : { utilization: 0, resets_at: null };
      return {
        five_hour: w(a.windows['5h']),
        seven_day: w(a.windows['7d']),
        seven_day_oauth_apps: null,
        seven_day_opus: w(a.windows['7d_opus'], a.opusSeen),
        extra_usage: {
          is_enabled: a.overage !== 'rejected',
          monthly_limit: a.overage !== 'rejected' ? 5000 : null,
          used_credits: a.overage === 'in-use' ? 1.25 : a.overage === 'allowed' ? 0 : null,
          utilization: a.overage === 'in-use' ? 0.03 : a.overage === 'allowed' ? 0 : null,
        },
      };
    },
  };

  return {
    api,
    /** The account a Bearer access token belongs to, if any. */
    accountOf: (token: string | undefined): string | undefined => (token === undefined ? undefined : byToken.get(token)),
    /** A refresh from `presented` issued these tokens: they stay with its account. */
    onRefresh: (presented: string, accessToken: string, nextRefreshToken: string | undefined) => {
      const name = byToken.get(presented);
      if (name === undefined) return;
      byToken.set(accessToken, name);
      if (nextRefreshToken) byToken.set(nextRefreshToken, name);
    },
    decide,
    spend,
  };
}
