// A real client against the real dev server leaves async_hooks off (src/temporal/callContext.ts):
// after connecting, after calls that name a namespace (the client sets its namespace header with
// withMetadata), and after a scope whose deadline still reached the RPC inside it. A bounded update
// for a caller already gone answers at once. This file runs in a process of its own, so the probe
// (a promise reaction's async id: 0 with the hooks off) sees this file's clients only.
import { executionAsyncId } from 'node:async_hooks';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { CallerGoneError } from '../../src/errors.js';
import { callContextOf, quietCallContext, withCallContext } from '../../src/temporal/callContext.js';
import { connectClient } from '../../src/temporal/connection.js';
import { CredentialWorkflows } from '../../src/temporal/credentialWorkflows.js';
import { credentialWorkflowId } from '../../src/workflows/refreshMessages.js';
import { createDevServerEnv, TEST_API_KEY, TEST_ENCRYPTION_KEYS, testDataConverter, testDurableCalls } from '../support/temporal.js';

const hooksOn = async () => (await Promise.resolve().then(() => executionAsyncId())) !== 0;

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await createDevServerEnv();
  quietCallContext(env.client.connection); // the harness's own client connected too
});
afterAll(async () => {
  await env?.teardown();
});

async function connect() {
  const { temporal } = loadConfig({ MAESTRO_ENV: 'test', MAESTRO_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS, MAESTRO_API_KEYS: TEST_API_KEY });
  return connectClient(env.address, env.namespace ?? 'default', temporal.connection, testDataConverter());
}

describe('the Temporal client in an API process', () => {
  it('leaves async_hooks off after connecting, after namespaced calls, and after a scope whose deadline reached its RPC', async () => {
    const client = await connect();
    try {
      expect(await hooksOn()).toBe(false);
      await client.workflowService.describeNamespace({ namespace: client.options.namespace });
      await expect(client.workflow.getHandle('credential:nobody').describe()).rejects.toThrow();
      expect(await hooksOn()).toBe(false);

      // A long poll on a queue nobody serves waits about a minute, unless the scope's deadline reaches
      // it: then the server answers (empty) or the call is cut at the deadline, seconds in.
      const started = Date.now();
      await withCallContext(callContextOf(client.connection), () =>
        client.withDeadline(Date.now() + 3_000, () =>
          client.workflowService.pollWorkflowTaskQueue({ namespace: client.options.namespace, taskQueue: { name: 'nobody-polls-here' } }),
        ),
      ).catch((error: Error) => expect(error.message).toMatch(/deadline/i));
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThan(1_000); // it was a long poll (the server answers a second before the deadline)
      expect(elapsed).toBeLessThan(15_000); // ended by the deadline, not the server's own minute
      expect(await hooksOn()).toBe(false);
    } finally {
      await client.connection.close();
    }
  });

  it('a bounded update for a caller already gone answers at once, though no worker would ever answer it', async () => {
    const client = await connect();
    try {
      const credentialId = '00000000-0000-4000-8000-00000000c0de';
      // A refresh workflow on a queue no worker polls: an update to it would wait for the server's own timeout.
      await client.workflow.start('credentialRefreshWorkflow', {
        workflowId: credentialWorkflowId(credentialId),
        taskQueue: 'no-worker-here',
        args: [{ credentialId }],
      });
      const workflows = new CredentialWorkflows({
        client,
        taskQueue: 'no-worker-here',
        refreshWaitMs: 60_000,
        signer: { sign: testDurableCalls().sign } as never,
      });
      const started = Date.now();
      await expect(workflows.readQuota(credentialId, { signal: AbortSignal.abort() })).rejects.toThrow(CallerGoneError);
      await expect(workflows.refreshNow(credentialId, undefined, { signal: AbortSignal.abort() })).rejects.toThrow(CallerGoneError);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await hooksOn()).toBe(false);
      await client.workflow.getHandle(credentialWorkflowId(credentialId)).terminate('test over');
    } finally {
      await client.connection.close();
    }
  });
});
