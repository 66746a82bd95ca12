// OpenAI chat streams are counted though most streaming SDKs never ask for their usage (issue 27,
// item 2): Maestro asks (`stream_options.include_usage`) and the client gets exactly the stream it
// asked for, through the proxy and durable calls alike (real PostgreSQL, real Temporal, a fake
// OpenAI that answers as the real API does: "usage":null on every chunk and a last usage chunk).
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { createDevServerEnv } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
let credentialId: string;
const EVENTS = 3;
const chat = { model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] };
const as = (key: string) => ({ authorization: `Bearer ${key}` });

async function usageOf(keyId: string) {
  await h.api.usage.flush();
  const answer = await h.call('GET', '/v1/usage?groupBy=key');
  expect(answer.status, answer.text).toBe(200);
  return answer.json.usage.find((r: { key: string }) => r.key === keyId);
}

/** The data payloads of an SSE text, parsed (but [DONE]). */
const chunksOf = (text: string) =>
  text
    .split('\n\n')
    .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
    .map((e) => JSON.parse(e.slice(6)) as Record<string, unknown>);

beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env, { provider: 'openai', fake: { eventCount: EVENTS } });
  const imported = await h.call('POST', '/v1/credentials', { body: { provider: 'openai', authType: 'api_key', apiKey: h.fake.apiKey } });
  expect(imported.status, imported.text).toBe(201);
  credentialId = imported.json.id;
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

describe('OpenAI chat streams', () => {
  it('a stream that did not ask for its usage is counted, and the client sees no usage it did not ask for', async () => {
    const k = await createKey('no-include-usage');
    const res = await fetch(`${h.url}/proxy/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { ...as(k.key), 'content-type': 'application/json', 'accept-encoding': 'gzip' },
      body: JSON.stringify(chat),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const chunks = chunksOf(text);
    expect(chunks).toHaveLength(EVENTS); // no usage-only chunk
    for (const c of chunks) expect(Object.keys(c)).toEqual(['id', 'object', 'model', 'choices']); // no "usage":null
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    // What reached the provider: the client's body, asked for the usage, plain answers.
    const sent = h.fake.apiRequests().at(-1)!;
    expect(sent.json).toEqual({ ...chat, stream_options: { include_usage: true } });
    expect(sent.headers['accept-encoding']).toBe('identity');
    expect(await usageOf(k.id)).toMatchObject({ requests: 1, incomplete: 0, inputTokens: 10, outputTokens: EVENTS });
  });

  it('a client that asked for the usage gets it as the provider sent it', async () => {
    const k = await createKey('include-usage');
    const res = await fetch(`${h.url}/proxy/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { ...as(k.key), 'content-type': 'application/json' },
      body: JSON.stringify({ ...chat, stream_options: { include_usage: true } }),
    });
    const chunks = chunksOf(await res.text());
    expect(chunks).toHaveLength(EVENTS + 1);
    expect(chunks[0]).toHaveProperty('usage', null);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 10, completion_tokens: EVENTS } });
    expect(await usageOf(k.id)).toMatchObject({ requests: 1, inputTokens: 10, outputTokens: EVENTS });
  });

  it('a durable call with stream: true is counted, and answers the stream the client asked for', async () => {
    const k = await createKey('durable');
    const answer = await h.call('POST', `/v1/credentials/${credentialId}/messages`, {
      body: { path: '/v1/chat/completions', body: chat },
      headers: as(k.key),
    });
    expect(answer.status, answer.text).toBe(200);
    const chunks = chunksOf(answer.json as string);
    expect(chunks).toHaveLength(EVENTS);
    for (const c of chunks) expect(c).not.toHaveProperty('usage');
    expect(await usageOf(k.id)).toMatchObject({ requests: 1, incomplete: 0, inputTokens: 10, outputTokens: EVENTS });
  });
});

async function createKey(name: string): Promise<{ id: string; key: string }> {
  const created = await h.call('POST', '/v1/keys', { body: { name, role: 'client', providers: ['openai'] } });
  expect(created.status, created.text).toBe(201);
  return created.json;
}
