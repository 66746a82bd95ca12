// The refresh workflow's messages under the interleavings that used to strand or mislead callers,
// on the real dev server (real time, full update support) with a real database and a fake
// provider that rotates strictly. One regression test per case of the refresh-messages issue.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, ReauthRequiredError, ServiceUnavailableError } from '../../src/errors.js';
import { credentialWorkflowId, statusQuery, stopSignal } from '../../src/workflows/credentialRefresh.js';
import { createDevServerEnv, startHarness, type Harness } from '../support/temporal.js';
import { seedOAuthCredential } from '../support/credentials.js';

let env: TestWorkflowEnvironment;
let h: Harness | undefined;
beforeAll(async () => {
  env = await createDevServerEnv();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
});
afterAll(async () => {
  await env?.teardown();
});

let seq = 0;
async function oauth(harness: Harness, opts: { lifetimeMs?: number | null; refreshToken?: boolean } = {}) {
  seq++;
  const { credential, refreshToken } = await seedOAuthCredential(harness, { tag: `msg-${seq}`, ...opts });
  return { credential, refreshToken, handle: env.client.workflow.getHandle(credentialWorkflowId(credential.id)) };
}

/** Settles a promise into { value } or { error }, with how long it took. */
async function timed<T>(p: Promise<T>) {
  const started = Date.now();
  try {
    return { value: await p, ms: Date.now() - started };
  } catch (error) {
    return { error: error as Error, ms: Date.now() - started };
  }
}

describe('refresh-now after a PATCH', () => {
  it('spends the PATCHed refresh token even when the signal and the update land in one workflow task', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, maxCachedWorkflows: 0 });
    const { credential, handle } = await oauth(h);
    // The loop has read the credential and sleeps with that view.
    for (let i = 0; i < 100 && (await handle.query(statusQuery)).phase !== 'sleeping'; i++) await new Promise((r) => setTimeout(r, 100));
    await h.stopWorker();
    // With no worker, the PATCH's signal and the refresh-now update wait on the server together.
    seq++;
    const patched = { accessToken: `sk-ant-oat01-patched-${seq}-000000`, refreshToken: `sk-ant-ort01-patched-${seq}-000000` };
    h.fake.seedTokens(patched.refreshToken, patched.accessToken);
    const replaced = await h.core.store.replaceTokens(credential.id, { secret: patched, expiresAt: new Date(Date.now() + 3600_000) });
    await h.core.workflows.credentialUpdated(replaced);
    const refreshing = h.core.workflows.refreshNow(credential.id);
    await new Promise((r) => setTimeout(r, 500));
    await h.startWorker();
    const view = await refreshing;

    expect(view.version).toBe(3); // created 1, PATCHed 2, refreshed 3
    expect((await h.core.store.get(credential.id)).refreshCount).toBe(1);
    expect(h.fake.tokenRequests().map((r) => (r.json as { refresh_token?: string } | undefined)?.refresh_token)).toEqual([
      patched.refreshToken,
    ]);
    // The race really was exercised: signal and update were delivered in the same task.
    const events = (await handle.fetchHistory()).events ?? [];
    const signalAt = events.findIndex((e) => e.workflowExecutionSignaledEventAttributes);
    const acceptedAt = events.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    expect(signalAt).toBeGreaterThan(0);
    // (an update's Accepted event follows the completion of the task that ran it)
    expect(events.slice(signalAt, acceptedAt).filter((e) => e.workflowTaskCompletedEventAttributes)).toHaveLength(1);
  });
});

describe('bounded answers', () => {
  it('answers 503 "still retrying" with the last error within the bound while the token endpoint fails, then refreshes in the background', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, refreshWaitMs: 2_000 });
    const { credential } = await oauth(h);
    h.fake.failNextToken([{ status: 503 }, { status: 503 }]);
    const answers = await Promise.all(Array.from({ length: 5 }, () => timed(h!.core.workflows.refreshNow(credential.id))));
    for (const a of answers) {
      expect(a.error).toBeInstanceOf(ServiceUnavailableError);
      expect(a.error!.message).toMatch(/still being refreshed/);
      expect(a.ms).toBeLessThan(2_000 + 5_000);
      expect((a.error as ServiceUnavailableError).retryAfterSeconds).toBeGreaterThan(0);
    }
    expect(answers.some((a) => /503/.test(a.error!.message))).toBe(true); // the last error, sanitised
    // The workflow kept retrying (after 2 s and 4 s): the third attempt succeeds.
    const deadline = Date.now() + 30_000;
    while ((await h.core.store.get(credential.id)).refreshCount === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    expect((await h.core.store.get(credential.id)).refreshCount).toBe(1);
    expect(h.fake.tokenRequests()).toHaveLength(3);
    expect(h.fake.reusedRefreshTokens).toEqual([]);
  });

  it('answers 503 within the bound when no worker is running at all', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, refreshWaitMs: 1_000 });
    const { credential } = await oauth(h);
    await h.stopWorker();
    const r = await timed(h.core.workflows.refreshNow(credential.id));
    expect(r.error).toBeInstanceOf(ServiceUnavailableError);
    expect(r.error!.message).toMatch(/is a Maestro worker running/);
    expect(r.ms).toBeLessThan(1_000 + 5_000 + 2_000);
  });

  it('answers every one of 41 staggered callers around a refresh that finds the grant dead (no lost wake-up)', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, refreshWaitMs: 5_000 });
    const { credential } = await oauth(h);
    h.fake.revokeAllRefreshTokens();
    h.fake.setTokenDelayMs(150);
    const calls = Array.from({ length: 41 }, (_, i) =>
      new Promise((r) => setTimeout(r, i * 15)).then(() => timed(h!.core.workflows.refreshNow(credential.id))),
    );
    const results = await Promise.all(calls);
    for (const r of results) {
      expect(r.error).toBeInstanceOf(ReauthRequiredError);
      expect(r.ms).toBeLessThan(5_000 + 5_000);
    }
    expect(h.fake.tokenRequests()).toHaveLength(1);
    expect((await h.core.store.get(credential.id)).status).toBe('reauth_required');
  });
});

describe('continue-as-new and stop', () => {
  it('keeps answering refresh-now across continue-as-new for a token with no expiry, and stop ends the run', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, maxHistoryEvents: 30, refreshWaitMs: 10_000 });
    const { credential, handle } = await oauth(h, { lifetimeMs: null });
    const firstRun = (await handle.describe()).runId;
    for (let round = 0; round < 6; round++) {
      const batch = await Promise.all(
        Array.from({ length: round % 2 === 0 ? 1 : 4 }, () => timed(h!.core.workflows.refreshNow(credential.id))),
      );
      for (const r of batch) expect(r.error, `round ${round}: ${r.error?.message}`).toBeUndefined();
    }
    expect((await handle.describe()).runId).not.toBe(firstRun);
    expect(h.fake.reusedRefreshTokens).toEqual([]);
    await handle.signal(stopSignal);
    const final = await handle.result();
    expect(final.phase).toBe('stopped');
    const after = await handle.describe();
    expect(after.status.name).toBe('COMPLETED');
  });

  it('refuses refresh-now at once for a credential without a refresh token, writing no history', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, maxHistoryEvents: 30 });
    const { credential, handle } = await oauth(h, { refreshToken: false });
    // Settled: the loop has read the credential and sleeps, and its history stopped growing (a
    // fixed pause was not enough on a loaded machine: the start-up's events landed after it).
    for (let i = 0; i < 100 && (await handle.query(statusQuery)).phase !== 'sleeping'; i++) await new Promise((r) => setTimeout(r, 100));
    let before = (await handle.describe()).historyLength;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const now = (await handle.describe()).historyLength;
      if (now === before) break;
      before = now;
    }
    for (let i = 0; i < 20; i++) {
      const r = await timed(h.core.workflows.refreshNow(credential.id));
      expect(r.error).toBeInstanceOf(ConflictError);
      expect(r.error!.message).toMatch(/no refresh token/);
    }
    expect((await handle.describe()).historyLength).toBe(before);
    await handle.signal(stopSignal);
    expect((await handle.result()).phase).toBe('stopped');
  });
});

describe('a run started by the previous code', () => {
  it('moves onto the current code with continue-as-new at its next wake, and is served by it', async () => {
    const { bundleWorkflowCode } = await import('@temporalio/worker');
    const oldBundle = await bundleWorkflowCode({
      workflowsPath: new URL('./fixtures/refreshWorkflowC999f06.ts', import.meta.url).pathname,
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, maxCachedWorkflows: 0, bundle: oldBundle });
    const { credential, handle } = await oauth(h);
    for (let i = 0; i < 100 && (await handle.query(statusQuery)).phase !== 'sleeping'; i++) await new Promise((r) => setTimeout(r, 100));
    const oldRun = (await handle.describe()).runId;
    // Deploy: the old worker goes, a worker with today's code comes.
    await h.startWorker();
    // A PATCH wakes the old run; on today's code it replays, then continues as new.
    const replaced = await h.core.store.replaceTokens(credential.id, {
      secret: { accessToken: `sk-ant-oat01-migrated-${seq}-0000` },
      expiresAt: new Date(Date.now() + 3600_000),
      keep: ['refreshToken'],
    });
    await h.core.workflows.credentialUpdated(replaced);
    let current = oldRun;
    for (let i = 0; i < 100 && current === oldRun; i++) {
      await new Promise((r) => setTimeout(r, 100));
      current = (await handle.describe()).runId;
    }
    expect(current).not.toBe(oldRun);
    const oldEvents = (await env.client.workflow.getHandle(handle.workflowId, oldRun).fetchHistory()).events ?? [];
    expect(oldEvents.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    const view = await h.core.workflows.refreshNow(credential.id);
    expect(view.version).toBe(3);
    const newEvents = (await handle.fetchHistory()).events ?? [];
    const markers = newEvents.flatMap((e) =>
      (e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? []).map((p) => Buffer.from(p.data ?? []).toString('utf8')),
    );
    expect(markers.join(' ')).toContain('maestro-refresh-v2');
    expect(h.fake.tokenRequests()).toHaveLength(1);
    expect(h.fake.reusedRefreshTokens).toEqual([]);
  });
});

describe('reconcile', () => {
  it('a Schedule starts the refresh workflow of a credential whose start failed (an orphan)', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
    seq++;
    h.fake.seedTokens(`sk-ant-ort01-orphan-${seq}-000000`, `sk-ant-oat01-orphan-${seq}-000000`);
    // Stored, but its workflow never started (Temporal was down at import time, say).
    const orphan = await h.core.store.create({
      provider: 'anthropic',
      authType: 'oauth',
      name: `orphan-${seq}`,
      secret: { accessToken: `sk-ant-oat01-orphan-${seq}-000000`, refreshToken: `sk-ant-ort01-orphan-${seq}-000000` },
      expiresAt: new Date(Date.now() + 3600_000),
    });
    const { credential: adopted } = await oauth(h);
    await h.core.workflows.ensureReconcileSchedule();
    await h.core.workflows.ensureReconcileSchedule(); // idempotent: a second worker start keeps it
    const schedule = env.client.schedule.getHandle(`maestro-reconcile:${h.taskQueue}`);
    try {
      const described = await schedule.describe();
      expect(described.spec.intervals?.[0]?.every).toBe(2 * 60_000);
      expect(await h.core.workflows.status(orphan.id)).toBeNull();
      await schedule.trigger(); // what the interval does every two minutes
      let status = null;
      for (let i = 0; i < 100 && !status; i++) {
        await new Promise((r) => setTimeout(r, 200));
        status = await h.core.workflows.status(orphan.id).catch(() => null);
      }
      expect(status?.phase).toMatch(/starting|sleeping/);
      // The Schedule names each run after its own id plus the time it started.
      const action = (await schedule.describe()).info.recentActions.at(-1)?.action;
      expect(action?.workflow.workflowId).toMatch(new RegExp(`^maestro-reconcile:${h.taskQueue}`));
      const run = await env.client.workflow.getHandle(action!.workflow.workflowId).result();
      // Visibility may lag behind the start it just made for `adopted`; it never starts a second one.
      expect(run).toMatchObject({ checked: 2 });
      expect((await env.client.workflow.getHandle(credentialWorkflowId(adopted.id)).describe()).status.name).toBe('RUNNING');
    } finally {
      await schedule.delete().catch(() => {});
    }
  });
});

describe('no self-starvation', () => {
  it('durable messages that wait for a refresh, holding every activity slot, do not block that refresh', async () => {
    // Two activity slots on the main queue, three durable messages whose token the provider refuses:
    // each waits (in its slot) for the refresh, which runs on the refresh queue's own slots.
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, maxConcurrentActivityTaskExecutions: 2, refreshWaitMs: 20_000 });
    const { credential } = await oauth(h);
    h.fake.revokeAccessToken(`sk-ant-oat01-msg-${seq}-0000000000`);
    h.fake.setTokenDelayMs(500);
    const request = {
      path: '/v1/messages',
      body: { model: 'claude-maestro-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
      headers: { 'anthropic-version': '2023-06-01' },
    };
    const answers = await Promise.all(Array.from({ length: 3 }, () => timed(h!.core.workflows.sendMessage(credential.id, request))));
    for (const a of answers) {
      expect(a.error, a.error?.message).toBeUndefined();
      expect(a.value?.status).toBe(200);
      expect(a.ms).toBeLessThan(10_000); // far inside the 20-s refresh bound a starved refresh would hit
    }
    expect(h.fake.tokenRequests()).toHaveLength(1);
  });
});
