// GET /admin: the operators' web page, served by the API process. It calls only Maestro's own
// services in-process (CredentialService, KeyService, the usage store, the rate-limit book, the
// pools reader): the same code the /v1 routes run; nothing here takes a URL to call with a token.
// Sign-in and CSRF: src/admin/session.ts. HTML: src/admin/views.ts. Browser files: assets.ts.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { z } from 'zod';
import type { CredentialService } from '../credentials/service.js';
import type { KeyService } from '../clientKeys/service.js';
import type { UsageDimension, UsageReports } from '../model/usage.js';
import type { RateLimitState } from '../usage/rateLimits.js';
import type { MemberAction, PoolsReader } from '../model/pools.js';
import type { ProviderId } from '../model/providers.js';
import type { AdminSession, AdminSessionStore } from '../db/adminSessions.js';
import type { Logger } from '../logger.js';
import { errorRule, MaestroError, NotFoundError, ValidationError } from '../errors.js';
import { paginate } from '../api/pagination.js';
import { createKeySchema, oauthCompleteSchema, oauthStartSchema, providerSchema } from '../api/schemas.js';
import { loadAssets, type AssetName } from './assets.js';
import { csrfOk, currentSession, signIn, signOut, type SignInDeps } from './session.js';
import { render, type TemplateName } from './views.js';

export interface AdminDeps extends Omit<SignInDeps, 'keyStillValid'> {
  credentials: CredentialService;
  keys: KeyService;
  usage: UsageReports;
  rateLimits: { get(credentialId: string): Promise<RateLimitState | null> };
  /** Pools, when this Maestro has them: without, the pools page says they are not configured. */
  pools?: PoolsReader;
  sessions: Pick<AdminSessionStore, 'create' | 'use' | 'delete' | 'deleteExpired'>;
  providers: readonly ProviderId[];
  /** How many MAESTRO_API_KEYS there are: a session of `env:<n>` past that count ends. */
  envKeyCount: number;
  /** The Temporal Web UI the credential pages link their workflow to (MAESTRO_TEMPORAL_UI_URL). */
  temporal: { uiUrl?: string; namespace: string };
  log: Logger;
}

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const PAGE_SIZE = 50;

const NAV = [
  { href: './', label: 'Overview', page: 'overview' },
  { href: 'credentials', label: 'Credentials', page: 'credentials' },
  { href: 'pools', label: 'Pools', page: 'pools' },
  { href: 'keys', label: 'Client keys', page: 'keys' },
  { href: 'usage', label: 'Usage', page: 'usage' },
  { href: 'oauth', label: 'Sign-in', page: 'oauth' },
] as const;

/** Fixed notices shown after a change (never text taken from the request). */
const DONE: Record<string, string> = {
  refreshed: 'Refreshed.',
  quota: 'Quota read.',
  deleted: 'Credential deleted.',
  revoked: 'Key revoked.',
  signedin: 'Signed in to the provider: the credential is stored.',
  member: 'Member updated.',
  disabled: 'Credential disabled: it takes no calls until enabled.',
  enabled: 'Credential enabled.',
};

const MEMBER_ACTIONS: Record<string, MemberAction> = { pause: 'pause', resume: 'resume', 'clear-cooldown': 'clear-cooldown' };

/** The credential service's quota re-read, when this Maestro has one (another issue adds it). */
type QuotaReader = { readQuota(id: string): Promise<unknown> };
const quotaReader = (credentials: CredentialService): QuotaReader | undefined =>
  typeof (credentials as Partial<QuotaReader>).readQuota === 'function' ? (credentials as unknown as QuotaReader) : undefined;

const utc = (iso: string | null | undefined) => (iso ? `${iso.slice(0, 16).replace('T', ' ')} UTC` : '');

interface WindowView {
  name: string;
  utilization?: number;
  percent?: string;
  reset?: string;
  resetText?: string;
  status?: string;
  source?: string;
  observedAt?: string;
}

/** A window of the rate-limit state or a pool member, as rows of bars (utilization a fraction). */
function windowViews(windows: Record<string, object> | undefined): WindowView[] {
  return Object.entries(windows ?? {}).map(([name, raw]) => {
    const w = raw as {
      utilization?: number;
      reset?: string;
      status?: string;
      source?: string;
      observedAt?: string;
      remaining?: number;
      limit?: number;
    };
    const utilization =
      typeof w.utilization === 'number'
        ? w.utilization
        : typeof w.remaining === 'number' && typeof w.limit === 'number' && w.limit > 0
          ? 1 - w.remaining / w.limit
          : undefined;
    return {
      name,
      utilization: utilization === undefined ? undefined : Math.max(0, Math.min(1, utilization)),
      percent: utilization === undefined ? undefined : `${Math.round(utilization * 100)} %`,
      reset: w.reset,
      resetText: utc(w.reset),
      status: w.status,
      source: w.source,
      observedAt: w.observedAt,
    };
  });
}

/** `../` steps from a page back to the admin root (every link is relative: any prefix works). */
function baseOf(req: Request): string {
  const depth = req.path.split('/').length - 2;
  return depth > 0 ? '../'.repeat(depth) : './';
}

/** The page's own address relative to itself (what the live region polls). */
function selfOf(req: Request): string {
  const last = req.path.split('/').pop() ?? '';
  const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : '';
  return `${last || './'}${query}`;
}

export function createAdminRouter(deps: AdminDeps): express.Router {
  const router = express.Router({ strict: true });
  const assets = loadAssets();
  const assetNames = Object.fromEntries([...assets].map(([name, a]) => [name, a.file])) as Record<AssetName, string>;
  const byFile = new Map([...assets.values()].map((a) => [a.file, a]));
  const readQuota = quotaReader(deps.credentials);

  const keyStillValid = async (keyId: string) => {
    if (keyId.startsWith('env:')) return Number(keyId.slice(4)) <= deps.envKeyCount;
    const key = await deps.keys.get(keyId).catch(() => undefined);
    return !!key && key.role === 'admin' && !key.revokedAt && (!key.expiresAt || Date.parse(key.expiresAt) > Date.now());
  };
  const signInDeps: SignInDeps = { ...deps, keyStillValid };

  router.use((req, res, next) => {
    // `/admin` → `admin/`: every link on the page is relative to the admin root's trailing slash.
    const path = req.originalUrl.split('?')[0] ?? '';
    if (req.path === '/' && !path.endsWith('/') && req.method === 'GET') {
      res.redirect(308, `${path.slice(path.lastIndexOf('/') + 1)}/`);
      return;
    }
    res.setHeader('content-security-policy', CSP);
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('cross-origin-opener-policy', 'same-origin');
    res.setHeader('cross-origin-resource-policy', 'same-origin');
    next();
  });

  router.get('/assets/:file', (req, res) => {
    const asset = byFile.get(String(req.params.file));
    if (!asset) {
      res.status(404).type('text/plain').send('not found');
      return;
    }
    res.setHeader('cache-control', 'public, max-age=31536000, immutable');
    res.type(asset.type).send(asset.body);
  });

  // Pages are never cached (they show live state and carry the CSRF token).
  router.use((_req, res, next) => {
    res.setHeader('cache-control', 'no-store');
    next();
  });
  router.use(express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 100 }));

  const page = (req: Request, res: Response, name: TemplateName, data: object, status = 200, session?: AdminSession) => {
    const current = name === 'credential' || name === 'credentialDelete' ? 'credentials' : name === 'pool' ? 'pools' : name;
    const done = typeof req.query.done === 'string' ? DONE[req.query.done] : undefined;
    res
      .status(status)
      .type('html')
      .send(
        render(name, {
          title: NAV.find((n) => n.page === current)?.label ?? 'Maestro',
          base: baseOf(req),
          self: selfOf(req),
          now: new Date().toISOString(),
          csrf: session?.csrfToken ?? '',
          signedIn: !!session,
          assets: assetNames,
          nav: NAV.map((n) => ({ ...n, current: n.page === current })),
          flash: done,
          ...data,
        }),
      );
  };

  /** What the page shows for a failed call: the error's own message (written for callers, never a secret). */
  const failed = (req: Request, res: Response, error: unknown, session?: AdminSession) => {
    const status = error instanceof MaestroError ? errorRule(error).status : 500;
    if (!(error instanceof MaestroError)) deps.log.error({ err: error, path: req.path }, 'admin page error');
    const text = error instanceof MaestroError ? error.message : 'Unexpected error (logged).';
    const title = status === 404 ? 'Not found' : status === 403 ? 'Not allowed' : status === 401 ? 'Sign in again' : 'That did not work';
    page(req, res, 'message', { title, text, error: undefined }, status, session);
  };

  router.post('/login', async (req, res) => {
    if (req.headers['sec-fetch-site'] === 'cross-site') return failed(req, res, new ValidationError('cross-site sign-in refused'));
    const key: unknown = (req.body as { key?: unknown } | undefined)?.key;
    try {
      if (typeof key !== 'string' || key.trim() === '') throw new ValidationError('paste an admin key');
      await signIn(signInDeps, req, res, key);
      res.redirect(303, './');
    } catch (error) {
      const status = error instanceof MaestroError ? errorRule(error).status : 500;
      if (!(error instanceof MaestroError)) deps.log.error({ err: error }, 'admin sign-in error');
      page(req, res, 'login', { error: error instanceof MaestroError ? error.message : 'Unexpected error (logged).' }, status);
    }
  });

  // Everything below needs a session; changes need its CSRF token too.
  const sessions = new WeakMap<Request, AdminSession>();
  router.use(async (req, res, next) => {
    try {
      const session = await currentSession(signInDeps, req);
      if (!session) {
        if (req.method === 'GET' || req.method === 'HEAD') page(req, res, 'login', {}, 401);
        else res.status(401).type('text/plain').send('sign in first');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD' && (req.headers['sec-fetch-site'] === 'cross-site' || !csrfOk(req, session))) {
        res.status(403).type('text/plain').send('missing or wrong CSRF token');
        return;
      }
      sessions.set(req, session);
      next();
    } catch (error) {
      next(error);
    }
  });
  const sessionOf = (req: Request) => sessions.get(req)!;

  type Handler = (req: Request, res: Response, session: AdminSession) => Promise<void>;
  const handle =
    (fn: Handler) =>
    (req: Request, res: Response): Promise<void> =>
      fn(req, res, sessionOf(req)).catch((error: unknown) => failed(req, res, error, sessionOf(req)));

  router.post(
    '/logout',
    handle(async (req, res) => {
      await signOut(signInDeps, req, res);
      res.redirect(303, './');
    }),
  );

  // --- overview ------------------------------------------------------------------------------
  router.get(
    '/',
    handle(async (req, res, session) => {
      const credentials = await deps.credentials.list();
      const pools = deps.pools ? await deps.pools.list().catch(() => []) : [];
      const rateLimits = await Promise.all(credentials.map((c) => deps.rateLimits.get(c.id).catch(() => null)));
      const needs: Array<{ kind: string; what: string; name: string; href: string; detail: string }> = [];
      let overage = 0;
      credentials.forEach((c, i) => {
        const href = `credentials/${c.id}`;
        if (c.status === 'reauth_required')
          needs.push({ kind: c.status, what: 'reauth_required', name: c.name, href, detail: c.lastError ?? '' });
        else if (c.lastError) needs.push({ kind: 'failed', what: 'refresh failing', name: c.name, href, detail: c.lastError });
        const o = rateLimits[i]?.overage;
        if (o && (o.status === 'allowed' || o.status === 'in_use' || (o.utilization ?? 0) > 0)) {
          overage++;
          needs.push({ kind: 'billing_blocked', what: 'overage seen', name: c.name, href, detail: `overage ${o.status ?? ''}` });
        }
      });
      let exhausted = 0;
      for (const p of pools) {
        if (p.members.length > 0 && p.routable === 0) {
          exhausted++;
          needs.push({
            kind: 'cooling',
            what: 'pool exhausted',
            name: p.name,
            href: `pools/${p.id}`,
            detail: p.nextAvailableAt ? `next member back ${utc(p.nextAvailableAt)}` : 'no member is expected back',
          });
        }
        for (const m of p.members)
          if (m.state === 'billing_blocked')
            needs.push({
              kind: m.state,
              what: 'overage seen',
              name: `${p.name} / ${m.credentialName}`,
              href: `pools/${p.id}`,
              detail: m.reason ?? '',
            });
      }
      const counts = {
        total: credentials.length,
        reauth: credentials.filter((c) => c.status === 'reauth_required').length,
        failing: credentials.filter((c) => c.status !== 'reauth_required' && c.lastError).length,
        exhausted,
        overage,
      };
      page(req, res, 'overview', { counts, needs }, 200, session);
    }),
  );

  // --- credentials ---------------------------------------------------------------------------
  const workflowUrl = (id: string) =>
    deps.temporal.uiUrl
      ? `${deps.temporal.uiUrl}/namespaces/${encodeURIComponent(deps.temporal.namespace)}/workflows/${encodeURIComponent(`credential:${id}`)}`
      : undefined;

  const credentialView = async (id: string) => {
    const [c, rateLimit] = await Promise.all([deps.credentials.get(id), deps.rateLimits.get(id).catch(() => null)]);
    return {
      ...c,
      expiresText: utc(c.expiresAt),
      nextRefreshAt: c.workflow?.nextRefreshAt ?? null,
      nextRefreshText: utc(c.workflow?.nextRefreshAt),
      lastRefreshedText: c.lastRefreshedAt ? utc(c.lastRefreshedAt) : 'never',
      windows: windowViews(rateLimit?.windows),
      workflowUrl: c.authType === 'oauth' ? workflowUrl(c.id) : undefined,
    };
  };

  router.get(
    '/credentials',
    handle(async (req, res, session) => {
      const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
      const { items, nextCursor } = paginate(await deps.credentials.list(), { limit: PAGE_SIZE, cursor });
      const credentials = await Promise.all(items.map((c) => credentialView(c.id)));
      page(req, res, 'credentials', { credentials, nextCursor }, 200, session);
    }),
  );

  router.get(
    '/credentials/:id',
    handle(async (req, res, session) => {
      const id = String(req.params.id);
      const [c, events] = await Promise.all([credentialView(id), deps.credentials.events(id)]);
      page(
        req,
        res,
        'credential',
        {
          c,
          canReadQuota: !!readQuota && c.authType === 'oauth',
          events: events.slice(0, 100).map((e) => ({ at: utc(e.createdAt), type: e.type, details: JSON.stringify(e.details) })),
        },
        200,
        session,
      );
    }),
  );

  router.get(
    '/credentials/:id/delete',
    handle(async (req, res, session) => {
      page(req, res, 'credentialDelete', { c: await deps.credentials.metadata(String(req.params.id)) }, 200, session);
    }),
  );

  router.post(
    '/credentials/:id/delete',
    handle(async (req, res) => {
      await deps.credentials.remove(String(req.params.id));
      res.redirect(303, '../../credentials?done=deleted');
    }),
  );

  router.post(
    '/credentials/:id/refresh',
    handle(async (req, res) => {
      const id = String(req.params.id);
      await deps.credentials.refreshNow(id);
      res.redirect(303, `../${encodeURIComponent(id)}?done=refreshed`);
    }),
  );

  for (const action of ['disable', 'enable'] as const) {
    router.post(
      `/credentials/:id/${action}`,
      handle(async (req, res) => {
        const id = String(req.params.id);
        await deps.credentials.setEnabled(id, action === 'enable');
        res.redirect(303, `../${encodeURIComponent(id)}?done=${action}d`);
      }),
    );
  }

  router.post(
    '/credentials/:id/quota',
    handle(async (req, res) => {
      if (!readQuota) throw new NotFoundError('this Maestro cannot read quotas');
      const id = String(req.params.id);
      await readQuota.readQuota(id);
      res.redirect(303, `../${encodeURIComponent(id)}?done=quota`);
    }),
  );

  // --- client keys ---------------------------------------------------------------------------
  const keysPage = async (req: Request, res: Response, session: AdminSession, extra: object = {}, status = 200) => {
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    const { items, nextCursor } = paginate(await deps.keys.list(), { limit: PAGE_SIZE, cursor });
    const keys = items.map((k) => ({
      ...k,
      reaches:
        k.role === 'admin'
          ? 'everything'
          : [...k.credentials, ...k.providers.map((p) => `all ${p}`), ...k.pools.map((p) => `pool ${p}`)].join(', '),
      limits:
        Object.entries(k.limits)
          .map(([name, value]) => `${name} ${String(value)}`)
          .join(', ') || 'none',
    }));
    page(req, res, 'keys', { keys, nextCursor, providers: deps.providers, ...extra }, status, session);
  };

  router.get(
    '/keys',
    handle((req, res, session) => keysPage(req, res, session)),
  );

  router.post(
    '/keys',
    handle(async (req, res, session) => {
      const form = req.body as Record<string, string | string[] | undefined>;
      const list = (v: string | string[] | undefined) => (Array.isArray(v) ? v : (v ?? '').split(',')).map((s) => s.trim()).filter(Boolean);
      const limit = (v: string | string[] | undefined) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : undefined);
      const limits = Object.fromEntries(
        (['requestsPerMinute', 'tokensPerDay', 'concurrentCalls'] as const).flatMap((n) =>
          limit(form[n]) === undefined ? [] : [[n, limit(form[n])]],
        ),
      );
      const credentials = list(form.credentials);
      const providers = list(form.providers);
      const pools = list(form.pools);
      const parsed = createKeySchema.safeParse({
        name: form.name,
        role: form.role,
        ...(credentials.length ? { credentials } : {}),
        ...(providers.length ? { providers } : {}),
        ...(pools.length ? { pools } : {}),
        ...(Object.keys(limits).length ? { limits } : {}),
      });
      if (!parsed.success) {
        await keysPage(req, res, session, { error: firstIssue(parsed.error), openForm: true }, 400);
        return;
      }
      try {
        const created = await deps.keys.create(parsed.data as z.output<typeof createKeySchema> & { expiresAt?: undefined }, session.keyId);
        // The whole key is in this answer only; no-store is set for every page.
        await keysPage(req, res, session, { created: { name: created.name, key: created.key } }, 201);
      } catch (error) {
        if (!(error instanceof MaestroError)) throw error;
        await keysPage(req, res, session, { error: error.message, openForm: true }, errorRule(error).status);
      }
    }),
  );

  router.post(
    '/keys/:id/revoke',
    handle(async (req, res, session) => {
      await deps.keys.revoke(String(req.params.id), session.keyId);
      res.redirect(303, '../../keys?done=revoked');
    }),
  );

  // --- usage ---------------------------------------------------------------------------------
  const dimensions: UsageDimension[] = ['key', 'credential', 'model', 'provider', 'pool'];
  router.get(
    '/usage',
    handle(async (req, res, session) => {
      const by = dimensions.find((d) => d === req.query.by) ?? 'key';
      const days = [1, 7, 30].find((d) => String(d) === req.query.days) ?? 1;
      const to = new Date(Math.ceil(Date.now() / 3600_000) * 3600_000);
      const from = new Date(to.getTime() - days * 86_400_000);
      const rows = await deps.usage.query({ from, to, groupBy: [by], bucket: 'hour' });
      const names = await labelsFor(by);
      const labelOf = (value: string | null | undefined) => (value == null ? '(none)' : (names.get(value) ?? value));
      const groups = [...new Set(rows.map((r) => labelOf(r[by])))].sort();
      const hours: number[] = [];
      for (let t = from.getTime(); t < to.getTime(); t += 3600_000) hours.push(t / 1000);
      const series = (pick: (r: (typeof rows)[number]) => number) =>
        groups.map((label) => {
          const values = hours.map(() => 0);
          for (const r of rows) {
            if (labelOf(r[by]) !== label || !r.bucketStart) continue;
            const i = Math.round((Date.parse(r.bucketStart) / 1000 - hours[0]!) / 3600);
            if (i >= 0 && i < values.length) values[i]! += pick(r);
          }
          return { label, values };
        });
      const totals = new Map<string, Record<string, number>>();
      for (const r of rows) {
        const label = labelOf(r[by]);
        const t = totals.get(label) ?? {
          requests: 0,
          errors: 0,
          incomplete: 0,
          inputTokens: 0,
          outputTokens: 0,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
        };
        for (const k of Object.keys(t)) t[k]! += Number(r[k as keyof typeof r] ?? 0);
        totals.set(label, t);
      }
      page(
        req,
        res,
        'usage',
        {
          by,
          days,
          dimensions,
          tokensChart: {
            title: `Tokens per hour by ${by}`,
            unit: 'tokens',
            x: hours,
            series: series((r) => r.inputTokens + r.outputTokens),
          },
          requestsChart: { title: `Requests per hour by ${by}`, unit: 'requests', x: hours, series: series((r) => r.requests) },
          rows: [...totals].map(([label, t]) => ({ label, ...t })),
        },
        200,
        session,
      );
    }),
  );

  /** Names for ids in the usage table and charts (key and credential names; the id when unknown). */
  async function labelsFor(by: UsageDimension): Promise<Map<string, string>> {
    if (by === 'key') return new Map((await deps.keys.list()).map((k) => [k.id, `${k.name} (${k.id})`]));
    if (by === 'credential') return new Map((await deps.credentials.list()).map((c) => [c.id, `${c.name} (${c.provider})`]));
    if (by === 'pool' && deps.pools) return new Map((await deps.pools.list()).map((p) => [p.id, `${p.name} (${p.provider})`]));
    return new Map();
  }

  // --- provider sign-in ----------------------------------------------------------------------
  router.get(
    '/oauth',
    handle(async (req, res, session) => {
      const provider = deps.providers.find((p) => p === req.query.provider) ?? deps.providers[0];
      const name = typeof req.query.name === 'string' ? req.query.name.slice(0, 100) : 'default';
      page(req, res, 'oauth', { providers: deps.providers, provider, name }, 200, session);
    }),
  );

  router.post(
    '/oauth/start',
    handle(async (req, res, session) => {
      const form = req.body as Record<string, unknown>;
      const provider = providerSchema.safeParse(form.provider);
      const body = oauthStartSchema.safeParse(typeof form.name === 'string' && form.name.trim() ? { name: form.name } : {});
      if (!provider.success) throw new ValidationError('choose a provider');
      if (!body.success) throw new ValidationError(firstIssue(body.error));
      const started = await deps.credentials.beginLogin(provider.data, body.data.name);
      page(
        req,
        res,
        'oauth',
        { started: { ...started, provider: provider.data, expiresText: utc(started.expiresAt) }, providers: deps.providers },
        200,
        session,
      );
    }),
  );

  router.post(
    '/oauth/complete',
    handle(async (req, res) => {
      const form = req.body as Record<string, unknown>;
      const provider = providerSchema.safeParse(form.provider);
      const body = oauthCompleteSchema.safeParse({ sessionId: form.sessionId, code: form.code });
      if (!provider.success) throw new ValidationError('choose a provider');
      if (!body.success) throw new ValidationError(firstIssue(body.error));
      const { credential } = await deps.credentials.completeLogin(provider.data, body.data);
      res.redirect(303, `../credentials/${encodeURIComponent(credential.id)}?done=signedin`);
    }),
  );

  // --- pools ---------------------------------------------------------------------------------
  router.get(
    '/pools',
    handle(async (req, res, session) => {
      const pools = deps.pools ? await deps.pools.list() : [];
      page(req, res, 'pools', { configured: !!deps.pools, pools }, 200, session);
    }),
  );

  router.get(
    '/pools/:id',
    handle(async (req, res, session) => {
      if (!deps.pools) throw new NotFoundError('pools are not configured in this Maestro');
      const id = String(req.params.id);
      const [pool, events] = await Promise.all([deps.pools.get(id), deps.pools.events(id, 100)]);
      const names = new Map(pool.members.map((m) => [m.credentialId, m.credentialName]));
      const members = pool.members.map((m) => ({
        ...m,
        maxPercent: `${Math.round(m.maxUtilization * 100)} %`,
        untilText: utc(m.until),
        scope: m.scope.map((s) => ({ ...s, until: s.until ? utc(s.until) : null })),
        windows: windowViews(m.windows),
        actions: [
          m.paused ? { action: 'resume', label: 'Resume' } : { action: 'pause', label: 'Pause' },
          ...(m.state === 'cooling' || m.scope.length > 0 ? [{ action: 'clear-cooldown', label: 'Clear cooldown' }] : []),
        ],
      }));
      const eventViews = events.map((e) => ({
        at: utc(e.at),
        type: e.type,
        member: e.credentialId ? (names.get(e.credentialId) ?? e.credentialId) : '',
        reason: e.reason,
        until: e.until ? utc(e.until) : undefined,
        details: JSON.stringify(e.details),
      }));
      page(req, res, 'pool', { pool, members, events: eventViews }, 200, session);
    }),
  );

  router.post(
    '/pools/:id/members/:credential/:action',
    handle(async (req, res, session) => {
      if (!deps.pools) throw new NotFoundError('pools are not configured in this Maestro');
      const action = MEMBER_ACTIONS[String(req.params.action)];
      if (!action) throw new NotFoundError('no such member action');
      const id = String(req.params.id);
      // Audited: the pool's events name the admin key the session was opened with.
      await deps.pools.memberAction(id, String(req.params.credential), action, session.keyId);
      res.redirect(303, `../../../${encodeURIComponent(id)}?done=member`);
    }),
  );

  router.use((req: Request, res: Response) => {
    failed(req, res, new NotFoundError('no such admin page'), sessions.get(req));
  });
  router.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    failed(req, res, error, sessions.get(req));
  });
  return router;
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || 'form'}: ${issue.message}` : 'the form is not valid';
}
