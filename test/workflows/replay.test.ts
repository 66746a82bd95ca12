// Replay safety: running workflows replay against new code. Every history under histories/ was
// recorded from an earlier version of the workflow code (the file name says which); each must
// replay against today's bundle without a nondeterminism error. Command changes go behind patched().
//
// Record a new set (before changing workflow code, so the set covers what is running today):
//   MAESTRO_RECORD_HISTORIES=<label> npx vitest run test/workflows/replay.test.ts
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialWorkflowId, stopSignal } from '../../src/workflows/credentialRefresh.js';
import { sendMessageWorkflow } from '../../src/workflows/sendMessage.js';
import {
  createTimeSkippingEnv,
  startHarness,
  testDataConverter,
  testDurableCalls,
  workflowBundle,
  type Harness,
} from '../support/temporal.js';
import { seedOAuthCredential } from '../support/credentials.js';

const HISTORIES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'histories');
const recordLabel = process.env.MAESTRO_RECORD_HISTORIES;

describe.runIf(!recordLabel)('replay of recorded workflow histories', () => {
  const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.pb'));

  it('has histories recorded from earlier workflow code', () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
  });

  it('replays every recorded history against the current workflow code', async () => {
    const bundle = await workflowBundle();
    const histories = files.map((file) => ({
      workflowId: file,
      history: temporal.api.history.v1.History.decode(readFileSync(path.join(HISTORIES, file))),
    }));
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, dataConverter: testDataConverter() }, histories)) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(files.length);
  });
});

describe.runIf(recordLabel)('record workflow histories', () => {
  let env: TestWorkflowEnvironment;
  let h: Harness | undefined;
  beforeAll(async () => {
    mkdirSync(HISTORIES, { recursive: true });
    env = await createTimeSkippingEnv();
  });
  afterAll(async () => {
    await h?.close();
    await env?.teardown();
  });

  let seq = 0;
  async function credential(harness: Harness, lifetimeMs: number, opts: { refreshToken?: boolean } = {}) {
    seq++;
    const { credential: created } = await seedOAuthCredential(harness, { tag: `replay-${seq}`, lifetimeMs, ...opts });
    return { created, handle: env.client.workflow.getHandle(credentialWorkflowId(created.id)) };
  }

  async function save(name: string, workflowId: string, runId?: string, from: TestWorkflowEnvironment = env) {
    const history = await from.client.workflow.getHandle(workflowId, runId).fetchHistory();
    // Binary protobuf: the same bytes the server sent (the JSON helpers do not load under vitest).
    writeFileSync(path.join(HISTORIES, `${recordLabel}-${name}.pb`), temporal.api.history.v1.History.encode(history).finish());
  }

  it('records refresh cycles, refresh-now, a PATCH, stop', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 120 } });
    const { created, handle } = await credential(h, 120_000);
    await env.sleep('5 minutes');
    await h.core.workflows.refreshNow(created.id);
    const current = await h.core.store.get(created.id);
    h.fake.seedTokens('rt-replay-patched-000000', 'at-replay-patched-000000');
    const replaced = await h.core.store.updateTokens(created.id, current.version, {
      secret: { accessToken: 'at-replay-patched-000000', refreshToken: 'rt-replay-patched-000000' },
      expiresAt: new Date(Date.now() + 120_000),
      reason: 'replaced',
    });
    await h.core.workflows.credentialUpdated(replaced);
    await env.sleep('2 seconds');
    await h.core.workflows.refreshNow(created.id);
    await env.sleep('3 minutes');
    await handle.signal(stopSignal);
    await handle.result();
    await save('cycles-patch-stop', handle.workflowId);
    await h.close();
    h = undefined;
  });

  it('records token failures with retries, and a park on invalid_grant and the resume', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
    h.fake.failNextToken([{ status: 503 }, { status: 429, headers: { 'retry-after': '5' } }]);
    const failing = await credential(h, 60_000);
    await env.sleep('2 minutes');
    await save('token-retries', failing.handle.workflowId);

    const parked = await credential(h, 3600_000);
    h.fake.revokeAllRefreshTokens();
    await h.core.workflows.refreshNow(parked.created.id).catch(() => {});
    await env.sleep('1 minute');
    const stored = await h.core.store.get(parked.created.id);
    h.fake.seedTokens('rt-replay-relogin-000000', 'at-replay-relogin-000000');
    const replaced = await h.core.store.updateTokens(parked.created.id, stored.version, {
      secret: { accessToken: 'at-replay-relogin-000000', refreshToken: 'rt-replay-relogin-000000' },
      expiresAt: new Date(Date.now() + 3600_000),
      reason: 'replaced',
    });
    await h.core.workflows.credentialUpdated(replaced);
    await env.sleep('2 seconds');
    await h.core.workflows.refreshNow(parked.created.id);
    await env.sleep('2 seconds');
    await save('reauth-park-resume', parked.handle.workflowId);
    await h.close();
    h = undefined;
  });

  it('records concurrent refresh-now calls, a credential with nothing to refresh, a deleted credential', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
    h.fake.setTokenDelayMs(300);
    const busy = await credential(h, 3600_000);
    await Promise.all(Array.from({ length: 5 }, () => h!.core.workflows.refreshNow(busy.created.id)));
    await env.sleep('1 second');
    await save('concurrent-refresh-now', busy.handle.workflowId);

    const plain = await credential(h, 3600_000, { refreshToken: false });
    await h.core.workflows.refreshNow(plain.created.id).catch(() => {});
    await env.sleep('1 second');
    await save('not-refreshable', plain.handle.workflowId);

    const gone = await credential(h, 120_000);
    await h.core.store.delete(gone.created.id);
    await env.sleep('2 minutes');
    await gone.handle.result().catch(() => {});
    await save('deleted', gone.handle.workflowId);
    await h.close();
    h = undefined;
  });

  it('records continue-as-new', async () => {
    // Its own server: the test server's clock can stay locked by update requests of earlier tests.
    const ownEnv = await createTimeSkippingEnv();
    try {
      h = await startHarness(ownEnv, { fake: { accessTokenTtlSec: 120 }, maxHistoryEvents: 40 });
      const { handle: shared } = await credential(h, 120_000);
      const handle = ownEnv.client.workflow.getHandle(shared.workflowId);
      const firstRunId = (await handle.describe()).runId;
      await ownEnv.sleep('20 minutes');
      await save('continue-as-new-first-run', handle.workflowId, firstRunId, ownEnv);
      await save('continue-as-new-latest-run', handle.workflowId, undefined, ownEnv);
      await h.close();
      h = undefined;
    } finally {
      await ownEnv.teardown();
    }
  });

  it('records quota reads: idle reads, a bench and its release, a 429, a read-now', async () => {
    // Its own server, as for continue-as-new: earlier tests' updates can keep the shared clock locked.
    const ownEnv = await createTimeSkippingEnv();
    try {
      h = await startHarness(ownEnv, { fake: { accessTokenTtlSec: 3600 }, quotaIntervalMs: 10 * 60_000, maxHistoryEvents: 10_000 });
      const { created } = await credential(h, 3600_000);
      const handle = ownEnv.client.workflow.getHandle(credentialWorkflowId(created.id));
      h.fake.setQuotaWindow('five_hour', { utilization: 100, resetsAt: new Date(Date.now() + 4 * 3600_000) });
      await ownEnv.sleep('12 minutes');
      await h.core.workflows.noteBenched(created.id, new Date((await ownEnv.currentTimeMs()) + 4 * 3600_000).toISOString());
      await ownEnv.sleep('6 minutes');
      h.fake.failNextQuota([{ status: 429, headers: { 'retry-after': '30' } }]);
      await ownEnv.sleep('6 minutes');
      h.fake.setQuotaWindow('five_hour', { utilization: 0, resetsAt: new Date(Date.now() + 5 * 3600_000) });
      await ownEnv.sleep('10 minutes');
      await h.core.workflows.readQuota(created.id);
      await ownEnv.sleep('1 second');
      await handle.signal(stopSignal);
      await handle.result();
      await save('quota-reads', handle.workflowId, undefined, ownEnv);
      await h.close();
      h = undefined;
    } finally {
      await ownEnv.teardown();
    }
  });

  it('records a durable message call', async () => {
    h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
    const key = await h.core.store.create({ provider: 'anthropic', authType: 'api_key', name: 'k', secret: { apiKey: h.fake.apiKey } });
    h.fake.failNextApi([{ status: 529, body: { type: 'error', error: { type: 'overloaded_error' } } }]);
    const workflowId = `message:${key.id}:replay`;
    const request = {
      path: '/v1/messages',
      body: { model: 'claude-maestro-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
      headers: { 'anthropic-version': '2023-06-01' },
    };
    // Signed as the API signs it (the worker refuses an unsigned durable call).
    const signature = testDurableCalls().sign(workflowId, key.id, request);
    await env.client.workflow.execute(sendMessageWorkflow, {
      workflowId,
      taskQueue: h.taskQueue,
      args: [{ credentialId: key.id, request, signature }],
    });
    await save('send-message', workflowId);
    await h.close();
    h = undefined;
  });
});
