// The admin page's pools, in a real browser, over real pools (src/pools, not a stand-in): the fake
// Anthropic exhausts one account's 5-hour window, a proxied call fails over, and the pool page shows
// that member `cooling` with its reset while the other stays `routable`; pausing the member from the
// page changes what the API reports. MAESTRO_DOCS_SCREENSHOTS=1 refreshes docs/admin-pool.png.
import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { seedOAuthCredential } from '../support/credentials.js';
import { createDevServerEnv, TEST_API_KEY } from '../support/temporal.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const shots = mkdtempSync(path.join(tmpdir(), 'maestro-admin-pools-'));

let env: TestWorkflowEnvironment;
let h: ApiHarness;
let browser: Browser;
let page: Page;
let poolId: string;
const ids: Record<string, string> = {};
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  env = await createDevServerEnv();
  h = await startApiHarness(env, {
    fake: {
      accounts: {
        alice: { token: 'sk-ant-oat01-pa-0000000000', refreshToken: 'sk-ant-ort01-pa-0000000000' },
        bob: { token: 'sk-ant-oat01-pb-0000000000', refreshToken: 'sk-ant-ort01-pb-0000000000' },
      },
    },
  });
  ids.alice = (await seedOAuthCredential(h, { tag: 'pa', name: 'alice' })).credential.id;
  ids.bob = (await seedOAuthCredential(h, { tag: 'pb', name: 'bob' })).credential.id;
  const created = await h.call('POST', '/v1/pools', {
    body: {
      name: 'team',
      provider: 'anthropic',
      strategy: 'priority-fill',
      members: [{ credential: 'alice' }, { credential: 'bob', priority: 1 }],
    },
  });
  expect(created.status, created.text).toBe(201);
  poolId = created.json.id;

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
  const host = new URL(h.url).host;
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (new URL(r.url()).host !== host) problems.push(`request left the host: ${r.url()}`);
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await h?.close();
  await env?.teardown();
});

it('shows a member cooling with its reset after the fake exhausts its window, and pauses a member from the page', async () => {
  const call = () =>
    fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_API_KEY}`,
        'content-type': 'application/json',
        'anthropic-version': '2023-06-01',
        'x-maestro-pool': 'team',
      },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
  expect((await call()).headers.get('x-maestro-credential-id')).toBe(ids.alice);
  h.fake.accounts.exhaust('alice', { window: '5h', resetInSeconds: 2 * 3600 });
  const failedOver = await call();
  expect(failedOver.status).toBe(200);
  expect(failedOver.headers.get('x-maestro-credential-id')).toBe(ids.bob);

  await page.goto(`${h.url}/admin/`);
  await page.fill('input[name=key]', TEST_API_KEY);
  await Promise.all([page.waitForNavigation(), page.locator('button[type=submit]').click()]);
  problems.length = 0; // the sign-in form itself answers 401, which the browser logs
  const res = await page.goto(`${h.url}/admin/pools/${poolId}`);
  expect(res?.status()).toBe(200);
  await page.waitForLoadState('networkidle');
  const alice = page.locator('tr', { hasText: 'alice' }).first();
  const bob = page.locator('tr', { hasText: 'bob' }).first();
  expect(await alice.innerText()).toContain('cooling');
  expect(await bob.innerText()).toContain('routable');
  // The reset as the API reports it, shown on the page (absolute time).
  const until = (await h.call('GET', '/v1/pools/team')).json.members[0].until as string;
  expect(Date.parse(until)).toBeGreaterThan(Date.now() + 2 * 3600_000 - 60_000);
  expect(await page.content()).toContain(until.slice(0, 16));
  await page.screenshot({ path: path.join(shots, 'pool.png'), fullPage: true });
  if (process.env.MAESTRO_DOCS_SCREENSHOTS === '1') copyFileSync(path.join(shots, 'pool.png'), 'docs/admin-pool.png');

  // Pause bob from the page: the API reports it disabled, audited with the session's key.
  await Promise.all([page.waitForNavigation(), bob.locator('button', { hasText: /pause/i }).click()]);
  const after = (await h.call('GET', '/v1/pools/team')).json.members[1];
  expect(after).toMatchObject({ paused: true, state: 'disabled' });
  const events = (await h.call('GET', '/v1/pools/team/events')).json.events as Array<{ type: string }>;
  expect(events.some((e) => e.type === 'member_paused')).toBe(true);

  // Disable alice on her credential page: the API shows it, the pool routes around her; enable her again.
  await page.goto(`${h.url}/admin/credentials/${ids.alice}`);
  await Promise.all([page.waitForNavigation(), page.locator('button', { hasText: /^Disable$/ }).click()]);
  expect(await page.locator('h1').innerText()).toContain('disabled');
  expect((await h.call('GET', `/v1/credentials/${ids.alice}`)).json.status).toBe('disabled');
  expect((await h.call('GET', '/v1/pools/team')).json.members[0].state).toBe('disabled');
  await Promise.all([page.waitForNavigation(), page.locator('button', { hasText: /^Enable$/ }).click()]);
  expect((await h.call('GET', `/v1/credentials/${ids.alice}`)).json.status).toBe('active');

  // A client key for the pool, made on the page: with no header it goes through its one pool (bob, resumed).
  expect((await h.call('POST', '/v1/pools/team/members', { body: { credential: ids.bob, action: 'resume' } })).status).toBe(200);
  await page.goto(`${h.url}/admin/keys`);
  await page.locator('summary', { hasText: 'Create a key' }).click();
  await page.fill('#k-name', 'pool user');
  await page.fill('#k-pools', 'team');
  await Promise.all([page.waitForNavigation(), page.locator('button', { hasText: 'Create key' }).click()]);
  const key = (await page.locator('#created-key').innerText()).trim();
  const viaPool = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
  });
  expect(viaPool.status).toBe(200);
  expect([ids.alice, ids.bob]).toContain(viaPool.headers.get('x-maestro-credential-id'));
  expect(problems, problems.join('; ')).toEqual([]);
}, 120_000);
