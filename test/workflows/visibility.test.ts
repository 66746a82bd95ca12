// On the real dev server (the one `npm run dev` runs), an operator finds credentials by
// Maestro's search attributes, e.g. every credential that needs a new login.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { credentialWorkflowId } from '../../src/workflows/credentialRefresh.js';
import { createDevServerEnv, startHarness, type Harness } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: Harness;
beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

async function ids(query: string): Promise<string[]> {
  const out: string[] = [];
  for await (const w of env.client.workflow.list({ query })) out.push(w.workflowId);
  return out;
}

it('sets the search attributes and a summary, and lists credentials that need a new login', async () => {
  h.fake.seedTokens('sk-ant-ort01-vis-a-000000000', 'sk-ant-oat01-vis-a-000000000');
  h.fake.seedTokens('sk-ant-ort01-vis-b-000000000', 'sk-ant-oat01-vis-b-000000000');
  const [a, b] = await Promise.all(
    ['a', 'b'].map((n) =>
      h.core.store.create({
        provider: 'anthropic',
        authType: 'oauth',
        name: `vis-${n}`,
        secret: { accessToken: `sk-ant-oat01-vis-${n}-000000000`, refreshToken: `sk-ant-ort01-vis-${n}-000000000` },
        expiresAt: new Date(Date.now() + 3600_000),
      }),
    ),
  );
  await h.core.workflows.start(a!);
  await h.core.workflows.start(b!);
  const taskQueue = `TaskQueue = '${h.taskQueue}'`;
  await vi.waitFor(
    async () =>
      expect((await ids(`${taskQueue} AND MaestroProvider = 'anthropic' AND MaestroAuthStatus = 'active'`)).sort()).toEqual(
        [credentialWorkflowId(a!.id), credentialWorkflowId(b!.id)].sort(),
      ),
    { timeout: 15_000, interval: 250 },
  );
  expect(await ids(`${taskQueue} AND MaestroCredentialId = '${a!.id}'`)).toEqual([credentialWorkflowId(a!.id)]);
  expect(await ids(`${taskQueue} AND MaestroExpiresAt > '${new Date().toISOString()}'`)).toHaveLength(2);

  const description = await env.client.workflow.getHandle(credentialWorkflowId(a!.id)).describe();
  expect(await description.staticSummary()).toContain('vis-a');

  // b's refresh token dies: it shows up in the operator's "needs a login" list.
  h.fake.revokeAllRefreshTokens();
  await expect(h.core.workflows.refreshNow(b!.id)).rejects.toThrow(/new login/);
  await vi.waitFor(
    async () => expect(await ids(`${taskQueue} AND MaestroAuthStatus = 'reauth_required'`)).toEqual([credentialWorkflowId(b!.id)]),
    { timeout: 15_000, interval: 250 },
  );
}, 120_000);
