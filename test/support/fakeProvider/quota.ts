// The fake quota endpoints (issue 30): Anthropic GET /api/oauth/usage, ChatGPT sign-in GET
// /backend-api/wham/usage, Gemini Code Assist POST /v1internal:retrieveUserQuota. Checked as the
// real ones check them: GET without a body (Code Assist: POST with JSON `{project}` naming the
// account's project, else 403), a bearer access token this fake issued or seeded that is neither
// expired nor revoked (else 401), and anthropic's `anthropic-beta: oauth-2025-04-20` / openai's
// `chatgpt-account-id` (else 400 / 401); a read must never carry an API key. Answered from the
// account's windows (utilization in PERCENT as a test sets it; Code Assist answers the fraction
// left, per model id), which tests set and clear (an early reset).
import { ANTHROPIC_OAUTH_BETA } from '../../../src/providers/anthropic.js';
import type { ProviderId } from '../../../src/config.js';
import { HttpAnswer, type RecordedRequest, type ScriptedResponse } from './wire.js';

export const QUOTA_PATHS: Partial<Record<ProviderId, string>> = {
  anthropic: '/api/oauth/usage',
  openai: '/backend-api/wham/usage',
  gemini: '/v1internal:retrieveUserQuota',
};

/** One window as a test sets it: utilization in percent; resetsAt null = the provider sends null. */
export interface FakeQuotaWindow {
  utilization: number;
  resetsAt: Date | null;
}

export interface QuotaContext {
  provider: ProviderId;
  accountId: string;
  accessTokenProblem(token: string): string | undefined;
  /** gemini: the account's Code Assist project, which a read must name. */
  project?: string;
  /** Per-account mode (fakeProvider/accounts.ts): the answer for the account this token belongs to, if any. */
  accountQuota?(token: string): unknown;
}

export function createQuotaSide(ctx: QuotaContext) {
  // Code Assist's buckets are per model, daily; the others' windows are 5 h and 7 d.
  const [short, long] =
    ctx.provider === 'openai'
      ? ['primary', 'secondary']
      : ctx.provider === 'gemini'
        ? ['gemini-2.5-pro', 'gemini-2.5-flash']
        : ['five_hour', 'seven_day'];
  const windows = new Map<string, FakeQuotaWindow>([
    [short, { utilization: 10, resetsAt: new Date(Date.now() + 3 * 3600_000) }],
    [long, { utilization: 20, resetsAt: new Date(Date.now() + (ctx.provider === 'gemini' ? 20 * 3600_000 : 4 * 86_400_000)) }],
  ]);
  const script: ScriptedResponse[] = [];
  /** Every answer is this until cleared (a rate-limited endpoint). */
  let always: ScriptedResponse | undefined;
  let limitsOnly = false;
  /** openai: the `credits` object answered beside the windows (undefined: none). */
  let credits: unknown;
  const error = (status: number, message: string) =>
    new HttpAnswer(
      status,
      ctx.provider === 'anthropic'
        ? { type: 'error', error: { type: status === 401 ? 'authentication_error' : 'invalid_request_error', message } }
        : { detail: message },
    );

  function check(req: RecordedRequest): HttpAnswer | undefined {
    if (ctx.provider === 'gemini') {
      if (req.method !== 'POST') return error(405, `fake quota: ${req.method} is not POST`);
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return error(400, 'fake quota: the body must be JSON');
      const project = (req.json as { project?: unknown } | undefined)?.project;
      if (project !== ctx.project) return error(403, `fake quota: project ${String(project)} is not this account's`);
    } else {
      if (req.method !== 'GET') return error(405, `fake quota: ${req.method} is not GET`);
      if (req.body.length > 0) return error(400, 'fake quota: a GET carries no body');
    }
    if (req.headers['x-api-key']) return error(400, 'fake quota: an API key must never be sent to the quota endpoint');
    const token = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!token) return error(401, 'fake quota: missing bearer token');
    const problem = ctx.accessTokenProblem(token);
    if (problem) return error(401, `fake quota: ${problem}`);
    if (ctx.provider === 'anthropic') {
      const betas = String(req.headers['anthropic-beta'] ?? '')
        .split(',')
        .map((b) => b.trim());
      if (!betas.includes(ANTHROPIC_OAUTH_BETA)) return error(400, `fake quota: anthropic-beta must include ${ANTHROPIC_OAUTH_BETA}`);
    } else if (ctx.provider === 'openai' && req.headers['chatgpt-account-id'] !== ctx.accountId) {
      return error(401, 'fake quota: chatgpt-account-id missing or wrong');
    }
    return undefined;
  }

  function body(): unknown {
    if (ctx.provider === 'gemini') {
      return {
        buckets: [...windows].map(([modelId, w]) => ({
          modelId,
          tokenType: 'REQUESTS',
          remainingFraction: Math.max(0, 1 - w.utilization / 100),
          ...(w.resetsAt ? { resetTime: w.resetsAt.toISOString() } : {}),
        })),
      };
    }
    if (ctx.provider === 'anthropic') {
      const entries = [...windows].map(([name, w]) => [name, { utilization: w.utilization, resets_at: w.resetsAt?.toISOString() ?? null }]);
      if (limitsOnly) return { limits: entries.map(([name, w]) => ({ window: name, ...(w as object) })) };
      return {
        ...Object.fromEntries(entries),
        seven_day_opus: null,
        extra_usage: { is_enabled: false, monthly_limit: null, used_credits: null, utilization: null },
      };
    }
    const win = (name: string) => {
      const w = windows.get(name);
      return w
        ? {
            used_percent: w.utilization,
            limit_window_seconds: name === 'primary' ? 18_000 : 604_800,
            reset_at: w.resetsAt ? Math.floor(w.resetsAt.getTime() / 1000) : null,
          }
        : null;
    };
    const reached = [...windows.values()].some((w) => w.utilization >= 100);
    return {
      plan_type: 'pro',
      rate_limit: { allowed: !reached, limit_reached: reached, primary_window: win('primary'), secondary_window: win('secondary') },
      ...(credits === undefined ? {} : { credits }),
    };
  }

  return {
    path: QUOTA_PATHS[ctx.provider],
    handle(req: RecordedRequest): HttpAnswer {
      const scripted = script.shift() ?? always;
      if (scripted) return new HttpAnswer(scripted.status, scripted.body ?? { error: 'scripted' }, scripted.headers);
      const token = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
      return check(req) ?? new HttpAnswer(200, ctx.accountQuota?.(token) ?? body());
    },
    /** Sets (or with null removes) one window; utilization in percent. */
    setQuotaWindow(name: string, window: FakeQuotaWindow | null): void {
      if (window) windows.set(name, window);
      else windows.delete(name);
    },
    /** openai: answer this `credits` object beside the windows (undefined: none). */
    setQuotaCredits(value: unknown): void {
      credits = value;
    },
    /** Answer with the newer `limits[]` list only (anthropic). */
    setQuotaLimitsOnly(on: boolean): void {
      limitsOnly = on;
    },
    failNextQuota(responses: ScriptedResponse[]): void {
      script.push(...responses);
    },
    /** Every quota answer is `response` until called with undefined. */
    answerQuotaAlways(response: ScriptedResponse | undefined): void {
      always = response;
    },
  };
}
