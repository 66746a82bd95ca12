// Usage, budgets and the provider's rate-limit state through the real API (real PostgreSQL, real
// Temporal, a fake Anthropic that gzips its answers): exact token sums for plain, streamed,
// gzipped, aborted and durable calls per key and credential, across two API processes and a
// restart; budgets refused with the right status and headers and nothing recorded; rate-limit
// headers and an error inside a 200 stream recorded on the credential.
import { connect } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../src/app/services.js';
import { createLogger } from '../../src/logger.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { callApi } from '../support/http.js';
import { createDevServerEnv } from '../support/temporal.js';
import { until } from '../support/wait.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
let second: RunningApi;
let secondUrl: string;
let credentialId: string;

const message = { model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] };
const EVENTS = 7; // the fake's streamed answers: message_start says 10 input tokens, message_delta EVENTS output tokens

async function createKey(body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const created = await h.call('POST', '/v1/keys', { body });
  expect(created.status, created.text).toBe(201);
  return created.json;
}
interface Counts {
  [k: string]: number;
  requests: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
}
const as = (key: string) => ({ authorization: `Bearer ${key}` });

async function usageOf(keyId: string): Promise<Counts> {
  await Promise.all([h.api.usage.flush(), second.usage.flush()]);
  const answer = await h.call('GET', `/v1/usage?groupBy=key,credential,provider,model`);
  expect(answer.status, answer.text).toBe(200);
  const rows = answer.json.usage.filter((r: { key: string }) => r.key === keyId);
  const sum: Counts = { requests: 0, errors: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
  for (const r of rows) for (const k of Object.keys(sum)) sum[k]! += r[k];
  return sum;
}

beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env, { fake: { compress: 'gzip', eventCount: EVENTS } });
  second = await startApi({ ...h.config, port: 0, host: '127.0.0.1' }, createLogger('silent'), h.db.db, h.db.url, env.client, h.core);
  secondUrl = `http://127.0.0.1:${(second.server.address() as { port: number }).port}`;
  const imported = await h.call('POST', '/v1/credentials', { body: { provider: 'anthropic', authType: 'api_key', apiKey: h.fake.apiKey } });
  expect(imported.status).toBe(201);
  credentialId = imported.json.id;
});
afterAll(async () => {
  await second?.close();
  await h?.close();
  await env?.teardown();
});

describe('usage', () => {
  it('adds up exactly: plain, gzipped, streamed, aborted and durable calls, through two API processes and a restart', async () => {
    const k = await createKey({ name: 'counted', role: 'client', providers: ['anthropic'] });
    const other = await createKey({ name: 'other', role: 'client', providers: ['anthropic'] });

    // Two plain answers (gzipped by the fake; the client decompresses; the tap reads a decompressed copy).
    for (const url of [h.url, secondUrl]) {
      const res = await fetch(`${url}/proxy/anthropic/v1/messages`, {
        method: 'POST',
        headers: { ...as(k.key), 'content-type': 'application/json', 'accept-encoding': 'gzip' },
        body: JSON.stringify(message),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-encoding')).toBe('gzip'); // passed through compressed
      expect(((await res.json()) as { usage: unknown }).usage).toEqual({ input_tokens: 10, output_tokens: 5 });
    }
    // A whole stream.
    const streamed = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { ...as(k.key), 'content-type': 'application/json' },
      body: JSON.stringify({ ...message, stream: true }),
    });
    expect(streamed.status).toBe(200);
    expect(await streamed.text()).toContain('message_stop');
    // A stream the client abandons after its first bytes: message_start's input tokens count, the output never came.
    h.fake.holdStreamBefore('event: content_block_start');
    const aborting = new AbortController();
    const cut = await fetch(`${secondUrl}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { ...as(k.key), 'content-type': 'application/json', 'accept-encoding': 'identity' },
      body: JSON.stringify({ ...message, stream: true }),
      signal: aborting.signal,
    });
    const reader = cut.body!.getReader();
    let seen = '';
    while (!seen.includes('message_start')) seen += new TextDecoder().decode((await reader.read()).value);
    aborting.abort();
    // A durable call by the other key.
    const durable = await h.call('POST', `/v1/credentials/${credentialId}/messages`, { body: { body: message }, headers: as(other.key) });
    expect(durable.status, durable.text).toBe(200);
    // An error answer counts as a request and an error, with no tokens.
    h.fake.failNextApi([{ status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } }]);
    expect((await callApi(secondUrl, 'POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(k.key) })).status).toBe(529);

    await until(async () => (await usageOf(k.id)).requests === 5, { what: 'the aborted stream recorded', timeoutMs: 10_000 });
    h.fake.holdStreamBefore(undefined);
    expect(await usageOf(k.id)).toEqual({
      requests: 5,
      errors: 1,
      inputTokens: 40,
      outputTokens: 10 + EVENTS,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    });
    expect(await usageOf(other.id)).toEqual({
      requests: 1,
      errors: 0,
      inputTokens: 10,
      outputTokens: 5,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    });

    // A restart of one process: what it held is written at shutdown, and the counts go on from the table.
    const res = await callApi(secondUrl, 'POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(k.key) });
    expect(res.status).toBe(200);
    // A client's spare connection that never sent a byte does not hold the stop (Node counts it busy until headersTimeout, 60 s).
    const spare = connect((second.server.address() as { port: number }).port, '127.0.0.1');
    await new Promise((resolve) => spare.once('connect', resolve));
    const spareClosed = new Promise((resolve) => spare.once('close', resolve));
    const stopping = Date.now();
    await second.close(); // flushes
    expect(Date.now() - stopping).toBeLessThan(10_000);
    await spareClosed;
    second = await startApi({ ...h.config, port: 0, host: '127.0.0.1' }, createLogger('silent'), h.db.db, h.db.url, env.client, h.core);
    secondUrl = `http://127.0.0.1:${(second.server.address() as { port: number }).port}`;
    expect((await callApi(secondUrl, 'POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(k.key) })).status).toBe(200);
    expect(await usageOf(k.id)).toMatchObject({ requests: 7, errors: 1, inputTokens: 60, outputTokens: 20 + EVENTS });

    // Grouped by credential and model, and bucketed; a client key sees only its own rows, whatever it asks.
    const byModel = await h.call('GET', '/v1/usage?groupBy=credential,model&bucket=hour');
    expect(byModel.json.usage.map((r: { model: string }) => r.model).sort()).toEqual(['claude-fake', 'claude-test']); // the 529 names the request's
    expect(byModel.json.usage.find((r: { model: string }) => r.model === 'claude-fake')).toMatchObject({
      credential: credentialId,
      model: 'claude-fake',
      bucketStart: expect.stringMatching(/:00:00\.000Z$/),
    });
    const own = await h.call('GET', '/v1/usage?groupBy=key', { headers: as(other.key) });
    expect(own.status).toBe(200);
    expect(own.json.usage).toEqual([expect.objectContaining({ key: other.id, requests: 1, inputTokens: 10, outputTokens: 5 })]);
    const backwards = await h.call('GET', '/v1/usage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z');
    expect(backwards.status).toBe(400);
    expect(backwards.json.error.message).toBe('from must be before to');
    const bad = await h.call('GET', '/v1/usage?groupBy=key,colour&bucket=week');
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/unknown colour/);

    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/maestro_tokens_total\{provider="anthropic",type="input"\} \d+/);
  });

  it('refuses a key over its daily token budget until the next UTC day (429 budget_exceeded, Retry-After), recording nothing for the refusal', async () => {
    const k = await createKey({ name: 'budgeted', role: 'client', providers: ['anthropic'], limits: { tokensPerDay: 20 } });
    for (let i = 0; i < 2; i++) {
      expect((await h.call('POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(k.key) })).status).toBe(200); // 15 each
    }
    const upstream = h.fake.apiRequests().length;
    const refused = await h.call('POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(k.key) });
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({
      type: 'budget_exceeded',
      message: expect.stringMatching(/used 30 of its 20 tokens for today/),
    });
    const midnight = Math.ceil(Date.now() / 86_400_000) * 86_400_000;
    expect(Math.abs(Number(refused.headers.get('retry-after')) - (midnight - Date.now()) / 1000)).toBeLessThan(5);
    expect(h.fake.apiRequests().length).toBe(upstream);
    // The other process learns the day's total from the table within a flush.
    await h.api.usage.flush();
    await until(async () => (await callApi(secondUrl, 'GET', '/v1/credentials', { headers: as(k.key) })).status === 429, {
      what: 'the second process refusing the key over budget',
      timeoutMs: 10_000,
    });
    expect(await usageOf(k.id)).toMatchObject({ requests: 2, inputTokens: 20, outputTokens: 10 });
  });

  it("keeps each credential's rate-limit state from the provider's headers and from an error inside a 200 stream", async () => {
    const reset = Math.floor(Date.now() / 1000) + 3600;
    h.fake.failNextApi([
      {
        status: 200,
        body: {
          id: 'msg_x',
          type: 'message',
          role: 'assistant',
          model: 'claude-fake',
          content: [],
          usage: { input_tokens: 1, output_tokens: 1 },
        },
        headers: {
          'anthropic-ratelimit-unified-status': 'allowed_warning',
          'anthropic-ratelimit-unified-5h-status': 'allowed_warning',
          'anthropic-ratelimit-unified-5h-utilization': '0.91',
          'anthropic-ratelimit-unified-5h-reset': String(reset),
          'anthropic-ratelimit-unified-7d-utilization': '0.4',
          'anthropic-ratelimit-unified-representative-claim': 'five_hour',
        },
      },
    ]);
    expect((await h.call('POST', '/proxy/anthropic/v1/messages', { body: message })).status).toBe(200);
    const read = await h.call('GET', `/v1/credentials/${credentialId}`);
    expect(read.json.rateLimit).toMatchObject({
      status: 'allowed_warning',
      representativeClaim: 'five_hour',
      windows: { five_hour: { utilization: 0.91, reset: new Date(reset * 1000).toISOString() }, seven_day: { utilization: 0.4 } },
    });
    const gauges = await (await fetch(`${h.url}/metrics`)).text();
    expect(gauges).toContain(`maestro_credential_ratelimit_utilization{credential="${credentialId}",window="five_hour"} 0.91`);
    // Shared through the table: the other process shows it too.
    await h.api.rateLimits.share();
    const elsewhere = await callApi(secondUrl, 'GET', `/v1/credentials/${credentialId}`);
    expect(elsewhere.json.rateLimit.windows.five_hour.utilization).toBe(0.91);

    const before = await usageOf('env:1');
    // The answer's headers say "allowed" and its stream then says otherwise: the stream's word is
    // the later one and must stand, however soon the stream ends after the headers.
    h.fake.failNextApi([
      {
        status: 200,
        headers: { 'content-type': 'text/event-stream', 'anthropic-ratelimit-unified-status': 'allowed' },
        body: 'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-fake","usage":{"input_tokens":3,"output_tokens":0}}}\n\nevent: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"Rate limited"}}\n\n',
      },
    ]);
    const streamed = await h.call('POST', '/proxy/anthropic/v1/messages', { body: { ...message, stream: true } });
    expect(streamed.status).toBe(200);
    expect((await h.call('GET', `/v1/credentials/${credentialId}`)).json.rateLimit.status).toBe('rate_limit_error');
    const after = await usageOf('env:1');
    expect(after.errors - before.errors).toBe(1);
    expect(after.inputTokens - before.inputTokens).toBe(3);
    const rows = await sql<{ n: number }>`select count(*)::int as n from credential_rate_limits`.execute(h.db.db);
    expect(rows.rows[0]!.n).toBe(1);
  });
});
