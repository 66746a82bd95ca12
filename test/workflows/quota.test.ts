// Quota reads scheduled by the credential's own workflow (issue 30), on the time-skipping test
// server with a real database and the fake provider's quota endpoint: the benched cadence and its
// release when a read shows room (an early reset), the endpoint's 429s backed off while refreshes
// go on, bench signals from two API processes costing one read, and what one read adds to history.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CredentialWorkflows } from '../../src/temporal/credentialWorkflows.js';
import { credentialWorkflowId, statusQuery } from '../../src/workflows/credentialRefresh.js';
import type { RateLimitState } from '../../src/usage/rateLimits.js';
import { createTimeSkippingEnv, startHarness, testDurableCalls, type Harness } from '../support/temporal.js';
import { seedOAuthCredential } from '../support/credentials.js';
import { until } from '../support/wait.js';

let env: TestWorkflowEnvironment;
let h: Harness | undefined;
beforeAll(async () => {
  env = await createTimeSkippingEnv();
});
// Each test's workflows end with it: one left running with an activity in flight after its worker
// stopped would hold the time-skipping server's clock (retrying in real time) for the next test.
const started: string[] = [];
afterEach(async () => {
  for (const id of started.splice(0))
    await env.client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => {});
  await h?.close();
  h = undefined;
});
afterAll(async () => {
  await env?.teardown();
});

let seq = 0;
async function credential(harness: Harness, lifetimeMs: number) {
  seq++;
  const { credential: created } = await seedOAuthCredential(harness, { tag: `quota-wf-${seq}`, lifetimeMs });
  started.push(credentialWorkflowId(created.id));
  return { created, handle: env.client.workflow.getHandle(credentialWorkflowId(created.id)) };
}

/** Workflow time (the test server's clock runs ahead of the wall clock once it skipped). */
const workflowNow = async () => env.currentTimeMs();

describe('quota reads in the credential workflow', () => {
  it('early reset: a member benched until a reset hours away is re-read every ≤5 min and released by the read that shows room', async () => {
    const reads: RateLimitState[] = [];
    h = await startHarness(env, { quotaIntervalMs: 0, onQuotaRead: async (_id, state) => void reads.push(state) });
    const { created, handle } = await credential(h, 24 * 3600_000);
    h.fake.setQuotaWindow('five_hour', { utilization: 100, resetsAt: new Date(Date.now() + 4 * 3600_000) });
    await env.sleep('10 minutes');
    expect(h.fake.quotaRequests()).toHaveLength(0); // interval 0: nothing read until benched

    await h.core.workflows.noteBenched(created.id, new Date((await workflowNow()) + 4 * 3600_000).toISOString());
    await env.sleep('5 minutes');
    expect(reads.length).toBe(1);
    expect(reads[0]!.windows.five_hour).toMatchObject({ utilization: 1, source: 'endpoint' });
    expect((await handle.query(statusQuery)).quota?.benchedUntil).not.toBeNull();

    await env.sleep('5 minutes');
    expect(reads.length).toBe(2); // still benched: read again within 5 minutes

    // The provider resets the window early: the next read shows room and releases the bench.
    h.fake.setQuotaWindow('five_hour', { utilization: 0, resetsAt: new Date(Date.now() + 5 * 3600_000) });
    await env.sleep('5 minutes');
    expect(reads.length).toBe(3);
    expect(reads[2]!.windows.five_hour!.utilization).toBe(0);
    expect((await handle.query(statusQuery)).quota).toMatchObject({ benchedUntil: null, lastOutcome: 'ok' });

    await env.sleep('30 minutes');
    expect(reads.length).toBe(3); // released: no more benched reads (and none idle at interval 0)
    expect(h.fake.tokenRequests()).toHaveLength(0);
  });

  it('the quota endpoint answering 429 with retry-after: 0 for an hour: reads back off, refreshes go on', async () => {
    const reads: RateLimitState[] = [];
    h = await startHarness(env, {
      fake: { accessTokenTtlSec: 20 * 60 },
      quotaIntervalMs: 0,
      onQuotaRead: async (_id, state) => void reads.push(state),
    });
    const { created, handle } = await credential(h, 20 * 60_000);
    h.fake.answerQuotaAlways({
      status: 429,
      headers: { 'retry-after': '0' },
      body: { type: 'error', error: { type: 'rate_limit_error' } },
    });
    await h.core.workflows.noteBenched(created.id, new Date((await workflowNow()) + 6 * 3600_000).toISOString());
    await env.sleep('60 minutes');
    // Without backoff the benched cadence would read 12+ times in an hour; backing off 1, 2, 4 … minutes
    // (never sooner than the benched cadence) it reads about 6 times.
    const limited = h.fake.quotaRequests().length;
    expect(limited).toBeGreaterThanOrEqual(3);
    expect(limited).toBeLessThanOrEqual(8);
    expect(h.fake.tokenRequests().length).toBeGreaterThanOrEqual(3); // refreshes every 15 minutes, untouched
    expect(h.fake.reusedRefreshTokens).toEqual([]);
    expect((await handle.query(statusQuery)).quota?.lastOutcome).toBe('rate_limited');

    // The endpoint recovers: within the (at most one-hour) backoff a read lands and shows room.
    h.fake.answerQuotaAlways(undefined);
    await env.sleep('65 minutes');
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect((await handle.query(statusQuery)).quota).toMatchObject({ lastOutcome: 'ok', benchedUntil: null });
  });

  it('two API processes bench the same member at once: one signal’s worth of reads', async () => {
    h = await startHarness(env, { quotaIntervalMs: 0 });
    const { created } = await credential(h, 3600_000);
    h.fake.setQuotaWindow('five_hour', { utilization: 100, resetsAt: new Date(Date.now() + 4 * 3600_000) });
    const other = new CredentialWorkflows({
      client: env.client,
      taskQueue: h.taskQueue,
      signer: { sign: testDurableCalls().sign } as never,
    });
    const until = new Date((await workflowNow()) + 3 * 3600_000).toISOString();
    await Promise.all([h.core.workflows.noteBenched(created.id, until), other.noteBenched(created.id, until)]);
    await env.sleep('5 minutes');
    expect(h.fake.quotaRequests()).toHaveLength(1);
    await env.sleep('5 minutes');
    expect(h.fake.quotaRequests()).toHaveLength(2); // the benched cadence, not two of them
    // A signal for a credential with no workflow is logged and ignored, never thrown to the caller.
    await expect(h.core.workflows.noteBenched('00000000-0000-4000-8000-000000000000', until)).resolves.toBeUndefined();
  });

  it('a credential that could not be read is asked again in its next run (a project set since): "unsupported" is not carried', async () => {
    h = await startHarness(env, { provider: 'gemini', quotaIntervalMs: 10 * 60_000, maxHistoryEvents: 40 });
    const accessToken = 'ya29.quota-wf-recheck-0000000000';
    const refreshToken = '1//quota-wf-recheck-0000000000';
    h.fake.seedTokens(refreshToken, accessToken);
    // A Gemini sign-in without its Code Assist project (stored before projects were): nothing to read.
    const created = await h.core.store.create({
      provider: 'gemini',
      authType: 'oauth',
      name: 'gemini-no-project',
      secret: { accessToken, refreshToken },
      expiresAt: new Date(Date.now() + 3600_000),
    });
    started.push(credentialWorkflowId(created.id));
    await h.core.workflows.start(created);
    const handle = env.client.workflow.getHandle(credentialWorkflowId(created.id));
    const firstRun = (await handle.describe()).runId;
    await env.sleep('15 minutes');
    expect((await handle.query(statusQuery)).quota?.lastOutcome).toBe('unsupported');
    expect(h.fake.quotaRequests()).toHaveLength(0);

    // The project is set; the run goes on without reading until its history ends and a new run begins.
    const harness = h;
    await harness.core.store.replaceTokens(created.id, {
      secret: { accessToken, refreshToken },
      expiresAt: new Date(Date.now() + 3600_000),
      providerMetadata: { project: harness.fake.codeAssistProject },
    });
    await until(
      async () => {
        await env.sleep('30 minutes');
        return (await handle.describe()).runId !== firstRun && harness.fake.quotaRequests().length > 0 ? true : undefined;
      },
      { what: 'a new run that reads the quota', timeoutMs: 60_000 },
    );
    expect(h.fake.quotaRequests()[0]!.json).toEqual({ project: h.fake.codeAssistProject });
    expect((await handle.query(statusQuery)).quota?.lastOutcome).toBe('ok');
  });

  it('an idle read is one activity and 11 history events', async () => {
    h = await startHarness(env, { quotaIntervalMs: 10 * 60_000, maxHistoryEvents: 10_000 });
    const { handle } = await credential(h, 24 * 3600_000);
    await env.sleep('25 minutes'); // the first read in the first interval, the next ones 9–11 minutes apart
    expect(h.fake.quotaRequests().length).toBeGreaterThanOrEqual(2);
    const events = (await handle.fetchHistory()).events ?? [];
    const reads = events.flatMap((e, i) => (e.activityTaskScheduledEventAttributes?.activityType?.name === 'readQuota' ? [i] : []));
    expect(reads.length).toBe(h.fake.quotaRequests().length);
    // From one read's scheduling to the next: started, completed, a workflow task, the next timer
    // started, fired, a workflow task, and the read scheduled.
    const E = temporal.api.enums.v1.EventType;
    expect(events.slice(reads[0]! + 1, reads[1]! + 1).map((e) => e.eventType)).toEqual([
      E.EVENT_TYPE_ACTIVITY_TASK_STARTED,
      E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
      E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
      E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
      E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
      E.EVENT_TYPE_TIMER_STARTED,
      E.EVENT_TYPE_TIMER_FIRED,
      E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
      E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
      E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
      E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    ]);
    expect(events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toEqual([]);
    expect(h.fake.tokenRequests()).toHaveLength(0);
  });
});
