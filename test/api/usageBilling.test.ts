// Usage exact enough to bill by (issue 27, items 1–4), through the real API (real PostgreSQL, real
// Temporal, a fake Anthropic): a row PostgreSQL would refuse (a NUL in the model, a count past
// bigint, a sum that overflows) never stops the others from being written; a stream the client
// leaves before its final usage is counted `incomplete` and its budget charged the request's
// max_tokens; a JSON answer over 4 MiB and a durable streamed call are counted; only encodings
// Maestro reads are asked for; /v1/usage refuses dates outside 0001–9999.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { createDevServerEnv } from '../support/temporal.js';
import { until } from '../support/wait.js';
import { MAX_CALL_TOKENS, OTHER_MODEL } from '../../src/usage/recorder.js';
import { MAX_OBSERVED_JSON_BYTES } from '../../src/usage/tap.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
let credentialId: string;

const message = { model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] };
const as = (key: string) => ({ authorization: `Bearer ${key}` });

async function createKey(body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const created = await h.call('POST', '/v1/keys', { body });
  expect(created.status, created.text).toBe(201);
  return created.json;
}

interface Row {
  key: string;
  model: string;
  requests: number;
  errors: number;
  incomplete: number;
  inputTokens: number;
  outputTokens: number;
}
async function rowsOf(keyId: string): Promise<Row[]> {
  await h.api.usage.flush();
  const answer = await h.call('GET', '/v1/usage?groupBy=key,model');
  expect(answer.status, answer.text).toBe(200);
  return answer.json.usage.filter((r: Row) => r.key === keyId);
}
const metric = async (line: RegExp) => Number(line.exec(await (await fetch(`${h.url}/metrics`)).text())?.[1] ?? 0);

beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env, { fake: { eventCount: 4 } });
  const imported = await h.call('POST', '/v1/credentials', { body: { provider: 'anthropic', authType: 'api_key', apiKey: h.fake.apiKey } });
  expect(imported.status).toBe(201);
  credentialId = imported.json.id;
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

describe('usage rows PostgreSQL would refuse', () => {
  it('a NUL in the model and a count past bigint are cleaned: every call of the batch is written', async () => {
    const k = await createKey({ name: 'nul', role: 'client', providers: ['anthropic'] });
    // The provider refuses the call, so the model comes from the request: with a NUL PostgreSQL's text refuses.
    h.fake.failNextApi([{ status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'bad model' } } }]);
    const refused = await h.call('POST', '/proxy/anthropic/v1/messages', { body: { ...message, model: 'x\u0000' }, headers: as(k.key) });
    expect(refused.status).toBe(400);
    // An answer reporting 1e19 tokens (past bigint).
    h.fake.failNextApi([
      {
        status: 200,
        body: {
          id: 'msg_big',
          type: 'message',
          role: 'assistant',
          model: 'claude-fake',
          content: [],
          usage: { input_tokens: 1e19, output_tokens: 2 },
        },
      },
    ]);
    expect((await h.call('POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(k.key) })).status).toBe(200);
    expect((await h.call('POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(k.key) })).status).toBe(200);

    const rows = await rowsOf(k.id);
    expect(rows.find((r) => r.model === OTHER_MODEL)).toMatchObject({ requests: 1, errors: 1, inputTokens: 0 });
    expect(rows.find((r) => r.model === 'claude-fake')).toMatchObject({
      requests: 2,
      errors: 0,
      inputTokens: MAX_CALL_TOKENS + 10,
      outputTokens: 7,
    });
    expect(await metric(/^maestro_usage_write_failures_total\{reason="refused"\} (\d+)/m)).toBe(0);
  });

  it('a row the database still refuses (its sum overflows bigint) is dropped alone, logged and counted; the rest of the batch is written', async () => {
    const k = await createKey({ name: 'overflow', role: 'client', providers: ['anthropic'] });
    const other = await createKey({ name: 'bystander', role: 'client', providers: ['anthropic'] });
    // This hour's row of the key already near bigint's end: adding a call's tokens overflows it.
    const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000);
    await sql`insert into usage_hourly (hour, key_id, credential_id, provider, model, requests, input_tokens)
              values (${hour}, ${k.id}, ${credentialId}, 'anthropic', 'claude-fake', 1, 9223372036854775800)`.execute(h.db.db);
    const droppedBefore = await metric(/^maestro_usage_dropped_total\{reason="refused"\} (\d+)/m);
    await h.api.usage.flush(); // an empty batch: the calls below go into one
    expect((await h.call('POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(k.key) })).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      expect((await h.call('POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(other.key) })).status).toBe(200);
    }
    expect((await rowsOf(other.id))[0]).toMatchObject({ requests: 3, inputTokens: 30, outputTokens: 15 });
    expect((await rowsOf(k.id))[0]).toMatchObject({ requests: 1 }); // the seeded row, unchanged
    expect(await metric(/^maestro_usage_dropped_total\{reason="refused"\} (\d+)/m)).toBe(droppedBefore + 1);
    expect(await metric(/^maestro_usage_write_failures_total\{reason="refused"\} (\d+)/m)).toBeGreaterThan(0);
    expect(h.logLines.some((l) => l.includes('usage row refused by the database; dropped') && l.includes(k.id))).toBe(true);
    // Nothing waits in memory for a retry that cannot succeed.
    expect(h.api.usage.pendingRows).toBe(0);
  });
});

describe('calls whose final counts never arrive', () => {
  it('a stream the client leaves after the content, before message_delta: counted incomplete, the budget charged its max_tokens', async () => {
    // 30 tokens a day: the cut call (10 input + 8 max_tokens charged) and a whole one (15) use it up.
    const k = await createKey({ name: 'leaves-early', role: 'client', providers: ['anthropic'], limits: { tokensPerDay: 30 } });
    h.fake.holdStreamBefore('event: message_delta'); // the client leaves while the stream waits there
    const aborting = new AbortController();
    const cut = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { ...as(k.key), 'content-type': 'application/json' },
      body: JSON.stringify({ ...message, stream: true }),
      signal: aborting.signal,
    });
    const reader = cut.body!.getReader();
    let seen = '';
    while (!seen.includes('content_block_stop')) seen += new TextDecoder().decode((await reader.read()).value);
    aborting.abort();
    await until(async () => (await rowsOf(k.id))[0]?.incomplete === 1, { what: 'the cut stream recorded', timeoutMs: 10_000 });
    h.fake.holdStreamBefore(undefined);
    expect((await rowsOf(k.id))[0]).toMatchObject({ requests: 1, errors: 0, incomplete: 1, inputTokens: 10, outputTokens: 0 });
    expect(h.api.usage.usedToday(k.id)).toBe(18);

    expect((await h.call('POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(k.key) })).status).toBe(200);
    const over = await h.call('POST', '/proxy/anthropic/v1/messages', { body: message, headers: as(k.key) });
    expect(over.status).toBe(429);
    expect(over.json.error).toMatchObject({ type: 'budget_exceeded', message: expect.stringMatching(/used 33 of its 30 tokens/) });
  });

  it('a JSON answer over 4 MiB is counted from its tail', async () => {
    const k = await createKey({ name: 'big-answer', role: 'client', providers: ['anthropic'] });
    const text = 'x'.repeat(MAX_OBSERVED_JSON_BYTES + 1024);
    h.fake.failNextApi([
      {
        status: 200,
        body: {
          id: 'msg_huge',
          type: 'message',
          role: 'assistant',
          model: 'claude-fake',
          content: [{ type: 'text', text }],
          usage: { input_tokens: 12, output_tokens: 1_100_000 },
        },
      },
    ]);
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { ...as(k.key), 'content-type': 'application/json' },
      body: JSON.stringify(message),
    });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(MAX_OBSERVED_JSON_BYTES);
    expect((await rowsOf(k.id))[0]).toMatchObject({ requests: 1, incomplete: 0, inputTokens: 12, outputTokens: 1_100_000 });
  });

  it('asks the provider only for encodings Maestro reads (a client asking zstd gets what it can read too), and counts the answer', async () => {
    const k = await createKey({ name: 'zstd', role: 'client', providers: ['anthropic'] });
    const before = h.fake.apiRequests().length;
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { ...as(k.key), 'content-type': 'application/json', 'accept-encoding': 'zstd, br;q=0.9, *;q=0.1' },
      body: JSON.stringify(message),
    });
    expect(res.status).toBe(200);
    const sent = h.fake.apiRequests().slice(before);
    expect(sent.map((r) => r.headers['accept-encoding'])).toEqual(['br;q=0.9']);
    const only = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { ...as(k.key), 'content-type': 'application/json', 'accept-encoding': 'zstd' },
      body: JSON.stringify(message),
    });
    expect(only.status).toBe(200);
    expect(h.fake.apiRequests().at(-1)!.headers['accept-encoding']).toBe('identity');
    expect((await rowsOf(k.id))[0]).toMatchObject({ requests: 2, inputTokens: 20, outputTokens: 10 });
  });

  it('a durable call with stream: true is counted from its events (by the worker that made it)', async () => {
    const k = await createKey({ name: 'durable-stream', role: 'client', providers: ['anthropic'] });
    const answer = await h.call('POST', `/v1/credentials/${credentialId}/messages`, {
      body: { body: { ...message, stream: true } },
      headers: as(k.key),
    });
    expect(answer.status, answer.text).toBe(200);
    expect(String(answer.json)).toContain('message_delta');
    expect((await rowsOf(k.id))[0]).toMatchObject({ model: 'claude-fake', requests: 1, incomplete: 0, inputTokens: 10, outputTokens: 4 });
    // Recorded by the worker, once, under the workflow's attempt.
    const recorded = await sql<{ n: number }>`select count(*)::int as n from durable_call_usage`.execute(h.db.db);
    expect(recorded.rows[0]!.n).toBeGreaterThanOrEqual(1);
  });
});

describe('GET /v1/usage dates', () => {
  it('refuses from/to outside the years 0001–9999 with a 400 that says so', async () => {
    for (const query of [
      'from=0000-06-01T00:00:00Z',
      'to=9999-12-31T23:30:00-01:00',
      'from=0000-01-01T00:00:00Z&to=0000-02-01T00:00:00Z',
    ]) {
      const answer = await h.call('GET', `/v1/usage?${query}`);
      expect(answer.status, query).toBe(400);
      expect(answer.json.error.message).toMatch(/between the years 0001 and 9999/);
    }
  });
});
