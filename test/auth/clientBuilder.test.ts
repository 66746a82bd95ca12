import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProviderCall } from '../../src/auth/clientBuilder.js';
import { CODEX_DEFAULT_INSTRUCTIONS } from '../../src/auth/backends/codex.js';
import { mapWhole } from '../../src/auth/backends/sse.js';
import { prependSystemBlock } from '../../src/auth/systemBlock.js';
import { ValidationError } from '../../src/errors.js';
import { ANTHROPIC_DEFAULTS, CLAUDE_CODE_SYSTEM_PROMPT } from '../../src/providers/anthropic.js';
import { GEMINI_CLI_USER_AGENT } from '../../src/providers/gemini.js';
import { CODEX_USER_AGENT } from '../../src/providers/openai.js';
import { defineProvider } from '../../src/providers/registry.js';
import type { ProviderDefinition } from '../../src/providers/types.js';
import { sendProviderCall, startFakeProvider, type FakeProvider } from '../support/fakeProvider.js';

const CC = CLAUDE_CODE_SYSTEM_PROMPT;

/** What a provider received, without what the HTTP client itself adds (host, content-length, connection). */
const received = (headers: Record<string, unknown>) => {
  const { host: _host, 'content-length': _length, connection: _connection, ...rest } = headers;
  return rest;
};

/** An OpenAI / Google SDK's own headers: its identity, its organisation and project, and where the end user is. */
const sdkClientHeaders = {
  'content-type': 'application/json',
  accept: 'application/json',
  'accept-encoding': 'gzip, br',
  'user-agent': 'OpenAI/Python 1.99.9',
  'x-stainless-lang': 'python',
  'x-stainless-package-version': '1.99.9',
  'x-stainless-os': 'Linux',
  'openai-organization': 'org-client',
  'openai-project': 'proj_client',
  'x-goog-user-project': 'client-billing-project',
  'x-goog-api-client': 'gl-python/3.12 genai/1.0',
  'x-request-id': 'req-1',
  'cf-connecting-ip': '10.0.0.1',
  'x-forwarded-for': '10.0.0.1',
  via: '1.1 edge.example',
};

/** Everything a client might send that must never reach a provider, plus a few that must. */
const hostileClientHeaders = {
  host: 'maestro.local:3000',
  authorization: 'Bearer msk_client_maestro_key_1234567890',
  'x-api-key': 'msk_client_maestro_key_1234567890',
  'x-goog-api-key': 'msk_client_maestro_key_1234567890',
  cookie: 'session=abc',
  connection: 'keep-alive, X-Custom-Hop',
  'x-custom-hop': 'hop-value',
  'keep-alive': 'timeout=5',
  'proxy-authorization': 'Basic Zm9vOmJhcg==',
  'proxy-connection': 'keep-alive',
  te: 'trailers',
  trailer: 'x-checksum',
  'transfer-encoding': 'chunked',
  upgrade: 'h2c',
  'content-length': '999',
  expect: '100-continue',
  'x-maestro-credential': 'default',
  'x-maestro-anything': 'x',
  'x-forwarded-for': '10.0.0.1',
  'x-forwarded-host': 'maestro.example',
  forwarded: 'for=10.0.0.1',
  // Where the end user is, as CDNs and proxies spell it: none of the provider's business.
  'x-real-ip': '10.0.0.1',
  'cf-connecting-ip': '10.0.0.1',
  'true-client-ip': '10.0.0.1',
  'x-client-ip': '10.0.0.1',
  'x-cluster-client-ip': '10.0.0.1',
  'fastly-client-ip': '10.0.0.1',
  'client-ip': '10.0.0.1',
  via: '1.1 edge.example',
  'content-type': 'application/json',
  accept: 'application/json',
  'accept-encoding': 'gzip, br',
  'x-stainless-lang': 'js',
  'x-request-id': ['a', 'b'],
  'x-undefined': undefined,
} satisfies Record<string, string | string[] | undefined>;

/** What survives from hostileClientHeaders (before provider-specific headers). */
const keptClientHeaders = {
  'content-type': 'application/json',
  accept: 'application/json',
  'accept-encoding': 'gzip, br',
  'x-stainless-lang': 'js',
  'x-request-id': 'a, b',
};

describe('buildProviderCall: Anthropic', () => {
  let fake: FakeProvider;
  let def: ProviderDefinition;
  let accessToken: string;
  beforeAll(async () => {
    fake = await startFakeProvider({ provider: 'anthropic' });
    def = defineProvider('anthropic', fake.overrides);
    accessToken = 'sk-ant-oat01-seeded-access-token';
    fake.seedTokens('sk-ant-ort01-seeded', accessToken);
  });
  afterAll(() => fake.close());

  it('API key: x-api-key and anthropic-version, client headers filtered, client betas kept as sent', async () => {
    const call = buildProviderCall(def, {
      auth: { type: 'api_key', apiKey: fake.apiKey },
      method: 'POST',
      path: '/v1/messages',
      search: '',
      clientHeaders: { ...hostileClientHeaders, 'anthropic-beta': 'tools-2024-04-04', 'user-agent': 'my-sdk/1.0' },
    });
    expect(call.url.toString()).toBe(`${fake.url}/v1/messages`);
    expect(call.headers).toEqual({
      ...keptClientHeaders,
      'anthropic-beta': 'tools-2024-04-04',
      'user-agent': 'my-sdk/1.0',
      'anthropic-version': '2023-06-01',
      'x-api-key': fake.apiKey,
    });
    expect(call.transformBody).toBeUndefined();

    const res = await sendProviderCall(call, { body: { model: 'claude-x', max_tokens: 5, messages: [] } });
    expect(res.status).toBe(200);
    expect(res.headers['x-fake-auth']).toBe('api_key');
    const seen = fake.apiRequests().at(-1)!;
    expect(seen.method).toBe('POST');
    expect(seen.path).toBe('/v1/messages');
    expect(seen.headers['x-api-key']).toBe(fake.apiKey);
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen.headers.cookie).toBeUndefined();
    expect(seen.headers['x-maestro-credential']).toBeUndefined();
    expect(seen.headers['x-custom-hop']).toBeUndefined();
    expect(seen.json).toEqual({ model: 'claude-x', max_tokens: 5, messages: [] });
  });

  it("keeps the client's anthropic-version when it sent one", () => {
    const call = buildProviderCall(def, {
      auth: { type: 'api_key', apiKey: 'k' },
      method: 'POST',
      path: '/v1/messages',
      clientHeaders: { 'anthropic-version': '2099-01-01' },
    });
    expect(call.headers['anthropic-version']).toBe('2099-01-01');
  });

  it('OAuth: bearer, no x-api-key, oauth beta merged first with the client betas (deduplicated, order kept), user-agent and x-app', async () => {
    const call = buildProviderCall(def, {
      auth: { type: 'oauth', accessToken },
      method: 'POST',
      path: '/v1/messages',
      search: '?beta=true',
      clientHeaders: {
        ...hostileClientHeaders,
        'anthropic-beta': 'tools-2024-04-04, oauth-2025-04-20,prompt-caching-2024-07-31,tools-2024-04-04',
        'user-agent': 'my-sdk/1.0',
        'x-app': 'someone-else',
      },
    });
    expect(call.url.toString()).toBe(`${fake.url}/v1/messages?beta=true`);
    expect(call.headers).toEqual({
      ...keptClientHeaders,
      'anthropic-beta': 'oauth-2025-04-20,tools-2024-04-04,prompt-caching-2024-07-31',
      'anthropic-version': '2023-06-01',
      authorization: `Bearer ${accessToken}`,
      'user-agent': ANTHROPIC_DEFAULTS.userAgent,
      'x-app': 'cli',
    });
    expect(call.headers['x-api-key']).toBeUndefined();
    expect(call.transformBody).toBeTypeOf('function');

    const res = await sendProviderCall(call, { body: { model: 'claude-x', system: 'Be terse.', messages: [] } });
    expect(res.status).toBe(200);
    expect(res.headers['x-fake-auth']).toBe('oauth');
    const seen = fake.apiRequests().at(-1)!;
    expect(seen.search).toBe('?beta=true');
    expect(seen.headers.authorization).toBe(`Bearer ${accessToken}`);
    expect(seen.headers['x-api-key']).toBeUndefined();
    expect(seen.headers['anthropic-beta']).toBe('oauth-2025-04-20,tools-2024-04-04,prompt-caching-2024-07-31');
    expect(seen.headers['user-agent']).toBe(ANTHROPIC_DEFAULTS.userAgent);
    expect(seen.headers['x-app']).toBe('cli');
    expect(seen.json).toEqual({
      model: 'claude-x',
      system: [
        { type: 'text', text: CC },
        { type: 'text', text: 'Be terse.' },
      ],
      messages: [],
    });
  });

  it('OAuth with no client betas still carries the oauth beta', () => {
    const call = buildProviderCall(def, { auth: { type: 'oauth', accessToken }, method: 'GET', path: '/v1/models', clientHeaders: {} });
    expect(call.headers).toEqual({
      'anthropic-beta': 'oauth-2025-04-20',
      'anthropic-version': '2023-06-01',
      authorization: `Bearer ${accessToken}`,
      'user-agent': ANTHROPIC_DEFAULTS.userAgent,
      'x-app': 'cli',
    });
    expect(call.transformBody).toBeUndefined();
  });

  it("OAuth: Claude Code's own user agent reaches Anthropic as it sent it; other clients get the configured one", async () => {
    const claudeCode = 'claude-cli/2.1.332 (external, cli)';
    const send = async (d: ProviderDefinition, userAgent: string) => {
      const call = buildProviderCall(d, {
        auth: { type: 'oauth', accessToken },
        method: 'POST',
        path: '/v1/messages',
        clientHeaders: { 'content-type': 'application/json', 'user-agent': userAgent },
      });
      expect((await sendProviderCall(call, { body: { model: 'claude-x', messages: [] } })).status).toBe(200);
      return fake.apiRequests().at(-1)!.headers['user-agent'];
    };
    expect(await send(def, claudeCode)).toBe(claudeCode);
    expect(await send(def, 'my-sdk/1.0')).toBe(ANTHROPIC_DEFAULTS.userAgent);
    // A configured user agent is for the other clients too; Claude Code keeps its own.
    const custom = defineProvider('anthropic', { ...fake.overrides, userAgent: 'claude-cli/9.9.9 (external, cli)' });
    expect(await send(custom, claudeCode)).toBe(claudeCode);
    expect(await send(custom, 'my-sdk/1.0')).toBe('claude-cli/9.9.9 (external, cli)');
    // The default names a Claude Code release in Claude Code's own format.
    expect(ANTHROPIC_DEFAULTS.userAgent).toMatch(/^claude-cli\/\d+\.\d+\.\d+ \(external, cli\)$/);
    expect(ANTHROPIC_DEFAULTS.userAgent).not.toBe('claude-cli/2.0.0 (external, cli)');
  });

  it('user-agent is configurable', () => {
    const custom = defineProvider('anthropic', { ...fake.overrides, userAgent: 'claude-cli/9.9.9 (external, cli)' });
    const call = buildProviderCall(custom, {
      auth: { type: 'oauth', accessToken },
      method: 'POST',
      path: '/v1/messages',
      clientHeaders: {},
    });
    expect(call.headers['user-agent']).toBe('claude-cli/9.9.9 (external, cli)');
  });

  it('the fake refuses OAuth calls without the Claude Code block, so the transform is what makes them pass', async () => {
    const call = buildProviderCall(def, { auth: { type: 'oauth', accessToken }, method: 'POST', path: '/v1/messages', clientHeaders: {} });
    const untransformed = await sendProviderCall({ ...call, transformBody: undefined }, { body: { messages: [] } });
    expect(untransformed.status).toBe(400);
    const transformed = await sendProviderCall(call, { body: { messages: [] } });
    expect(transformed.status).toBe(200);
  });

  it('only POST /v1/messages with OAuth gets the body transform', () => {
    const base = { clientHeaders: {}, auth: { type: 'oauth' as const, accessToken } };
    expect(buildProviderCall(def, { ...base, method: 'post', path: '/v1/messages' }).transformBody).toBeTypeOf('function');
    expect(buildProviderCall(def, { ...base, method: 'POST', path: '/v1/messages/count_tokens' }).transformBody).toBeUndefined();
    expect(buildProviderCall(def, { ...base, method: 'GET', path: '/v1/messages' }).transformBody).toBeUndefined();
    expect(
      buildProviderCall(def, { clientHeaders: {}, auth: { type: 'api_key', apiKey: 'k' }, method: 'POST', path: '/v1/messages' })
        .transformBody,
    ).toBeUndefined();
  });
});

describe('the Claude Code system block rule', () => {
  const run = (body: unknown) => JSON.parse(prependSystemBlock(Buffer.from(JSON.stringify(body)), CC).toString('utf8'));

  it('missing system → a single block', () => {
    expect(run({ model: 'm', messages: [] })).toEqual({ model: 'm', messages: [], system: [{ type: 'text', text: CC }] });
  });

  it('string system → array with the block first, then the string as its own block', () => {
    expect(run({ system: 'You are a pirate.' }).system).toEqual([
      { type: 'text', text: CC },
      { type: 'text', text: 'You are a pirate.' },
    ]);
  });

  it('string system equal to the block → one block, not two', () => {
    expect(run({ system: CC }).system).toEqual([{ type: 'text', text: CC }]);
  });

  it('already first → body returned byte for byte', () => {
    const raw = Buffer.from(
      JSON.stringify({
        system: [
          { type: 'text', text: CC, cache_control: { type: 'ephemeral' } },
          { type: 'text', text: 'x' },
        ],
      }),
    );
    expect(prependSystemBlock(raw, CC)).toBe(raw);
  });

  it('array without it → prepended', () => {
    expect(run({ system: [{ type: 'text', text: 'a' }] }).system).toEqual([
      { type: 'text', text: CC },
      { type: 'text', text: 'a' },
    ]);
  });

  it('present but not first → moved first, exactly once, attributes kept', () => {
    const out = run({
      system: [
        { type: 'text', text: 'a' },
        { type: 'text', text: CC, cache_control: { type: 'ephemeral' } },
        { type: 'text', text: 'b' },
      ],
    }).system as Array<{ text: string }>;
    expect(out).toEqual([
      { type: 'text', text: CC, cache_control: { type: 'ephemeral' } },
      { type: 'text', text: 'a' },
      { type: 'text', text: 'b' },
    ]);
    expect(out.filter((b) => b.text === CC)).toHaveLength(1);
  });

  it('applying it twice changes nothing the second time', () => {
    const once = prependSystemBlock(Buffer.from(JSON.stringify({ system: 'x' })), CC);
    expect(prependSystemBlock(once, CC)).toBe(once);
  });

  it('keeps every other byte as sent: integers past 2^53, key order, spacing, escapes', () => {
    const raw =
      '{ "model":"m",\n  "metadata": {"user_id": 12345678901234567890, "n": 1.10},\n  "system": "be \\u0062rief [ok] {fine}",\n  "messages": [{"role":"user","content":"x"}] }';
    const out = prependSystemBlock(Buffer.from(raw), CC).toString('utf8');
    expect(out).toBe(
      `{ "model":"m",\n  "metadata": {"user_id": 12345678901234567890, "n": 1.10},\n  "system": [${JSON.stringify({ type: 'text', text: CC })},{"type":"text","text":"be \\u0062rief [ok] {fine}"}],\n  "messages": [{"role":"user","content":"x"}] }`,
    );
    expect(JSON.parse(out).system[1].text).toBe('be brief [ok] {fine}');
    // Added when missing: up front, the rest untouched.
    expect(prependSystemBlock(Buffer.from('{"max_tokens": 9007199254740993}'), CC).toString()).toBe(
      `{"system":[${JSON.stringify({ type: 'text', text: CC })}],"max_tokens": 9007199254740993}`,
    );
    expect(prependSystemBlock(Buffer.from('{}'), CC).toString()).toBe(`{"system":[${JSON.stringify({ type: 'text', text: CC })}]}`);
  });

  it('moves array elements verbatim, and leaves one system when the client sent duplicates (the last, as JSON.parse reads it)', () => {
    const raw =
      '{"system":"old","model":"m","system":[{"type":"text","text":"a","n":18446744073709551616},{"type":"text","text":' +
      JSON.stringify(CC) +
      '}]}';
    const out = prependSystemBlock(Buffer.from(raw), CC).toString('utf8');
    expect(out).toBe(
      '{"model":"m","system":[{"type":"text","text":' + JSON.stringify(CC) + '},{"type":"text","text":"a","n":18446744073709551616}]}',
    );
    // Ours already first in the last duplicate: only the earlier duplicate goes.
    const firstOk = '{"system":"x","system":[{"type":"text","text":' + JSON.stringify(CC) + '}]}';
    expect(prependSystemBlock(Buffer.from(firstOk), CC).toString()).toBe('{"system":[{"type":"text","text":' + JSON.stringify(CC) + '}]}');
  });

  it('leaves non-JSON and non-object bodies unchanged', () => {
    for (const text of ['not json', '[1,2]', '"str"', 'null', '']) {
      const raw = Buffer.from(text);
      expect(prependSystemBlock(raw, CC)).toBe(raw);
    }
    const gz = Buffer.from([0x1f, 0x8b, 0x08, 0x00]);
    expect(prependSystemBlock(gz, CC)).toBe(gz);
  });
});

describe('buildProviderCall: OpenAI', () => {
  let fake: FakeProvider;
  let def: ProviderDefinition;
  beforeAll(async () => {
    fake = await startFakeProvider({ provider: 'openai' });
    def = defineProvider('openai', fake.overrides);
  });
  afterAll(() => fake.close());

  it('API key: Authorization Bearer <key>, client account header dropped', async () => {
    const call = buildProviderCall(def, {
      auth: { type: 'api_key', apiKey: fake.apiKey },
      method: 'POST',
      path: '/v1/chat/completions',
      clientHeaders: { ...hostileClientHeaders, 'chatgpt-account-id': 'acct_from_client', 'openai-organization': 'org-1' },
    });
    expect(call.headers).toEqual({ ...keptClientHeaders, 'openai-organization': 'org-1', authorization: `Bearer ${fake.apiKey}` });
    const res = await sendProviderCall(call, { body: { model: 'gpt', messages: [] } });
    expect(res.status).toBe(200);
    expect(res.headers['x-fake-auth']).toBe('api_key');
    const seen = fake.apiRequests().at(-1)!;
    expect(seen.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(seen.headers['chatgpt-account-id']).toBeUndefined();
  });

  it('OAuth (ChatGPT sign-in): POST /v1/responses goes to the Codex backend with its headers and body rules', async () => {
    const accessToken = 'oai-seeded-access';
    fake.seedTokens('rt_seed', accessToken);
    const call = buildProviderCall(def, {
      auth: { type: 'oauth', accessToken, accountId: fake.accountId },
      method: 'POST',
      path: '/v1/responses',
      clientHeaders: { 'content-type': 'application/json', 'chatgpt-account-id': 'acct_from_client', originator: 'someone' },
      body: Buffer.from(JSON.stringify({ model: 'gpt-5', input: 'hi', store: true })),
    });
    expect(call.url.toString()).toBe(`${fake.url}/backend-api/codex/responses`);
    expect(call.headers).toEqual({
      'content-type': 'application/json',
      'accept-encoding': 'identity',
      accept: 'text/event-stream',
      authorization: `Bearer ${accessToken}`,
      'chatgpt-account-id': fake.accountId,
      originator: 'codex_cli_rs',
      'user-agent': CODEX_USER_AGENT,
      'openai-beta': 'responses=experimental',
    });
    expect(JSON.parse(call.body!.toString())).toEqual({
      model: 'gpt-5',
      input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
      store: false,
      stream: true,
      instructions: CODEX_DEFAULT_INSTRUCTIONS,
    });
    expect(call.answer?.contentType).toBe('application/json');
    const res = await sendProviderCall(call, { body: call.body });
    expect(res.status).toBe(200);
    const mapped = JSON.parse((await mapWhole(res.body, call.answer!.transform())).toString());
    expect(mapped).toMatchObject({ object: 'response', status: 'completed', usage: { input_tokens: 12, output_tokens: 7 } });
  });

  it("OAuth (Codex): only the Codex CLI's own headers reach the backend, whatever an SDK sends beside them", async () => {
    const accessToken = 'oai-seeded-access-sdk';
    fake.seedTokens('rt_seed_sdk', accessToken);
    const build = (d: ProviderDefinition, clientHeaders: Record<string, string>) =>
      buildProviderCall(d, {
        auth: { type: 'oauth', accessToken, accountId: fake.accountId },
        method: 'POST',
        path: '/v1/responses',
        clientHeaders,
        body: Buffer.from(JSON.stringify({ model: 'gpt-5', input: 'hi' })),
      });
    const codexHeaders = {
      'content-type': 'application/json',
      'accept-encoding': 'identity',
      accept: 'text/event-stream',
      authorization: `Bearer ${accessToken}`,
      'chatgpt-account-id': fake.accountId,
      originator: 'codex_cli_rs',
      'openai-beta': 'responses=experimental',
    };
    const call = build(def, { ...sdkClientHeaders, session_id: 'sess-1', originator: 'someone' });
    expect((await sendProviderCall(call, { body: call.body })).status).toBe(200);
    expect(received(fake.apiRequests().at(-1)!.headers)).toEqual({
      ...codexHeaders,
      'user-agent': CODEX_USER_AGENT,
      session_id: 'sess-1', // the Codex CLI's conversation, for the backend's prompt cache
    });
    expect(CODEX_USER_AGENT).toMatch(/^codex_cli_rs\/\d+\.\d+\.\d+ \(/);

    // The Codex CLI itself keeps its own user agent; a configured one replaces every other client's.
    const codexCli = 'codex_cli_rs/0.171.0 (Mac OS 15.5.0; arm64) iTerm.app/3.6.1';
    expect(build(def, { 'user-agent': codexCli }).headers['user-agent']).toBe(codexCli);
    const custom = defineProvider('openai', { ...fake.overrides, userAgent: 'codex_cli_rs/9.9.9 (Linux; x86_64) unknown' });
    expect(build(custom, sdkClientHeaders).headers['user-agent']).toBe('codex_cli_rs/9.9.9 (Linux; x86_64) unknown');
    expect(build(custom, { 'user-agent': codexCli }).headers['user-agent']).toBe(codexCli);
  });

  it('OAuth: other OpenAI paths need an API key credential (400 before anything is sent); no account id, no account header', () => {
    const oauth = { type: 'oauth', accessToken: 't' } as const;
    expect(() =>
      buildProviderCall(def, { auth: oauth, method: 'POST', path: '/v1/chat/completions', clientHeaders: {}, body: Buffer.from('{}') }),
    ).toThrow(/needs an OpenAI API key credential/);
    const call = buildProviderCall(def, {
      auth: oauth,
      method: 'POST',
      path: '/v1/responses',
      clientHeaders: { 'chatgpt-account-id': 'acct_from_client' },
      body: Buffer.from('{"model":"m","input":[],"stream":true}'),
    });
    expect(call.headers['chatgpt-account-id']).toBeUndefined();
    expect(call.answer?.contentType).toBe('text/event-stream'); // streamed: the events pass as they come
  });

  it('a configured user-agent replaces the client one', () => {
    const custom = defineProvider('openai', { ...fake.overrides, userAgent: 'codex_cli_rs/0.1' });
    const call = buildProviderCall(custom, {
      auth: { type: 'api_key', apiKey: 'k' },
      method: 'POST',
      path: '/v1/chat/completions',
      clientHeaders: { 'user-agent': 'sdk/1' },
    });
    expect(call.headers['user-agent']).toBe('codex_cli_rs/0.1');
  });
});

describe('buildProviderCall: Gemini', () => {
  let fake: FakeProvider;
  let def: ProviderDefinition;
  beforeAll(async () => {
    fake = await startFakeProvider({ provider: 'gemini' });
    def = defineProvider('gemini', fake.overrides);
  });
  afterAll(() => fake.close());

  it('API key: x-goog-api-key; a ?key= from the client is removed, other parameters kept', async () => {
    const call = buildProviderCall(def, {
      auth: { type: 'api_key', apiKey: fake.apiKey },
      method: 'POST',
      path: '/v1beta/models/gemini-2.5-flash:generateContent',
      search: '?alt=json&key=msk_client_key&x=1',
      clientHeaders: hostileClientHeaders,
    });
    expect(call.url.toString()).toBe(`${fake.url}/v1beta/models/gemini-2.5-flash:generateContent?alt=json&x=1`);
    expect(call.headers).toEqual({ ...keptClientHeaders, 'x-goog-api-key': fake.apiKey });
    const res = await sendProviderCall(call, { body: { contents: [] } });
    expect(res.status).toBe(200);
    expect(res.headers['x-fake-auth']).toBe('api_key');
    const seen = fake.apiRequests().at(-1)!;
    expect(seen.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(seen.search).toBe('?alt=json&x=1');
    expect(seen.headers['x-goog-api-key']).toBe(fake.apiKey);
    expect(seen.headers.authorization).toBeUndefined();
  });

  it('OAuth (Gemini CLI sign-in): generateContent goes to Code Assist with {model, project, request}, the answer unwrapped', async () => {
    fake.seedTokens('1//seed', 'ya29.seeded');
    const call = buildProviderCall(def, {
      auth: { type: 'oauth', accessToken: 'ya29.seeded', project: fake.codeAssistProject },
      method: 'POST',
      path: '/v1beta/models/gemini-2.5-flash:generateContent',
      search: '?key=only',
      clientHeaders: { 'x-goog-api-key': 'msk_client', 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] })),
    });
    expect(call.url.toString()).toBe(`${fake.url}/v1internal:generateContent`);
    expect(call.headers).toEqual({
      'content-type': 'application/json',
      'accept-encoding': 'identity',
      authorization: 'Bearer ya29.seeded',
      'user-agent': GEMINI_CLI_USER_AGENT,
    });
    expect(JSON.parse(call.body!.toString())).toEqual({
      model: 'gemini-2.5-flash',
      project: fake.codeAssistProject,
      request: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
    });
    const res = await sendProviderCall(call, { body: call.body });
    expect(res.status).toBe(200);
    expect(res.headers['x-fake-auth']).toBeUndefined();
    const mapped = JSON.parse((await mapWhole(res.body, call.answer!.transform())).toString());
    expect(mapped.candidates[0].content.parts[0].text).toBe('Hello from the fake code assist');
    expect(mapped.response).toBeUndefined();
  });

  it('OAuth (Code Assist): no client x-goog-* header, SDK identity or end-user address reaches Code Assist', async () => {
    fake.seedTokens('1//seed-sdk', 'ya29.seeded-sdk');
    const build = (clientHeaders: Record<string, string>) =>
      buildProviderCall(def, {
        auth: { type: 'oauth', accessToken: 'ya29.seeded-sdk', project: fake.codeAssistProject },
        method: 'POST',
        path: '/v1beta/models/gemini-2.5-flash:generateContent',
        clientHeaders,
        body: Buffer.from(JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] })),
      });
    const call = build({ ...sdkClientHeaders, 'user-agent': 'google-genai-sdk/1.30.0 gl-node/v22' });
    expect((await sendProviderCall(call, { body: call.body })).status).toBe(200);
    expect(received(fake.apiRequests().at(-1)!.headers)).toEqual({
      'content-type': 'application/json',
      'accept-encoding': 'identity',
      authorization: 'Bearer ya29.seeded-sdk',
      'user-agent': GEMINI_CLI_USER_AGENT,
    });
    // The Gemini CLI itself keeps its own.
    const geminiCli = 'GeminiCLI/0.61.0/gemini-2.5-flash (darwin; arm64)';
    expect(build({ 'user-agent': geminiCli }).headers['user-agent']).toBe(geminiCli);
  });

  it('OAuth: streamGenerateContent always asks SSE; countTokens takes {request: {model, contents}}; other paths need an API key', () => {
    const auth = { type: 'oauth', accessToken: 'ya29.x', project: 'p-1' } as const;
    const body = Buffer.from('{"contents":[]}');
    const stream = buildProviderCall(def, {
      auth,
      method: 'POST',
      path: '/v1beta/models/g:streamGenerateContent',
      clientHeaders: {},
      body,
    });
    expect(stream.url.toString()).toBe(`${fake.url}/v1internal:streamGenerateContent?alt=sse`);
    expect(stream.answer?.contentType).toBe('application/json'); // no ?alt=sse: the public JSON array
    const count = buildProviderCall(def, { auth, method: 'POST', path: '/v1/models/g:countTokens', clientHeaders: {}, body });
    expect(JSON.parse(count.body!.toString())).toEqual({ request: { model: 'models/g', contents: [] } });
    expect(() => buildProviderCall(def, { auth, method: 'GET', path: '/v1beta/models', clientHeaders: {} })).toThrow(
      /needs a Gemini API key/,
    );
  });
});

describe('buildProviderCall: URLs stay on the provider origin', () => {
  const def = defineProvider('anthropic', { baseUrl: 'https://api.example.test/base/' });
  const build = (path: string, search = '') =>
    buildProviderCall(def, { auth: { type: 'api_key', apiKey: 'k' }, method: 'POST', path, search, clientHeaders: {} });

  it('joins base path and path', () => {
    expect(build('/v1/messages', '?a=b').url.toString()).toBe('https://api.example.test/base/v1/messages?a=b');
    expect(build('/v1beta/models/x:generateContent').url.toString()).toBe('https://api.example.test/base/v1beta/models/x:generateContent');
  });

  it.each([
    ['dot-dot segment', '/v1/../../admin'],
    ['trailing dot-dot', '/v1/..'],
    ['dot segment', '/v1/./messages'],
    ['encoded dot-dot', '/v1/%2e%2e/admin'],
    ['mixed encoded dot-dot', '/v1/.%2E/admin'],
    ['double-encoded dot-dot', '/v1/%252e%252e/admin'],
    ['encoded slash', '/v1%2f..%2fadmin'],
    ['encoded backslash', '/v1/%5c..%5cadmin'],
    ['backslash', '/v1\\..\\admin'],
    ['protocol-relative', '//evil.example/v1/messages'],
    ['double slash inside', '/v1//messages'],
    ['absolute URL', 'https://evil.example/v1/messages'],
    ['no leading slash', 'v1/messages'],
    ['userinfo trick', '@evil.example/v1'],
    ['query in path', '/v1/messages?x=1'],
    ['fragment in path', '/v1/messages#x'],
    ['whitespace', '/v1/mess ages'],
    ['control character', '/v1/\nmessages'],
    ['bad percent-encoding', '/v1/%zz'],
    ['empty', ''],
  ])('rejects %s', (_name, path) => {
    expect(() => build(path)).toThrow(ValidationError);
  });

  it('rejects a search that is not a query', () => {
    expect(() => build('/v1/messages', 'a=b')).toThrow(ValidationError);
    expect(() => build('/v1/messages', '?a=b#frag')).toThrow(ValidationError);
  });

  it('every accepted URL stays on the configured origin and base path', () => {
    for (const path of ['/v1/messages', '/a/b/c', '/%41bc', '/v1/models/claude@latest', '/x:y']) {
      const url = build(path).url;
      expect(url.origin).toBe('https://api.example.test');
      expect(url.pathname.startsWith('/base/')).toBe(true);
    }
  });

  it('refuses credentials that cannot be header values', () => {
    expect(() =>
      buildProviderCall(def, {
        auth: { type: 'api_key', apiKey: 'k\r\nx-evil: 1' },
        method: 'POST',
        path: '/v1/messages',
        clientHeaders: {},
      }),
    ).toThrow(ValidationError);
  });
});
