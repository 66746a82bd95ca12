// A token reading that waits for a workflow task (a backlog, a restart of the workflow worker)
// must not move the token's expiry later: the refresh still comes before the token expires.
// On the dev server, in real time: the time-skipping server stops its clock while a task waits,
// so the wait this is about cannot happen there.
import pg from 'pg';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { credentialWorkflowId } from '../../src/workflows/credentialRefresh.js';
import { seedOAuthCredential } from '../support/credentials.js';
import { createDevServerEnv, startHarness, type Harness } from '../support/temporal.js';
import { sleep, until } from '../support/wait.js';

let env: TestWorkflowEnvironment;
let h: Harness | undefined;
beforeAll(async () => {
  env = await createDevServerEnv();
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

it('refreshes a 60-second token before it expires when its reading waited 40 s for a workflow task', { timeout: 120_000 }, async () => {
  // The describe activity measures "expires in 60 s"; its result then waits 40 s with no workflow
  // worker. Anchored when handled, the expiry would move to 100 s and the refresh (halfway) to
  // 70 s, after the token expired; anchored when asked for, the refresh is due at 30 s and runs
  // as soon as the workflow worker is back (40 s).
  h = await startHarness(env, { fake: { accessTokenTtlSec: 60 } });
  const { credential } = await seedOAuthCredential(h, { tag: 'anchor', name: 'anchor', lifetimeMs: 60_000, start: false });
  const expiresAt = Date.parse(credential.expiresAt!);
  const handle = env.client.workflow.getHandle(credentialWorkflowId(credential.id));
  const lock = new pg.Client({ connectionString: h.db.url });
  await lock.connect();
  try {
    // The reading blocks on the table until the workflow worker is gone.
    await lock.query('begin');
    await lock.query('lock table saved_authentications in access exclusive mode');
    await h.core.workflows.start(credential);
    await until(async () => (await handle.fetchHistory()).events?.some((e) => e.activityTaskScheduledEventAttributes) === true, {
      what: 'the reading was asked for',
    });
    h.worker.main.shutdown(); // its pollers stop at once
    await lock.query('commit');
    await until(() => h!.worker.main.getState() === 'STOPPED', { what: 'the workflow worker stopped' });
    await until(async () => (await handle.fetchHistory()).events?.some((e) => e.activityTaskCompletedEventAttributes) === true, {
      what: 'the reading completed',
    });
  } finally {
    await lock.end();
  }
  const handled = (await handle.fetchHistory()).events?.filter((e) => e.workflowTaskCompletedEventAttributes).length;
  expect(handled).toBe(1); // the reading waits, unhandled
  await sleep(Math.max(0, expiresAt - 20_000 - Date.now())); // until 40 s into the token's life
  h.worker.shutdown(); // the refresh worker too: the harness restarts both
  await h.startWorker();
  await until(() => h!.fake.tokenRequests().length > 0, { timeoutMs: 15_000, what: 'the refresh ran' });
  expect(Date.now()).toBeLessThan(expiresAt); // before the token expired
});
