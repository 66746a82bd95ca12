// A thousand refreshes on the time-skipping server: continue-as-new keeps each run's history
// short while the carried state (refresh count, last result) stays intact.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { credentialWorkflowId, statusQuery } from '../../src/workflows/credentialRefresh.js';
import { createTimeSkippingEnv, startHarness, type Harness } from '../support/temporal.js';
import { seedOAuthCredential } from '../support/credentials.js';

let env: TestWorkflowEnvironment;
let h: Harness;
beforeAll(async () => {
  env = await createTimeSkippingEnv();
  h = await startHarness(env, { fake: { accessTokenTtlSec: 120 }, maxHistoryEvents: 120 });
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

it('performs 1,000 refreshes across continue-as-new with state intact and bounded history', async () => {
  const { credential } = await seedOAuthCredential(h, { tag: 'can-seed', lifetimeMs: 120_000 });
  const handle = env.client.workflow.getHandle(credentialWorkflowId(credential.id));
  const firstRunId = (await handle.describe()).runId;
  // A 2-minute token refreshes every minute: 1,000 refreshes take 1,000 simulated minutes.
  for (let i = 0; i < 20 && h.fake.tokenRequests().length < 1000; i++) await env.sleep('1 hour');
  while (h.fake.tokenRequests().length < 1000) await env.sleep('1 minute');

  const status = await handle.query(statusQuery);
  expect(status.refreshes).toBeGreaterThanOrEqual(1000);
  expect(status.lastResult).toMatchObject({ outcome: 'refreshed', attempts: 1 });
  const stored = await h.core.store.get(credential.id);
  expect(stored.refreshCount).toBe(h.fake.tokenRequests().length);
  expect(stored.refreshCount).toBe(status.refreshes);
  expect(h.fake.reusedRefreshTokens).toEqual([]);
  const { secret } = await h.core.store.getWithSecret(credential.id);
  expect(secret.refreshToken).toBe(h.fake.issued.refreshTokens.at(-1));

  // Many runs, each short: 1,000 refreshes cannot fit in the latest run's bounded history,
  // which was itself continued from an earlier run.
  const description = await handle.describe();
  expect(description.runId).not.toBe(firstRunId);
  expect(description.historyLength).toBeLessThanOrEqual(150);
  const history = await handle.fetchHistory();
  expect(history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId).toBeTruthy();
}, 300_000);
