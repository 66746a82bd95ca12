import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialWorkflowId, statusQuery } from '../../src/workflows/credentialRefresh.js';
import { createTimeSkippingEnv, startHarness, type Harness } from '../support/temporal.js';
import { seedOAuthCredential } from '../support/credentials.js';

let env: TestWorkflowEnvironment;
let h: Harness;
beforeAll(async () => {
  env = await createTimeSkippingEnv();
  h = await startHarness(env, { fake: { accessTokenTtlSec: 8 * 3600 } });
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

describe('refresh schedule (time-skipping)', () => {
  it('refreshes an 8-hour token at 6.4 hours, then again 6.4 hours after that', async () => {
    const { credential } = await seedOAuthCredential(h, { tag: 'seed', lifetimeMs: 8 * 3600_000 });
    const handle = env.client.workflow.getHandle(credentialWorkflowId(credential.id));
    await env.sleep('6 hours');
    expect(h.fake.tokenRequests()).toHaveLength(0);
    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('sleeping');
    await env.sleep('30 minutes');
    expect(h.fake.tokenRequests()).toHaveLength(1);
    const after = await h.core.store.get(credential.id);
    expect(after).toMatchObject({ version: 2, refreshCount: 1, status: 'active' });
    await env.sleep('6 hours');
    expect(h.fake.tokenRequests()).toHaveLength(1);
    await env.sleep('30 minutes');
    expect(h.fake.tokenRequests()).toHaveLength(2);
    expect(h.fake.reusedRefreshTokens).toEqual([]);
  });
});
