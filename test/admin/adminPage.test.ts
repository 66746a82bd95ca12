// The admin page in a real browser (Debian's Chromium driven by playwright-core) against the real
// API (real PostgreSQL, real Temporal dev server, a fake Anthropic): sign-in, every page with no
// console error and no request leaving the host, a key created on the page that works and then
// 401s once revoked there, a chart drawn from real usage, a pool member paused and its cooldown
// cleared (audited with the session's key id), cookie flags and CSP, CSRF, a hostile credential
// name shown as text, client keys refused everywhere, axe-core with no serious violation.
// Screenshots go to this run's temp directory (MAESTRO_DOCS_SCREENSHOTS=1 also refreshes docs/).
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../src/app/services.js';
import { createLogger } from '../../src/logger.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { httpRequest } from '../support/http.js';
import { createDevServerEnv, TEST_API_KEY } from '../support/temporal.js';
import { MemoryPools } from './memoryPools.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HOSTILE = '<img src=x onerror=alert(1)>';
const AUTH_FAILURES = 8;
const shots = mkdtempSync(path.join(tmpdir(), 'maestro-admin-'));
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let env: TestWorkflowEnvironment;
let h: ApiHarness;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let admin: string;
const pools = new MemoryPools();
const ids: { plain?: string; hostile?: string; oauth?: string } = {};
const problems: string[] = [];
const dialogs: string[] = [];

const message = { model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] };
const proxied = (key: string, headers: Record<string, string> = {}) =>
  fetch(`${h.url}/proxy/anthropic/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-maestro-credential': 'team-api', ...headers },
    body: JSON.stringify(message),
  });

/** Clicks something that loads a new page (a form's submit) and waits for that page. */
async function submit(target: Locator): Promise<void> {
  await Promise.all([page.waitForNavigation(), target.click()]);
}
const textOf = (target: string | Locator) => (typeof target === 'string' ? page.locator(target) : target).first().innerText();
const countOf = (target: string | Locator) => (typeof target === 'string' ? page.locator(target) : target).count();

/** Opens an admin page, checks it answered 200, and shoots it. */
async function open(relative: string, shot?: string): Promise<void> {
  const res = await page.goto(`${admin}${relative}`);
  expect(res?.status(), relative).toBe(200);
  await page.waitForLoadState('networkidle');
  if (shot) await page.screenshot({ path: path.join(shots, `${shot}.png`), fullPage: true });
}

/** axe-core, from node_modules, run in the page (through the debugger, so the page's CSP stays as it is). */
async function seriousViolations(): Promise<string[]> {
  await page.evaluate(axeSource);
  // A string, evaluated in the page (this file is typed without the DOM library).
  const found = (await page.evaluate(
    `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, where: JSON.stringify(v.nodes[0] && v.nodes[0].target) })))`,
  )) as Array<{ id: string; impact: string; where: string }>;
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} at ${v.where}`);
}

async function createClientKey(name: string): Promise<{ id: string; key: string }> {
  const created = await h.call('POST', '/v1/keys', { body: { name, role: 'client', providers: ['anthropic'] } });
  expect(created.status, created.text).toBe(201);
  return created.json;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  env = await createDevServerEnv();
  h = await startApiHarness(env, {
    api: { pools },
    config: { temporalUiUrl: 'http://localhost:8233', authFailuresPerMinute: AUTH_FAILURES },
  });
  admin = `${h.url}/admin/`;
  const plain = await h.call('POST', '/v1/credentials', {
    body: { provider: 'anthropic', authType: 'api_key', name: 'team-api', apiKey: h.fake.apiKey },
  });
  expect(plain.status, plain.text).toBe(201);
  ids.plain = plain.json.id;
  // The API refuses such a name; one written straight to the store (an older version, a restore) must still show as text.
  const hostile = await h.core.store.create({
    provider: 'anthropic',
    authType: 'api_key',
    name: HOSTILE,
    secret: { apiKey: h.fake.apiKey },
    expiresAt: null,
  });
  ids.hostile = hostile.id;

  const until = new Date(Date.now() + 2 * 3600_000).toISOString();
  pools.add(
    {
      id: '7f3b8a52-0000-4000-8000-000000000001',
      name: 'team',
      provider: 'anthropic',
      strategy: 'affinity-least-loaded',
      onExhausted: { mode: 'hold', holdSeconds: 30 },
      planLimitsOnly: true,
      sessionTtlSeconds: 3600,
      createdAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      members: [
        {
          credentialId: ids.plain!,
          credentialName: 'team-api',
          priority: 0,
          weight: 1,
          maxUtilization: 0.98,
          paused: false,
          state: 'routable',
          reason: null,
          until: null,
          scope: [],
          windows: {
            five_hour: { utilization: 0.42, reset: until, status: 'allowed', source: 'header', observedAt: new Date().toISOString() },
          },
          sessions: 2,
          inFlight: 1,
        },
        {
          credentialId: ids.hostile!,
          credentialName: HOSTILE,
          priority: 1,
          weight: 1,
          maxUtilization: 0.98,
          paused: false,
          state: 'cooling',
          reason: 'five_hour window rejected',
          until,
          scope: [{ scope: 'credential', until, reason: 'five_hour window rejected' }],
          windows: { five_hour: { utilization: 1, reset: until, status: 'rejected', source: 'endpoint' } },
          sessions: 0,
          inFlight: 0,
        },
      ],
    },
    [
      {
        at: new Date().toISOString(),
        type: 'cooldown_set',
        credentialId: ids.hostile,
        reason: 'five_hour window rejected',
        until,
        details: {},
      },
    ],
  );

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  page = await context.newPage();
  const host = new URL(h.url).host;
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (new URL(r.url()).host !== host) problems.push(`request left the host: ${r.url()}`);
  });
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await h?.close();
  await env?.teardown();
});

describe('admin page', () => {
  it('asks for a key, refuses a wrong one and a client key, and never stores the key in the browser', async () => {
    const bare = await page.goto(`${h.url}/admin`);
    expect(page.url()).toBe(admin); // /admin → /admin/ (relative links need the slash)
    expect(bare?.status()).toBe(401);
    expect(await countOf(page.locator('input[type=password][name=key]'))).toBe(1);

    await page.fill('input[name=key]', 'msk_0123456789abcdef_wrongwrongwrongwrongwrongwrongwrongwrong');
    await submit(page.locator('button[type=submit]'));
    expect(await textOf(page.locator('[role=alert]'))).toContain('not a valid Maestro admin key');

    const client = await createClientKey('client-at-the-door');
    await page.fill('input[name=key]', client.key);
    const refused = page.waitForResponse((r) => r.url().endsWith('/admin/login'));
    await submit(page.locator('button[type=submit]'));
    expect((await refused).status()).toBe(403);
    expect(await textOf(page.locator('[role=alert]'))).toContain('client keys cannot open the admin page');
    expect(await context.cookies()).toEqual([]);

    await page.fill('input[name=key]', TEST_API_KEY);
    await submit(page.locator('button[type=submit]'));
    await page.waitForURL(admin);
    expect((await textOf(page.locator('h1'))).trim()).toBe('Overview');

    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'maestro_admin', httpOnly: true, sameSite: 'Strict', secure: false, path: '/admin' });
    expect(cookie!.value).not.toContain(TEST_API_KEY);
    const stored = (await page.evaluate(
      'JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie',
    )) as string;
    expect(stored).not.toContain(TEST_API_KEY);
    expect(stored).not.toContain(cookie!.value); // HttpOnly: not readable by the page's script
  });

  it('serves a strict CSP and no inline script or handler, on every page, with hashed assets only', async () => {
    for (const relative of ['', 'credentials', `credentials/${ids.plain}`, 'keys', 'usage', 'oauth', 'pools', `pools/${pools_id()}`]) {
      const res = await page.goto(`${admin}${relative}`);
      expect(res?.status(), relative).toBe(200);
      const headers = res!.headers();
      expect(headers['content-security-policy']).toContain("script-src 'self'");
      expect(headers['content-security-policy']).toContain("default-src 'none'");
      expect(headers['content-security-policy']).not.toContain('unsafe');
      expect(headers['cache-control']).toBe('no-store');
      expect(headers['x-frame-options']).toBe('DENY');
      const html = await res!.text();
      expect(html, relative).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
      const tags = html.replace(/"[^"]*"/g, '""'); // attribute values (escaped text) set aside
      expect(tags, relative).not.toMatch(/<[^>]*\son[a-z]+\s*=/i);
      expect(tags, relative).not.toMatch(/<[^>]*\sstyle\s*=/i);
      expect(html, relative).not.toMatch(/(src|href)="https?:\/\/(?!localhost:8233)/);
      for (const src of html.matchAll(/(?:src|href)="([^"]*assets\/[^"]+)"/g)) expect(src[1]).toMatch(/\.[0-9a-f]{10}\.(js|css)$/);
    }
    const js = await httpRequest(new URL((await page.locator('script[src*="htmx"]').getAttribute('src'))!, page.url()).href);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect(js.text).toContain('htmx');
  });

  it('shows every page with no console error, no request off the host and no serious accessibility violation', async () => {
    const pages: Array<[string, string, string]> = [
      ['', 'overview', 'Overview'],
      ['credentials', 'credentials', 'Credentials'],
      [`credentials/${ids.plain}`, 'credential', 'team-api'],
      ['keys', 'keys', 'Client keys'],
      ['usage', 'usage', 'Usage'],
      ['oauth', 'oauth', 'Sign in to a provider'],
      ['pools', 'pools', 'Pools'],
      [`pools/${pools_id()}`, 'pool', 'Pool team'],
    ];
    problems.length = 0; // the refused sign-ins above answered 401 and 403 on purpose
    for (const [relative, shot, heading] of pages) {
      await open(relative, shot);
      expect(await textOf(page.locator('h1'))).toContain(heading);
      expect(await seriousViolations(), relative).toEqual([]);
    }
    expect(problems).toEqual([]);
  });

  it('refreshes its live part in place every few seconds', async () => {
    await open('credentials');
    const polled = await page.waitForResponse((r) => r.request().headers()['hx-request'] === 'true', { timeout: 15_000 });
    expect(polled.status()).toBe(200);
    expect(new URL(polled.url()).pathname).toBe('/admin/credentials');
    await page.waitForLoadState('networkidle');
    expect(await countOf('#live')).toBe(1); // swapped in place, not nested
    expect(await textOf('.updated')).toMatch(/^updated \d+ s ago$/);
    expect(problems).toEqual([]);
  });

  it('shows a hostile credential name as text', async () => {
    await open('credentials');
    expect(await countOf(page.getByRole('link', { name: HOSTILE }))).toBe(1);
    expect(await countOf(page.locator('img[src=x]'))).toBe(0);
    await open(`credentials/${ids.hostile}`);
    expect(await textOf(page.locator('h1'))).toContain(HOSTILE);
    await open(`pools/${pools_id()}`);
    expect(await countOf(page.locator('img[src=x]'))).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it('creates a key shown once that works, and revokes it: then the API answers 401', async () => {
    await open('keys');
    await page.locator('summary', { hasText: 'Create a key' }).click();
    await page.fill('#k-name', 'made-on-the-page');
    await page.selectOption('#k-role', 'client');
    await page.check('input[name=providers][value=anthropic]');
    await page.fill('#k-rpm', '600');
    await submit(page.locator('button:has-text("Create key")'));
    const key = (await page.locator('#created-key').textContent())!.trim();
    expect(key).toMatch(/^msk_[0-9a-f]{16}_/);
    await page.screenshot({ path: path.join(shots, 'key-created.png'), fullPage: true });

    const ok = await proxied(key);
    expect(ok.status).toBe(200);
    await ok.text();

    const row = page.locator('tr', { hasText: 'made-on-the-page' });
    expect(await textOf(row)).toContain('requestsPerMinute 600');
    await submit(row.getByRole('button', { name: 'Revoke made-on-the-page' }));
    expect((await textOf(page.locator('[role=status]'))).trim()).toBe('Key revoked.');
    expect(await textOf(page.locator('tr', { hasText: 'made-on-the-page' }))).toContain('revoked');
    const refused = await proxied(key);
    expect(refused.status).toBe(401);
    await refused.text();
    // Nothing the page showed later holds the key again.
    expect(await page.content()).not.toContain(key);
  });

  it('draws the usage chart from real proxied calls', async () => {
    const client = await createClientKey('charted');
    for (let i = 0; i < 3; i++) {
      const res = await proxied(client.key);
      expect(res.status).toBe(200);
      await res.text();
    }
    await h.api.usage.flush();
    await open('usage?by=key', 'usage');
    const chart = page.locator('#chart-tokens');
    expect(await countOf(chart.locator('canvas'))).toBe(1);
    const data = JSON.parse((await chart.getAttribute('data-chart'))!) as { series: Array<{ label: string; values: number[] }> };
    const charted = data.series.find((s) => s.label.startsWith('charted'));
    expect(charted!.values.reduce((a, b) => a + b, 0)).toBe(3 * 15); // the fake's answer: 10 input + 5 output tokens
    expect(await textOf(page.locator('#usage-totals tr', { hasText: 'charted' }))).toMatch(
      /charted \([0-9a-f]{16}\)\s+3\s+0\s+0\s+30\s+15/,
    );
    // The canvas has pixels on it (uPlot drew the series).
    const inked = (await page.evaluate(`(() => {
      const c = document.querySelector('#chart-tokens canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    })()`)) as number;
    expect(inked).toBeGreaterThan(100);
    expect(problems).toEqual([]);
  });

  it('signs in to a provider from the page, shows the windows the fake reports, and links the workflow', async () => {
    await open('oauth');
    await page.selectOption('#o-provider', 'anthropic');
    await page.fill('#o-name', 'claude-max');
    await submit(page.locator('button:has-text("Start")'));
    const authorizeUrl = (await page.getByRole('link', { name: /sign-in page/ }).getAttribute('href'))!;
    const consent = h.fake.authorize(authorizeUrl);
    await page.fill('#o-code', consent.pasted);
    await submit(page.locator('button:has-text("Finish sign-in")'));
    expect(await textOf(page.locator('[role=status]'))).toContain('Signed in to the provider');
    ids.oauth = page.url().split('/').pop()!.split('?')[0];
    expect(await textOf(page.locator('h1'))).toContain('claude-max');

    // One answer with the subscription's windows: the page shows them as bars with their resets.
    const reset5h = Math.floor(Date.now() / 1000) + 3 * 3600;
    const reset7d = Math.floor(Date.now() / 1000) + 4 * 86400;
    h.fake.failNextApi([
      {
        status: 200,
        body: {
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          model: 'claude-test',
          content: [],
          usage: { input_tokens: 10, output_tokens: 5 },
        },
        headers: {
          'anthropic-ratelimit-unified-status': 'allowed',
          'anthropic-ratelimit-unified-5h-utilization': '0.37',
          'anthropic-ratelimit-unified-5h-reset': String(reset5h),
          'anthropic-ratelimit-unified-5h-status': 'allowed',
          'anthropic-ratelimit-unified-7d-utilization': '0.81',
          'anthropic-ratelimit-unified-7d-reset': String(reset7d),
          'anthropic-ratelimit-unified-7d-status': 'allowed_warning',
        },
      },
    ]);
    const res = await proxied(TEST_API_KEY, { 'x-maestro-credential': ids.oauth! });
    expect(res.status).toBe(200);
    await res.text();

    await open('credentials', 'credentials');
    const row = page.locator('tr', { hasText: 'claude-max' });
    expect(await countOf(row.locator('meter'))).toBe(2);
    expect(await textOf(row)).toContain('37 %');
    expect(await textOf(row)).toContain('81 %');
    expect(await row.getByRole('link', { name: /credential:/ }).getAttribute('href')).toBe(
      `http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(`credential:${ids.oauth}`)}`,
    );
    await page.screenshot({ path: path.join(shots, 'credentials.png'), fullPage: true });

    await open(`credentials/${ids.oauth}`, 'credential-oauth');
    await submit(page.locator('button:has-text("Refresh now")'));
    expect((await textOf(page.locator('[role=status]'))).trim()).toBe('Refreshed.');
    expect(problems).toEqual([]);
  });

  it('pauses and resumes a pool member and clears a cooldown, audited with the session key id', async () => {
    await open(`pools/${pools_id()}`);
    await submit(page.getByRole('button', { name: 'Pause team-api' }));
    expect((await textOf(page.locator('[role=status]'))).trim()).toBe('Member updated.');
    expect(await textOf(page.locator('tr', { hasText: 'team-api' }).first())).toContain('paused');
    await submit(page.getByRole('button', { name: 'Resume team-api' }));
    await submit(page.getByRole('button', { name: `Clear cooldown ${HOSTILE}` }));
    expect(await textOf(page.locator('tbody tr').nth(1))).toContain('routable');
    expect(pools.actions).toEqual([
      { pool: pools_id(), credential: ids.plain, action: 'pause', actor: 'env:1' },
      { pool: pools_id(), credential: ids.plain, action: 'resume', actor: 'env:1' },
      { pool: pools_id(), credential: ids.hostile, action: 'clear-cooldown', actor: 'env:1' },
    ]);
  });

  it('refuses a change without the CSRF token, from the page or from another site', async () => {
    const victim = await createClientKey('csrf-victim');
    // Same origin, session cookie sent, no token: refused.
    const status = await page.evaluate(
      async (id) =>
        (await fetch(`keys/${id}/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' }))
          .status,
      victim.id,
    );
    expect(status).toBe(403);
    const wrong = await page.evaluate(
      async (id) => (await fetch(`keys/${id}/revoke`, { method: 'POST', headers: { 'x-csrf-token': 'guessed' } })).status,
      victim.id,
    );
    expect(wrong).toBe(403);

    // Another site (localhost is not 127.0.0.1) posting a form into the admin page.
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form id=f method=post action="${admin}keys/${victim.id}/revoke"><input name=_csrf value=x></form>` +
          `<form id=g method=post action="${admin}keys"><input name=name value=evil><input name=role value=admin></form>` +
          `<script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const evilPage = await context.newPage();
    const posted = evilPage.waitForResponse((r) => r.url().includes('/revoke'));
    await evilPage.goto(`http://localhost:${(evil.address() as { port: number }).port}/`);
    expect([401, 403]).toContain((await posted).status());
    await evilPage.close();
    evil.close();

    const after = await h.call('GET', `/v1/keys/${victim.id}`);
    expect(after.json.revokedAt).toBeNull();
    const all = await h.call('GET', '/v1/keys');
    expect(all.json.keys.map((k: { name: string }) => k.name)).not.toContain('evil');
  });

  it('deletes a credential only after its confirmation page', async () => {
    await open(`credentials/${ids.hostile}`);
    await submit(page.getByRole('link', { name: 'Delete…' }));
    expect(await textOf(page.locator('h1'))).toContain('Delete');
    expect((await h.call('GET', `/v1/credentials/${ids.hostile}`)).status).toBe(200); // not yet
    await submit(page.getByRole('button', { name: /^Delete / }));
    expect((await textOf(page.locator('[role=status]'))).trim()).toBe('Credential deleted.');
    expect((await h.call('GET', `/v1/credentials/${ids.hostile}`)).status).toBe(404);
    // The README's picture of the credentials page.
    await open('credentials');
    await page.locator('body').screenshot({ path: path.join(shots, 'credentials-after-delete.png') });
    if (process.env.MAESTRO_DOCS_SCREENSHOTS === '1')
      copyFileSync(path.join(shots, 'credentials-after-delete.png'), 'docs/admin-credentials.png');
  });

  it('ends the session of an admin key once that key is revoked', async () => {
    const created = await h.call('POST', '/v1/keys', { body: { name: 'second-admin', role: 'admin' } });
    expect(created.status, created.text).toBe(201);
    const login = await fetch(`${admin}login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `key=${encodeURIComponent(created.json.key)}`,
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    expect((await httpRequest(`${admin}keys`, { headers: { cookie } })).status).toBe(200);
    expect((await h.call('DELETE', `/v1/keys/${created.json.id}`)).status).toBe(204);
    const after = await httpRequest(`${admin}keys`, { headers: { cookie } });
    expect(after.status).toBe(401);
    expect(after.text).toContain('name="key"');
  });

  it('gives a client key nothing: no page, no change', async () => {
    const client = await createClientKey('client-knocking');
    const bearer = { authorization: `Bearer ${client.key}`, 'x-api-key': client.key };
    for (const relative of ['', 'credentials', `credentials/${ids.plain}`, 'keys', 'usage', 'oauth', 'pools', `pools/${pools_id()}`]) {
      const res = await httpRequest(`${admin}${relative}`, { headers: bearer });
      expect(res.status, relative).toBe(401);
      expect(res.text).toContain('name="key"'); // the sign-in form, nothing else
      expect(res.text).not.toContain('team-api');
    }
    for (const [relative, body] of [
      ['keys', 'name=x&role=admin'],
      [`credentials/${ids.plain}/delete`, ''],
      [`pools/${pools_id()}/members/${ids.plain}/pause`, ''],
      ['oauth/start', 'provider=anthropic'],
    ] as const) {
      const res = await httpRequest(`${admin}${relative}`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      expect(res.status, relative).toBe(401);
    }
    // Its key as a session cookie is no session either.
    const cookie = await httpRequest(`${admin}keys`, { headers: { cookie: `maestro_admin=${client.key}` } });
    expect(cookie.status).toBe(401);
    expect((await h.call('GET', `/v1/credentials/${ids.plain}`)).status).toBe(200);
    expect(pools.actions).toHaveLength(3);
  });

  it('signs out: the session is gone on the server', async () => {
    const [cookie] = await context.cookies();
    await open('');
    await submit(page.locator('button:has-text("Sign out")'));
    expect(await countOf(page.locator('input[name=key]'))).toBe(1);
    expect(await context.cookies()).toEqual([]);
    const replayed = await httpRequest(`${admin}keys`, { headers: { cookie: `maestro_admin=${cookie!.value}` } });
    expect(replayed.status).toBe(401);
  });

  it('counts failed sign-ins in the API failed-key limit', async () => {
    // Some failures are counted already (a wrong key, a client key, a revoked key on /proxy): the rest of the limit here.
    const statuses: number[] = [];
    for (let i = 0; i < AUTH_FAILURES; i++) {
      const res = await httpRequest(`${admin}login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `key=msk_0123456789abcdef_wrong${i}`,
      });
      statuses.push(res.status);
    }
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
    expect(statuses.at(-1)).toBe(429);
    // Now even the right key is refused, here and on /v1: one limit for both.
    const limited = await httpRequest(`${admin}login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `key=${encodeURIComponent(TEST_API_KEY)}`,
    });
    expect(limited.status).toBe(429);
    expect(limited.text).toContain('too many failed key checks');
    expect((await h.call('GET', '/v1/keys')).status).toBe(429);
  });

  it('works under a path prefix (behind a reverse proxy), with a Secure cookie over HTTPS', async () => {
    // A second API that believes its loopback proxy, and the proxy: /maestro/* → the API (X-Forwarded-Proto as the client sent it).
    const behind = await startApi(
      { ...h.config, port: 0, host: '127.0.0.1', trustProxy: ['loopback'] },
      createLogger('silent'),
      h.db.db,
      h.db.url,
      env.client,
      h.core,
      { pools },
    );
    const target = (behind.server.address() as { port: number }).port;
    const proxy: Server = createServer((req, res) => {
      if (!req.url?.startsWith('/maestro/')) {
        res.statusCode = 404;
        res.end();
        return;
      }
      const upstream = request(
        {
          host: '127.0.0.1',
          port: target,
          method: req.method,
          path: req.url.slice('/maestro'.length),
          headers: req.headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const front = `http://127.0.0.1:${(proxy.address() as { port: number }).port}/maestro/admin/`;
    try {
      // Over HTTPS (as the proxy tells the API): the cookie is Secure.
      const raw = await fetch(`${front}login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'https' },
        body: `key=${encodeURIComponent(TEST_API_KEY)}`,
        redirect: 'manual',
      });
      expect(raw.status).toBe(303);
      expect(raw.headers.get('location')).toBe('./');
      expect(raw.headers.get('set-cookie')).toMatch(/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);

      // The browser, through the proxy, signs in and follows every link of the menu: all stays under the prefix.
      const prefixed = await browser.newContext();
      const tab = await prefixed.newPage();
      const seen: string[] = [];
      tab.on('request', (r) => seen.push(new URL(r.url()).pathname));
      await tab.goto(front.slice(0, -1)); // /maestro/admin → /maestro/admin/
      expect(new URL(tab.url()).pathname).toBe('/maestro/admin/');
      await tab.fill('input[name=key]', TEST_API_KEY);
      await Promise.all([tab.waitForNavigation(), tab.click('button[type=submit]')]);
      const [cookie] = await prefixed.cookies();
      expect(cookie).toMatchObject({ path: '/maestro/admin', secure: false, httpOnly: true, sameSite: 'Strict' });
      for (const label of ['Credentials', 'Pools', 'Client keys', 'Usage', 'Sign-in', 'Overview']) {
        await Promise.all([tab.waitForNavigation(), tab.getByRole('link', { name: label, exact: true }).click()]);
        expect(await tab.locator('h1').first().innerText(), label).toBeTruthy();
        expect(await tab.locator('input[name=key]').count(), label).toBe(0); // still signed in
      }
      await Promise.all([tab.waitForNavigation(), tab.getByRole('link', { name: 'Credentials', exact: true }).click()]);
      await Promise.all([tab.waitForNavigation(), tab.getByRole('link', { name: 'team-api' }).first().click()]);
      expect(await tab.locator('h1').first().innerText()).toContain('team-api');
      await prefixed.close();
      expect(seen.filter((p) => !p.startsWith('/maestro/admin/'))).toEqual(['/maestro/admin']); // then redirected to admin/
    } finally {
      proxy.close();
      await behind.close();
    }
  });

  it('is not there at all with MAESTRO_ADMIN_UI=false', async () => {
    let off: RunningApi | undefined;
    try {
      off = await startApi(
        { ...h.config, port: 0, host: '127.0.0.1', adminUi: false },
        createLogger('silent'),
        h.db.db,
        h.db.url,
        env.client,
        h.core,
      );
      const url = `http://127.0.0.1:${(off.server.address() as { port: number }).port}`;
      for (const p of ['/admin', '/admin/', '/admin/keys', '/admin/login']) expect((await httpRequest(`${url}${p}`)).status, p).toBe(404);
    } finally {
      await off?.close();
    }
  });
});

function pools_id(): string {
  return '7f3b8a52-0000-4000-8000-000000000001';
}
