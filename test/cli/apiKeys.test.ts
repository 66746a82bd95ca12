// `maestro api-keys create|list|revoke` against a running API, as an operator runs them: the whole
// key is printed once, the list never shows it, a revoked key is refused, bad flags say what to fix.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { runMaestro } from '../support/children.js';
import { createDevServerEnv, TEST_API_KEY } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env);
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

async function maestro(args: string[], key = TEST_API_KEY): Promise<{ code: number | null; out: string }> {
  const child = runMaestro(args, { MAESTRO_URL: h.url, MAESTRO_API_KEY: key, MAESTRO_ENV: 'test' });
  const { code } = await child.exited;
  return { code, out: child.output() };
}

it('creates a key shown once, lists it without the key, revokes it; refuses bad flags and client keys', async () => {
  const created = await maestro([
    'api-keys',
    'create',
    '--name',
    'ci bot',
    '--provider',
    'anthropic',
    '--rpm',
    '30',
    '--concurrent-calls',
    '4',
    '--expires',
    '30d',
  ]);
  expect(created.code, created.out).toBe(0);
  const key = /(msk_([0-9a-f]{16})_[A-Za-z0-9_-]{43})/.exec(created.out);
  expect(key).not.toBeNull();
  const [, whole, id] = key!;
  expect(created.out).toMatch(new RegExp(`Created client key "ci bot" \\(${id}\\), expires \\d{4}-`));
  expect((await h.call('GET', '/v1/credentials', { headers: { authorization: `Bearer ${whole}` } })).status).toBe(200);

  const listed = await maestro(['api-keys', 'list']);
  expect(listed.code).toBe(0);
  expect(listed.out).toMatch(new RegExp(`${id}\\s+ci bot\\s+client\\s+anthropic/\\*\\s+30/min 4 at once\\s+\\d{4}-\\S+\\s+\\S+\\s+active`));
  expect(listed.out).not.toContain(whole!.slice(22));

  const asClient = await maestro(['api-keys', 'list'], whole);
  expect(asClient.code).toBe(1);
  expect(asClient.out).toMatch(/maestro: Maestro key [0-9a-f]{16} \("ci bot"\) is a client key: GET \/v1\/keys needs an admin key/);

  const revoked = await maestro(['api-keys', 'revoke', id!]);
  expect(revoked.code).toBe(0);
  expect((await h.call('GET', '/v1/credentials', { headers: { authorization: `Bearer ${whole}` } })).status).toBe(401);
  expect((await maestro(['api-keys', 'list'])).out).toMatch(new RegExp(`${id}.*revoked \\d{4}-`));

  const badExpiry = await maestro(['api-keys', 'create', '--name', 'x', '--provider', 'anthropic', '--expires', 'soon']);
  expect(badExpiry.code).toBe(1);
  expect(badExpiry.out.trim()).toBe('maestro: --expires: "soon" is neither an ISO date-time nor a duration like 30d, 12h or 90m');
  const noScope = await maestro(['api-keys', 'create', '--name', 'x']);
  expect(noScope.code).toBe(1);
  expect(noScope.out).toMatch(/a client key must list credentials/);
  const badRpm = await maestro(['api-keys', 'create', '--name', 'x', '--provider', 'anthropic', '--rpm', 'lots']);
  expect(badRpm.code).toBe(1);
  expect(badRpm.out).toMatch(/--rpm must be a positive whole number, not "lots"/);
}, 120_000);

it('`maestro usage` prints the recorded usage as a table, and says what is wrong with a bad option', async () => {
  const imported = await h.call('POST', '/v1/credentials', {
    body: { provider: 'anthropic', authType: 'api_key', name: 'usage-cli', apiKey: h.fake.apiKey },
  });
  expect(imported.status).toBe(201);
  const proxied = await h.call('POST', '/proxy/anthropic/v1/messages', {
    body: { model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] },
    headers: { 'x-maestro-credential': 'usage-cli' },
  });
  expect(proxied.status).toBe(200);
  await h.api.usage.flush();
  const table = await maestro(['usage', '--group-by', 'key,provider,model', '--from', '2h']);
  expect(table.code, table.out).toBe(0);
  expect(table.out).toMatch(/KEY\s+PROVIDER\s+MODEL\s+REQUESTS\s+ERRORS\s+INPUT\s+OUTPUT\s+CACHE READ\s+CACHE WRITE/);
  expect(table.out).toMatch(/env:1\s+anthropic\s+claude-fake\s+1\s+0\s+10\s+5\s+0\s+0/);
  const bad = await maestro(['usage', '--bucket', 'week']);
  expect(bad.code).toBe(1);
  expect(bad.out).toMatch(/maestro: bucket: bucket must be hour, day or none/);
}, 60_000);
