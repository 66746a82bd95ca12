// Usage across real API processes: two `maestro api` children record calls against one database;
// the sums are exact after a graceful restart (SIGTERM writes the batch in memory), and a process
// killed outright loses at most the calls of its last batch interval (2 s), never older ones. A
// durable call whose API process is killed while it waits is still counted, once: the worker that
// made the call records it.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { killAllChildren } from '../support/children.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startDevServer, type DevServer } from '../support/processes.js';
import { sleep, until } from '../support/wait.js';
import { proxiedMessage, startRig, type ApiChild, type Rig } from './rig.js';

let dev: DevServer;
let testDb: TestDatabase;
let rig: Rig;
let a: ApiChild;
let b: ApiChild;

beforeAll(async () => {
  [dev, testDb] = await Promise.all([startDevServer(inject('temporalCliPath')), createTestDatabase({ migrate: false })]);
  rig = await startRig({ dev, dbUrl: testDb.url, fake: { accessTokenTtlSec: 3600 } });
  await rig.startWorker();
  [a, b] = await Promise.all([rig.startApi(), rig.startApi()]);
}, 240_000);
afterAll(async () => {
  await rig?.close();
  await dev?.close();
  await killAllChildren();
  await testDb?.close();
});

async function recorded(): Promise<{ requests: number; inputTokens: number; outputTokens: number }> {
  const answer = await a.call('GET', '/v1/usage?groupBy=key');
  expect(answer.status, answer.text).toBe(200);
  const row = answer.json.usage.find((r: { key: string }) => r.key === 'env:1');
  return row
    ? { requests: row.requests, inputTokens: row.inputTokens, outputTokens: row.outputTokens }
    : { requests: 0, inputTokens: 0, outputTokens: 0 };
}

async function calls(api: ApiChild, n: number): Promise<void> {
  for (let i = 0; i < n; i++) expect((await proxiedMessage(api, 'counted')).status).toBe(200);
}

describe('usage across API processes', () => {
  it('adds up exactly across two processes and a graceful restart; a killed process loses at most its last 2 s', async () => {
    await rig.importOAuth({ name: 'counted', lifetimeMs: 3600_000 });
    await calls(a, 4);
    await calls(b, 3);
    await b.child.kill('SIGTERM'); // a graceful stop writes what it holds
    b = await rig.startApi();
    await calls(b, 2);
    // The fake answers 10 input and 5 output tokens per call.
    await until(async () => (await recorded()).requests === 9, { what: 'every call recorded', timeoutMs: 10_000 });
    expect(await recorded()).toEqual({ requests: 9, inputTokens: 90, outputTokens: 45 });

    // A crash: calls older than two batch intervals are in the table; only the newest may be lost.
    await calls(b, 3);
    await sleep(4_500);
    await calls(b, 2);
    await b.child.kill('SIGKILL');
    await sleep(2_500); // A's own batch interval: nothing of B's is still coming
    const after = await recorded();
    expect(after.requests).toBeGreaterThanOrEqual(12);
    expect(after.requests).toBeLessThanOrEqual(14);
    expect(after.inputTokens).toBe(after.requests * 10);
    expect(after.outputTokens).toBe(after.requests * 5);
  });

  it('a durable call is counted once, by the worker, though the API process waiting for it was killed', async () => {
    b = await rig.startApi();
    const created = await a.call('POST', '/v1/keys', { body: { name: 'durable-orphan', role: 'client', providers: ['anthropic'] } });
    expect(created.status, created.text).toBe(201);
    const { id: keyId, key } = created.json as { id: string; key: string };
    const { id: credentialId } = await rig.importOAuth({ name: 'durable', lifetimeMs: 3600_000 });
    const usageOfKey = async () => (await a.call('GET', `/v1/usage?groupBy=key`)).json.usage.find((r: { key: string }) => r.key === keyId);

    rig.fake.setApiDelayMs(3_000); // the provider takes its time: the call is still out when b dies
    const before = rig.fake.apiRequests().length;
    const waiting = b
      .call('POST', `/v1/credentials/${credentialId}/messages`, {
        body: { body: { model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] } },
        headers: { authorization: `Bearer ${key}` },
      })
      .catch((error: unknown) => error);
    await until(() => rig.fake.apiRequests().length > before, { what: 'the durable call reaching the provider', timeoutMs: 20_000 });
    await b.child.kill('SIGKILL');
    expect(await waiting).toBeInstanceOf(Error); // its client lost the connection; nobody is left to record it there
    rig.fake.setApiDelayMs(0);
    const counted = await until(usageOfKey, { what: "the worker's record of the durable call", timeoutMs: 20_000 });
    expect(counted).toMatchObject({ requests: 1, errors: 0, inputTokens: 10, outputTokens: 5 });
    await sleep(2_500); // a second record (a retry, another process) would show by now
    expect(await usageOfKey()).toMatchObject({ requests: 1, inputTokens: 10, outputTokens: 5 });
    expect(rig.fake.apiRequests().length - before).toBe(1); // sent once
  });
});
