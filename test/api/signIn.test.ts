// Sign-in credentials reach the APIs that accept them, through the real API (real PostgreSQL,
// real Temporal): an OpenAI ChatGPT sign-in calls the fake Codex backend, a Gemini CLI sign-in the
// fake Code Assist (project found at login through loadCodeAssist, or onboardUser), each through
// the proxy (streamed and not), after a refresh, and as a durable call; usage counted from the
// mapped answers.
import { brotliCompressSync, deflateRawSync, gzipSync } from 'node:zlib';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CODEX_DEFAULT_INSTRUCTIONS } from '../../src/auth/backends/codex.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { CODE_ASSIST_USAGE } from '../support/fakeProvider/codeAssist.js';
import { CODEX_USAGE } from '../support/fakeProvider/codex.js';
import { createDevServerEnv, TEST_API_KEY } from '../support/temporal.js';
import { until } from '../support/wait.js';

let env: TestWorkflowEnvironment;
let openai: ApiHarness;
let gemini: ApiHarness;
const secretsSeen = new Set<string>([TEST_API_KEY]);
const EVENTS = 4;

beforeAll(async () => {
  env = await createDevServerEnv();
  [openai, gemini] = await Promise.all([
    startApiHarness(env, { provider: 'openai', fake: { eventCount: EVENTS } }),
    // The account is not set up for Code Assist yet: the first sign-in onboards it.
    startApiHarness(env, { provider: 'gemini', fake: { eventCount: EVENTS, codeAssist: { setup: 'onboard', onboardPolls: 1 } } }),
  ]);
});
afterAll(async () => {
  await Promise.all([openai?.close(), gemini?.close()]);
  await env?.teardown();
});

async function signIn(h: ApiHarness, provider: 'openai' | 'gemini', name: string) {
  const started = await h.call('POST', `/v1/oauth/${provider}/start`, { body: { name } });
  expect(started.status, started.text).toBe(201);
  const consent = h.fake.authorize(started.json.authorizeUrl);
  secretsSeen.add(consent.code);
  const done = await h.call('POST', `/v1/oauth/${provider}/complete`, {
    body: { sessionId: started.json.sessionId, code: consent.pasted },
  });
  expect(done.status, done.text).toBe(201);
  for (const t of [...h.fake.issued.accessTokens, ...h.fake.issued.refreshTokens]) secretsSeen.add(t);
  return done.json as { id: string; name: string; version: number; providerMetadata: { project?: string } | null };
}

async function refresh(h: ApiHarness, id: string): Promise<void> {
  const before = h.fake.issued.accessTokens.length;
  const refreshed = await h.call('POST', `/v1/credentials/${id}/refresh`);
  expect(refreshed.status, refreshed.text).toBe(200);
  expect(h.fake.issued.accessTokens.length).toBe(before + 1);
  for (const t of [...h.fake.issued.accessTokens, ...h.fake.issued.refreshTokens]) secretsSeen.add(t);
}

const lastBearer = (h: ApiHarness) => String(h.fake.apiRequests().at(-1)!.headers.authorization);

async function usageOf(h: ApiHarness, credentialId: string) {
  await h.api.usage.flush();
  const answer = await h.call('GET', '/v1/usage?groupBy=credential');
  expect(answer.status, answer.text).toBe(200);
  return answer.json.usage.find((r: { credential: string }) => r.credential === credentialId) as Record<string, number> | undefined;
}

/** maestro_proxy_requests_total for this provider and status, from /metrics. */
async function proxyMetric(h: ApiHarness, status: string): Promise<number> {
  const text = (await h.call('GET', '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`maestro_proxy_requests_total{provider="${h.fake.provider}",status="${status}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** SSE text → the parsed `data:` payloads (and event names). */
function sseData(text: string): Array<{ event?: string; data: any }> {
  return text
    .split(/\r?\n\r?\n/)
    .filter((block) => block.trim())
    .map((block) => {
      const lines = block.split(/\r?\n/);
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
      const data = lines
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      return { event, data: JSON.parse(data) };
    });
}

describe('OpenAI ChatGPT sign-in → Codex backend', () => {
  let credential: { id: string; name: string };
  const headers = () => ({ 'x-maestro-credential': credential.name });

  it('signs in and answers a Responses client, streamed and not; refreshes and answers with the new token', async () => {
    credential = await signIn(openai, 'openai', 'chatgpt');
    const call = async (body: Record<string, unknown>) => openai.call('POST', '/proxy/openai/v1/responses', { body, headers: headers() });

    const plain = await call({ model: 'gpt-5-codex', input: 'hello', store: true });
    expect(plain.status, plain.text).toBe(200);
    expect(plain.headers.get('content-type')).toBe('application/json');
    expect(plain.json).toMatchObject({
      object: 'response',
      status: 'completed',
      model: 'gpt-5-codex',
      usage: CODEX_USAGE,
      output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'chunk 0 chunk 1 chunk 2 chunk 3 ' }] }],
    });
    const sent = openai.fake.apiRequests().at(-1)!;
    expect(sent.path).toBe('/backend-api/codex/responses');
    expect(sent.headers).toMatchObject({
      'chatgpt-account-id': openai.fake.accountId,
      originator: 'codex_cli_rs',
      'openai-beta': 'responses=experimental',
    });
    expect(sent.json).toMatchObject({ store: false, stream: true, instructions: CODEX_DEFAULT_INSTRUCTIONS, model: 'gpt-5-codex' });
    const firstToken = lastBearer(openai);

    const streamed = await call({ model: 'gpt-5-codex', input: [], stream: true, instructions: 'Be brief.' });
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = sseData(streamed.text);
    expect(events.map((e) => e.event)).toEqual([
      'response.created',
      'response.output_item.added',
      ...Array<string>(EVENTS).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.at(-1)!.data.response.usage).toEqual(CODEX_USAGE);
    expect(openai.fake.apiRequests().at(-1)!.json).toMatchObject({ instructions: 'Be brief.' });

    await refresh(openai, credential.id);
    const again = await call({ model: 'gpt-5-codex', input: 'again' });
    expect(again.status, again.text).toBe(200);
    expect(again.json.status).toBe('completed');
    expect(lastBearer(openai)).not.toBe(firstToken);
    expect(openai.fake.isAccessTokenValid(lastBearer(openai).slice(7))).toBe(true);

    // Three calls, each counted from what the client got: 12 input tokens of which 2 cached, 7 output.
    const usage = await usageOf(openai, credential.id);
    expect(usage).toMatchObject({ requests: 3, errors: 0, inputTokens: 30, cacheReadTokens: 6, outputTokens: 21 });
  });

  it('runs a durable call with the public path and body', async () => {
    const res = await openai.call('POST', `/v1/credentials/${credential.id}/messages`, {
      body: { path: '/v1/responses', body: { model: 'gpt-5-codex', input: 'durable' } },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ object: 'response', status: 'completed', usage: CODEX_USAGE });
    expect(openai.fake.apiRequests().at(-1)!.json).toMatchObject({ store: false, stream: true });
    // Counted from the mapped answer, like a proxied call.
    expect(await usageOf(openai, credential.id)).toMatchObject({ requests: 4, inputTokens: 40, cacheReadTokens: 8, outputTokens: 28 });
  });

  it('serves a client key limited to this credential on the public inference path', async () => {
    const created = await openai.call('POST', '/v1/keys', { body: { name: 'codex-client', role: 'client', credentials: [credential.id] } });
    expect(created.status, created.text).toBe(201);
    secretsSeen.add(created.json.key);
    const res = await openai.call('POST', '/proxy/openai/v1/responses', {
      body: { model: 'gpt-5-codex', input: 'hi' },
      headers: { authorization: `Bearer ${created.json.key}` },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json.status).toBe('completed');
  });

  it('a Codex stream that failed is an error: 502 (or the status the event names) for a JSON client, counted as an error', async () => {
    const ev = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    const created = ev('response.created', { response: { id: 'resp_x', object: 'response', status: 'in_progress', model: 'gpt-5-codex' } });
    const delta = ev('response.output_text.delta', { delta: 'partial ' });
    const sse = (text: string) => ({ status: 200, body: text, headers: { 'content-type': 'text/event-stream' } });
    const failedResponse = {
      id: 'resp_x',
      object: 'response',
      status: 'failed',
      error: { code: 'server_error', message: 'the model broke' },
    };
    openai.fake.failNextApi([
      sse(created + delta + ev('response.failed', { response: failedResponse })),
      sse(created + ev('error', { code: 'rate_limit_exceeded', message: 'slow down', status: 429 })),
      sse(created + delta), // ended without a final event
      sse(created + ev('response.failed', { response: failedResponse })), // a streamed client
      sse(created + delta), // a streamed client, no final event
    ]);
    const metricBefore = await proxyMetric(openai, '502');
    const before = (await usageOf(openai, credential.id))!;
    const call = (body: Record<string, unknown>) => openai.call('POST', '/proxy/openai/v1/responses', { body, headers: headers() });

    const failed = await call({ model: 'gpt-5-codex', input: 'x' });
    expect(failed.status, failed.text).toBe(502);
    expect(failed.headers.get('content-type')).toBe('application/json');
    expect(failed.json).toEqual({ error: { type: 'server_error', code: 'server_error', message: 'the model broke' } });

    const limited = await call({ model: 'gpt-5-codex', input: 'x' });
    expect(limited.status, limited.text).toBe(429);
    expect(limited.json).toEqual({ error: { type: 'rate_limit_exceeded', code: 'rate_limit_exceeded', message: 'slow down' } });

    const cut = await call({ model: 'gpt-5-codex', input: 'x' });
    expect(cut.status, cut.text).toBe(502);
    expect(cut.json.error.message).toMatch(/ended its stream without a final response event/);

    // Streamed: the status went with the first event; the events pass as they came, and the call is an error.
    const streamed = await call({ model: 'gpt-5-codex', input: 'x', stream: true });
    expect(streamed.status).toBe(200);
    expect(sseData(streamed.text).map((e) => e.event)).toEqual(['response.created', 'response.failed']);
    // A stream that just stopped gets an error event after what came, so the client knows.
    const stopped = await call({ model: 'gpt-5-codex', input: 'x', stream: true });
    expect(stopped.status).toBe(200);
    expect(stopped.text.startsWith(created + delta)).toBe(true);
    expect(sseData(stopped.text).at(-1)).toEqual({
      event: 'error',
      data: { type: 'error', code: 'stream_incomplete', message: 'the Codex backend ended its stream without a final response event' },
    });

    expect(await usageOf(openai, credential.id)).toMatchObject({ requests: before.requests! + 5, errors: before.errors! + 5 });
    expect(await proxyMetric(openai, '502')).toBe(metricBefore + 2);
  });

  it('says which paths need an API key credential, and a refused token is refreshed once', async () => {
    const chat = await openai.call('POST', '/proxy/openai/v1/chat/completions', { body: { model: 'm', messages: [] }, headers: headers() });
    expect(chat.status).toBe(400);
    expect(chat.json.error.message).toMatch(/needs an OpenAI API key credential/);

    openai.fake.revokeAccessToken(lastBearer(openai).slice(7));
    const before = openai.fake.issued.accessTokens.length;
    const res = await openai.call('POST', '/proxy/openai/v1/responses', { body: { model: 'm', input: 'x' }, headers: headers() });
    expect(res.status, res.text).toBe(200);
    expect(openai.fake.issued.accessTokens.length).toBe(before + 1);
    for (const t of [...openai.fake.issued.accessTokens, ...openai.fake.issued.refreshTokens]) secretsSeen.add(t);
  });
});

describe('A pool of ChatGPT sign-ins', () => {
  // A sign-in backend's answer is mapped, so the relay has no first-chunk hook for it. The pool must
  // still see the member's windows while that answer streams, not only after its end (a Codex
  // stream can run for minutes, and every pick meanwhile reads those windows).
  it("sees a streaming member's windows before its answer ends: past maxUtilization, it is over_threshold at once", async () => {
    const a = await signIn(openai, 'openai', 'cx-a');
    const b = await signIn(openai, 'openai', 'cx-b');
    const created = await openai.call('POST', '/v1/pools', {
      body: {
        name: 'codex',
        provider: 'openai',
        members: [
          { credential: a.name, maxUtilization: 0.8 },
          { credential: b.name, maxUtilization: 0.8 },
        ],
      },
    });
    expect(created.status, created.text).toBe(201);
    const pooled = (stream: boolean, signal?: AbortSignal) =>
      fetch(`${openai.url}/proxy/openai/v1/responses`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TEST_API_KEY}`,
          'content-type': 'application/json',
          'x-maestro-pool': 'codex',
          'x-maestro-session': 'held-session',
        },
        body: JSON.stringify({ model: 'gpt-5-codex', input: 'hi', stream }),
        signal,
      });
    // The session's first call binds it (and loads its member): the next one takes the fast path.
    const first = await pooled(false);
    expect(first.status, await first.text()).toBe(200);
    const member = first.headers.get('x-maestro-credential-id')!;
    const stateOf = async () => {
      const answer = await openai.call('GET', '/v1/pools/codex');
      expect(answer.status, answer.text).toBe(200);
      return (answer.json.members as Array<{ credentialId: string; state: string; reason: string | null }>).find(
        (m) => m.credentialId === member,
      )!;
    };
    expect((await stateOf()).state).toBe('routable');

    openai.fake.setSignInAnswerHeaders({
      'x-codex-primary-used-percent': '90',
      'x-codex-primary-window-minutes': '300',
      'x-codex-primary-reset-after-seconds': '3600',
    });
    openai.fake.holdStreamBefore('chunk 2'); // the answer begins, then waits until its client leaves
    const client = new AbortController();
    try {
      const held = await pooled(true, client.signal);
      expect(held.status).toBe(200);
      expect(held.headers.get('x-maestro-credential-id')).toBe(member);
      const reader = held.body!.getReader();
      expect((await reader.read()).done).toBe(false); // the answer is under way, and not over
      const seen = await stateOf();
      expect(seen.state).toBe('over_threshold');
      expect(seen.reason).toMatch(/primary at 90 %/);
      // The client leaves mid-answer: the upstream call is cut too, not left to run.
      const abandoned = openai.fake.streamsAbandoned();
      client.abort();
      await until(() => openai.fake.streamsAbandoned() > abandoned, { timeoutMs: 5_000, what: 'the upstream stream to be cut' });
    } finally {
      client.abort();
      openai.fake.holdStreamBefore(undefined);
      openai.fake.setSignInAnswerHeaders({});
      await openai.call('DELETE', '/v1/pools/codex');
    }
  });
});

describe('Gemini CLI sign-in → Code Assist', () => {
  let credential: { id: string; name: string; providerMetadata: { project?: string } | null };
  const headers = () => ({ 'x-maestro-credential': credential.name });
  const request = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };

  it('onboards a new account at sign-in and stores its project', async () => {
    credential = await signIn(gemini, 'gemini', 'gemini-cli');
    expect(gemini.fake.codeAssistCalls()).toEqual({ loadCodeAssist: 1, onboardUser: 1, getOperation: 1 });
    expect(credential.providerMetadata).toEqual({ project: gemini.fake.codeAssistProject });
    const detail = await gemini.call('GET', `/v1/credentials/${credential.id}`);
    expect(detail.json.providerMetadata).toEqual({ project: gemini.fake.codeAssistProject });
  });

  it('finds the project of an account already set up with loadCodeAssist alone', async () => {
    const before = gemini.fake.codeAssistCalls();
    const second = await signIn(gemini, 'gemini', 'gemini-cli-2');
    expect(second.providerMetadata).toEqual({ project: gemini.fake.codeAssistProject });
    expect(gemini.fake.codeAssistCalls()).toMatchObject({ loadCodeAssist: before.loadCodeAssist! + 1, onboardUser: before.onboardUser });
  });

  it('answers a Gemini client unchanged: generateContent, streamGenerateContent (SSE and JSON array), countTokens; after a refresh too', async () => {
    const call = (path: string, body: unknown = request) => gemini.call('POST', `/proxy/gemini${path}`, { body, headers: headers() });

    const generated = await call('/v1beta/models/gemini-2.5-pro:generateContent');
    expect(generated.status, generated.text).toBe(200);
    expect(generated.json.candidates[0].content.parts[0].text).toBe('Hello from the fake code assist');
    expect(generated.json.usageMetadata).toEqual(CODE_ASSIST_USAGE);
    expect(generated.json.response).toBeUndefined();
    const sent = gemini.fake.apiRequests().at(-1)!;
    expect(sent.path).toBe('/v1internal:generateContent');
    expect(sent.json).toEqual({ model: 'gemini-2.5-pro', project: gemini.fake.codeAssistProject, request });
    const firstToken = lastBearer(gemini);

    const sse = await call('/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse');
    expect(sse.status).toBe(200);
    expect(sse.headers.get('content-type')).toBe('text/event-stream');
    const events = sseData(sse.text);
    expect(events).toHaveLength(EVENTS);
    expect(events.map((e) => e.data.candidates[0].content.parts[0].text)).toEqual(['chunk 0 ', 'chunk 1 ', 'chunk 2 ', 'chunk 3 ']);
    expect(events.every((e) => e.data.response === undefined)).toBe(true);
    expect(gemini.fake.apiRequests().at(-1)!.search).toBe('?alt=sse');

    const array = await call('/v1beta/models/gemini-2.5-pro:streamGenerateContent');
    expect(array.status).toBe(200);
    expect(Array.isArray(array.json)).toBe(true);
    expect(array.json).toHaveLength(EVENTS);
    expect(array.json[EVENTS - 1].candidates[0].finishReason).toBe('STOP');

    const counted = await call('/v1beta/models/gemini-2.5-pro:countTokens');
    expect(counted.status, counted.text).toBe(200);
    expect(counted.json).toEqual({ totalTokens: 7 });
    expect(gemini.fake.apiRequests().at(-1)!.json).toEqual({ request: { model: 'models/gemini-2.5-pro', contents: request.contents } });

    await refresh(gemini, credential.id);
    const again = await call('/v1beta/models/gemini-2.5-pro:generateContent');
    expect(again.status, again.text).toBe(200);
    expect(lastBearer(gemini)).not.toBe(firstToken);

    // generateContent ×2, the SSE stream (usage in every event: the last one counts) and the JSON array; countTokens has none.
    const usage = await usageOf(gemini, credential.id);
    expect(usage).toMatchObject({
      requests: 5,
      errors: 0,
      inputTokens: 4 * (CODE_ASSIST_USAGE.promptTokenCount - CODE_ASSIST_USAGE.cachedContentTokenCount),
      cacheReadTokens: 4 * CODE_ASSIST_USAGE.cachedContentTokenCount,
      outputTokens: 4 * CODE_ASSIST_USAGE.candidatesTokenCount,
    });
  });

  it('decodes an answer compressed although it was asked uncompressed, then maps it', async () => {
    const wrapped = { response: { candidates: [{ content: { role: 'model', parts: [{ text: 'zipped' }] } }] }, traceId: 't' };
    gemini.fake.failNextApi([
      { status: 200, body: gzipSync(JSON.stringify(wrapped)), headers: { 'content-encoding': 'gzip', 'content-type': 'application/json' } },
    ]);
    const res = await gemini.call('POST', '/proxy/gemini/v1beta/models/g:generateContent', { body: request, headers: headers() });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(res.json).toEqual(wrapped.response);
  });

  it('runs a durable call with the public path and body', async () => {
    const res = await gemini.call('POST', `/v1/credentials/${credential.id}/messages`, {
      body: { path: '/v1beta/models/gemini-2.5-flash:generateContent', body: request },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json.candidates[0].content.parts[0].text).toBe('Hello from the fake code assist');
    expect(gemini.fake.apiRequests().at(-1)!.json).toMatchObject({ model: 'gemini-2.5-flash', project: gemini.fake.codeAssistProject });
    expect(await usageOf(gemini, credential.id)).toMatchObject({ requests: 7, inputTokens: 40, cacheReadTokens: 15, outputTokens: 30 });
  });

  it('imports a sign-in with a given project without asking Code Assist; other paths need an API key', async () => {
    const accessToken = 'ya29.imported-abcdefgh';
    gemini.fake.seedTokens('1//imported-abcdefgh', accessToken);
    secretsSeen.add(accessToken).add('1//imported-abcdefgh');
    const before = gemini.fake.codeAssistCalls();
    const imported = await gemini.call('POST', '/v1/credentials', {
      body: {
        provider: 'gemini',
        authType: 'oauth',
        name: 'imported',
        accessToken,
        refreshToken: '1//imported-abcdefgh',
        project: 'my-project',
      },
    });
    expect(imported.status, imported.text).toBe(201);
    expect(imported.json.providerMetadata).toEqual({ project: 'my-project' });
    expect(gemini.fake.codeAssistCalls()).toEqual(before);
    const wrongProvider = await gemini.call('POST', '/v1/credentials', {
      body: { provider: 'openai', authType: 'oauth', name: 'x', accessToken, project: 'p' },
    });
    expect(wrongProvider.status).toBe(400);

    const models = await gemini.call('GET', '/proxy/gemini/v1beta/models', { headers: headers() });
    expect(models.status).toBe(400);
    expect(models.json.error.message).toMatch(/needs a Gemini API key credential/);
  });

  it("reads a sign-in's quota through its workflow: retrieveUserQuota naming its project, buckets as family windows, no spend", async () => {
    gemini.fake.setQuotaWindow('gemini-2.5-pro', { utilization: 100, resetsAt: new Date(Date.now() + 6 * 3600_000) });
    const before = {
      quota: gemini.fake.quotaRequests().length,
      api: gemini.fake.apiRequests().length,
      token: gemini.fake.tokenRequests().length,
    };
    const read = await gemini.call('POST', `/v1/credentials/${credential.id}/quota`);
    expect(read.status, read.text).toBe(200);
    expect(read.json.windows.one_day_pro).toMatchObject({ utilization: 1, source: 'endpoint', windowMinutes: 1440 });
    expect(read.json.windows.one_day_flash).toMatchObject({ utilization: 0.2, source: 'endpoint' });
    const [request, ...more] = gemini.fake.quotaRequests().slice(before.quota);
    expect(more).toHaveLength(0);
    expect(request).toMatchObject({
      method: 'POST',
      path: '/v1internal:retrieveUserQuota',
      json: { project: gemini.fake.codeAssistProject },
    });
    expect(gemini.fake.apiRequests().length).toBe(before.api);
    expect(gemini.fake.tokenRequests().length).toBe(before.token);
    const detail = await gemini.call('GET', `/v1/credentials/${credential.id}`);
    expect(detail.json.rateLimit.windows.one_day_pro).toMatchObject({ utilization: 1, source: 'endpoint' });
    gemini.fake.setQuotaWindow('gemini-2.5-pro', { utilization: 10, resetsAt: new Date(Date.now() + 3 * 3600_000) });
  });

  it('decodes a mapped answer in raw deflate or in stacked codings, as the one decoder does', async () => {
    const wrapped = { response: { candidates: [{ content: { role: 'model', parts: [{ text: 'zipped' }] } }] }, traceId: 't' };
    const plainAnswer = Buffer.from(JSON.stringify(wrapped));
    const answers: Array<[string, Buffer]> = [
      ['deflate', deflateRawSync(plainAnswer)],
      ['gzip, br', brotliCompressSync(gzipSync(plainAnswer))],
    ];
    for (const [encoding, body] of answers) {
      gemini.fake.failNextApi([{ status: 200, body, headers: { 'content-encoding': encoding, 'content-type': 'application/json' } }]);
      const res = await gemini.call('POST', '/proxy/gemini/v1beta/models/g:generateContent', { body: request, headers: headers() });
      expect(res.status, `${encoding}: ${res.text}`).toBe(200);
      expect(res.headers.get('content-encoding')).toBeNull();
      expect(res.json).toEqual(wrapped.response);
    }
  });

  it('wrote no secret to any log line', () => {
    for (const line of [...openai.logLines, ...gemini.logLines]) for (const secret of secretsSeen) expect(line).not.toContain(secret);
  });
});
