// Temporal as a trusted boundary: what Maestro writes into histories is ciphertext (prompts,
// completions, tokens), read back only through the codec (/codec for an admin key), and a
// durable call started by hand through Temporal, without the API's signature, sends nothing.
// Histories are read raw here, with a client that has no codec: what anyone with Temporal access sees.
import { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { credentialRefreshWorkflow, credentialWorkflowId, statusQuery } from '../../src/workflows/credentialRefresh.js';
import { sendMessageWorkflow } from '../../src/workflows/sendMessage.js';
import { ENCRYPTED_ENCODING } from '../../src/temporal/payloadCodec.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { seedOAuthCredential } from '../support/credentials.js';
import { createDevServerEnv, startHarness, testDataConverter, testDurableCalls } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
let raw: Client;
beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env, { fake: { accessTokenTtlSec: 3600 }, config: { codecCorsOrigins: ['https://temporal-ui.example'] } });
  raw = new Client({ connection: env.connection, namespace: env.namespace ?? 'default' });
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

const PROMPT = 'the launch codes are 0000-secret-prompt';
type RawPayload = { metadata?: Record<string, Uint8Array> | null; data?: Uint8Array | null };

/** Every payload in a history, with where it sits. */
function payloadsOf(history: temporal.api.history.v1.IHistory): Array<{ at: string; payload: RawPayload }> {
  const found: Array<{ at: string; payload: RawPayload }> = [];
  const walk = (value: unknown, at: string) => {
    if (!value || typeof value !== 'object' || value instanceof Uint8Array) return;
    if ('data' in value && 'metadata' in value) found.push({ at, payload: value as RawPayload });
    for (const [key, child] of Object.entries(value)) walk(child, `${at}.${key}`);
  };
  walk(history, 'history');
  return found;
}

const encodingOf = (p: RawPayload) => Buffer.from(p.metadata?.encoding ?? new Uint8Array()).toString('utf8');

describe('payloads in Temporal', () => {
  it('a refresh and a durable call leave no token, prompt or completion in any history; every payload but search attributes, summaries and patch markers is sealed', async () => {
    const { credential, accessToken, refreshToken } = await seedOAuthCredential(h, { tag: 'payloads-1' });
    expect((await h.call('POST', `/v1/credentials/${credential.id}/refresh`)).status).toBe(200);
    const answer = await h.call('POST', `/v1/credentials/${credential.id}/messages`, {
      body: { body: { model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: PROMPT }] } },
    });
    expect(answer.status).toBe(200);
    expect(JSON.stringify(answer.json)).toContain('Hello from the fake anthropic');

    const messageRuns = [];
    for await (const w of raw.workflow.list({ query: `WorkflowType = 'sendMessageWorkflow'` })) messageRuns.push(w.workflowId);
    expect(messageRuns.length).toBeGreaterThan(0);
    const secrets = [
      accessToken,
      refreshToken,
      ...h.fake.issued.accessTokens,
      ...h.fake.issued.refreshTokens,
      PROMPT,
      'Hello from the fake anthropic',
    ];
    for (const workflowId of [credentialWorkflowId(credential.id), ...messageRuns]) {
      const history = await raw.workflow.getHandle(workflowId).fetchHistory();
      const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
      for (const secret of secrets) expect(bytes.includes(secret), `${workflowId} history holds a secret`).toBe(false);
      const payloads = payloadsOf(history);
      expect(payloads.length).toBeGreaterThan(3);
      for (const { at, payload } of payloads) {
        // Plain by design and secret-free (the byte scan above covers them): search attributes,
        // summaries, and the SDK's own patch markers (a patch id).
        if (/searchAttributes|userMetadata|patch-data/.test(at)) continue;
        expect(encodingOf(payload), at).toBe(ENCRYPTED_ENCODING);
      }
    }
  });

  it('/codec decodes them for an admin key, refuses without one, and answers the Web UI origin CORS preflight', async () => {
    const { credential } = await seedOAuthCredential(h, { tag: 'payloads-2' });
    const answer = await h.call('POST', `/v1/credentials/${credential.id}/messages`, {
      body: { body: { model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: PROMPT }] } },
    });
    expect(answer.status).toBe(200);
    let workflowId = '';
    for await (const w of raw.workflow.list({ query: `WorkflowType = 'sendMessageWorkflow'` })) workflowId = w.workflowId;
    const history = await raw.workflow.getHandle(workflowId).fetchHistory();
    const sealed = payloadsOf(history).filter(
      ({ at, payload }) => !/searchAttributes|userMetadata/.test(at) && encodingOf(payload) === ENCRYPTED_ENCODING,
    );
    const wire = sealed.map(({ payload }) => ({
      metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
      data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
    }));

    const decoded = await h.call('POST', '/codec/decode', { body: { payloads: wire } });
    expect(decoded.status).toBe(200);
    const plain = (decoded.json.payloads as Array<{ data: string }>).map((p) => Buffer.from(p.data, 'base64').toString('utf8')).join('\n');
    expect(plain).toContain(PROMPT);
    expect(plain).toContain('Hello from the fake anthropic');

    expect((await h.call('POST', '/codec/decode', { body: { payloads: wire }, headers: { authorization: '' } })).status).toBe(401);
    const reencoded = await h.call('POST', '/codec/encode', { body: { payloads: decoded.json.payloads } });
    expect(reencoded.status).toBe(200);
    expect(Buffer.from(reencoded.json.payloads[0].metadata.encoding, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
    expect((await h.call('POST', '/codec/decode', { body: { payloads: [{ metadata: wire[0]!.metadata, data: 'AAAA' }] } })).status).toBe(
      400,
    );

    const preflight = await fetch(`${h.url}/codec/decode`, { method: 'OPTIONS', headers: { origin: 'https://temporal-ui.example' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://temporal-ui.example');
    const stranger = await fetch(`${h.url}/codec/decode`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('a durable call started by hand through Temporal sends nothing: unsigned, forged, signed for another workflow, expired, or a second run of a copied input', async () => {
    const key = await h.core.store.create({
      provider: 'anthropic',
      authType: 'api_key',
      name: 'by-hand',
      secret: { apiKey: h.fake.apiKey },
    });
    const request = { path: '/v1/messages', method: 'POST' as const, body: { model: 'm', max_tokens: 5, messages: [] } };
    const signer = testDurableCalls();
    const run = (workflowId: string, signature?: string) =>
      env.client.workflow.execute(sendMessageWorkflow, {
        workflowId,
        taskQueue: h.taskQueue,
        args: [{ credentialId: key.id, request, ...(signature ? { signature } : {}) }],
      });
    const refusedAs = (p: Promise<unknown>) =>
      p.then(
        () => 'sent',
        (e: { cause?: { cause?: { type?: string } } }) => e.cause?.cause?.type,
      );
    const before = h.fake.apiRequests().length;
    const w = `message:${key.id}:by-hand`;
    expect(await refusedAs(run(`${w}-unsigned`))).toBe('UnsignedDurableCall');
    expect(await refusedAs(run(`${w}-forged`, `test1.${Date.now()}.${'00'.repeat(32)}`))).toBe('UnsignedDurableCall');
    expect(await refusedAs(run(`${w}-elsewhere`, signer.sign(w, key.id, request)))).toBe('UnsignedDurableCall');
    expect(await refusedAs(run(w, signer.sign(w, key.id, request, Date.now() - 8 * 86_400_000)))).toBe('UnsignedDurableCall');
    expect(h.fake.apiRequests().length).toBe(before);
    // What the API makes: signed for this workflow id. Its first run sends; a second run of the same input does not.
    const genuine = signer.sign(w, key.id, request);
    expect(await refusedAs(run(w, genuine))).toBe('sent');
    expect(h.fake.apiRequests().length).toBe(before + 1);
    expect(await refusedAs(run(w, genuine))).toBe('UnsignedDurableCall');
    expect(h.fake.apiRequests().length).toBe(before + 1);
  });

  it('a refresh workflow started before the codec (plain payloads) keeps working under it', async () => {
    const plain = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, dataConverter: {} });
    try {
      const { credential } = await seedOAuthCredential(plain, { tag: 'payloads-before', start: false });
      // Started as the code before the codec started it: a plain input, run by a plain worker.
      const before = new Client({ connection: env.connection, namespace: env.namespace ?? 'default' });
      await before.workflow.start(credentialRefreshWorkflow, {
        workflowId: credentialWorkflowId(credential.id),
        taskQueue: plain.taskQueue,
        args: [{ credentialId: credential.id }],
      });
      await vi.waitFor(
        async () =>
          expect((await before.workflow.getHandle(credentialWorkflowId(credential.id)).query(statusQuery)).phase).toBe('sleeping'),
        {
          timeout: 20_000,
        },
      );
      // The deploy: the worker now seals; the history mixes plain and sealed payloads.
      await plain.startWorker({ dataConverter: testDataConverter() });
      const refreshed = await plain.core.workflows.refreshNow(credential.id);
      expect(refreshed.version).toBe(2);
      expect((await plain.core.workflows.status(credential.id))?.refreshes).toBe(1);
      const history = await raw.workflow.getHandle(credentialWorkflowId(credential.id)).fetchHistory();
      const encodings = new Set(
        payloadsOf(history)
          .filter(({ at }) => /input|result/.test(at))
          .map(({ payload }) => encodingOf(payload)),
      );
      expect(encodings).toEqual(new Set(['json/plain', ENCRYPTED_ENCODING]));
    } finally {
      await plain.close();
    }
  });
});
