// The client most pool users bring: the real Claude Code CLI (devDependency, pinned) in front of a
// pool of three subscription accounts on the fake Anthropic (DESIGN.md "Pools"). A `claude -p`
// run is answered through one member and its session stays there; when that member's 5-hour
// window runs out, resuming the same session is served by another member with no error shown.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { killAllChildren, spawnChild } from '../support/children.js';
import { seedOAuthCredential } from '../support/credentials.js';
import type { RecordedRequest } from '../support/fakeProvider/wire.js';
import { createDevServerEnv } from '../support/temporal.js';

// The wrapper's own launcher: it finds the platform binary whether or not the package's postinstall ran.
const CLAUDE = createRequire(import.meta.url).resolve('@anthropic-ai/claude-code/cli-wrapper.cjs');
const NAMES = ['alice', 'bob', 'carol'] as const;

let env: TestWorkflowEnvironment;
let h: ApiHarness;
let clientKey: string;
let home: string;
let project: string;

beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env, {
    fake: {
      accounts: Object.fromEntries(
        NAMES.map((n) => [n, { token: `sk-ant-oat01-c${n}-0000000000`, refreshToken: `sk-ant-ort01-c${n}-0000000000` }]),
      ),
    },
  });
  for (const n of NAMES) await seedOAuthCredential(h, { tag: `c${n}`, name: n });
  const pool = await h.call('POST', '/v1/pools', {
    body: { name: 'team', provider: 'anthropic', members: NAMES.map((n) => ({ credential: n })) },
  });
  expect(pool.status, pool.text).toBe(201);
  const key = await h.call('POST', '/v1/keys', { body: { name: 'laptop', role: 'client', pools: ['team'] } });
  expect(key.status, key.text).toBe(201);
  clientKey = key.json.key as string;
  home = mkdtempSync(path.join(os.tmpdir(), 'maestro-cc-home-'));
  project = mkdtempSync(path.join(os.tmpdir(), 'maestro-cc-project-'));
}, 180_000);

afterAll(async () => {
  await killAllChildren();
  await h?.close();
  await env?.teardown();
  for (const dir of [home, project]) if (dir) rmSync(dir, { recursive: true, force: true });
});

interface ClaudeResult {
  code: number | null;
  output: string;
  json?: { is_error?: boolean; api_error_status?: unknown; result?: string; session_id?: string };
}

/** One `claude -p` run, as a user runs it against Maestro: base URL and the msk_ key, nothing else. */
async function claude(args: string[]): Promise<ClaudeResult> {
  const child = spawnChild('claude', process.execPath, [CLAUDE, ...args], {
    cwd: project,
    env: {
      HOME: home,
      ANTHROPIC_BASE_URL: `${h.url}/proxy/anthropic`,
      ANTHROPIC_API_KEY: clientKey,
      // Offline: no telemetry, error reports, update checks or other calls beside the API.
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_ERROR_REPORTING: '1',
      CI: '1',
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const exited = await Promise.race([
    child.exited,
    new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 120_000))),
  ]);
  clearTimeout(timer);
  if (!exited) await child.kill('SIGKILL');
  const output = child.output();
  const last = output.trim().split('\n').at(-1) ?? '';
  let json: ClaudeResult['json'];
  try {
    json = JSON.parse(last) as ClaudeResult['json'];
  } catch {
    json = undefined;
  }
  return { code: exited?.code ?? null, output, json };
}

const nameOfToken = (req: RecordedRequest) => NAMES.find((n) => String(req.headers.authorization).includes(`-c${n}-`));
const callsSince = (from: number) => h.fake.apiRequests().slice(from);
const sessionOfBody = (req: RecordedRequest) => {
  const userId = (req.json as { metadata?: { user_id?: string } } | undefined)?.metadata?.user_id;
  return userId === undefined ? undefined : (JSON.parse(userId) as { session_id?: string }).session_id;
};
const traffic = (calls: RecordedRequest[]) =>
  JSON.stringify(calls.map((r) => ({ path: r.path, member: nameOfToken(r), beta: r.headers['anthropic-beta'], json: r.json })));

it('answers claude -p through one member, and resumes the session on another when that member’s window runs out', async () => {
  const before = h.fake.apiRequests().length;
  const first = await claude(['-p', 'say hi', '--output-format', 'json']);
  const firstCalls = callsSince(before);
  expect(first.code, `${first.output}\n${traffic(firstCalls)}`).toBe(0);
  expect(first.json).toMatchObject({ is_error: false, api_error_status: null, result: 'chunk 0 chunk 1 chunk 2 chunk 3 chunk 4 ' });
  const sessionId = first.json?.session_id;
  expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);

  // Only /v1/messages reaches the provider (Claude Code's other call, a HEAD of the base URL, is
  // answered by Maestro); each carries the run's session in x-claude-code-session-id and in
  // metadata.user_id, which Maestro reads; all went to one member; the msk_ key never left Maestro.
  expect(firstCalls.length).toBeGreaterThan(0);
  for (const call of firstCalls) {
    expect(call.path).toBe('/v1/messages');
    expect(call.headers['x-claude-code-session-id']).toBe(sessionId);
    expect(sessionOfBody(call)).toBe(sessionId);
    expect(JSON.stringify(call.headers)).not.toContain(clientKey);
  }
  const members = new Set(firstCalls.map(nameOfToken));
  expect(members.size, traffic(firstCalls)).toBe(1);
  const member = [...members][0]!;
  expect(NAMES).toContain(member);

  h.fake.accounts.exhaust(member, { window: '5h', resetInSeconds: 3600 });
  const mark = h.fake.apiRequests().length;
  const served = Object.fromEntries(NAMES.map((n) => [n, h.fake.accounts.served(n)]));
  const second = await claude(['-p', 'say hi again', '--output-format', 'json', '--resume', sessionId!]);
  const secondCalls = callsSince(mark);
  expect(second.code, `${second.output}\n${traffic(secondCalls)}`).toBe(0);
  expect(second.json).toMatchObject({ is_error: false, api_error_status: null, session_id: sessionId });
  // Claude Code never retried (its retry counter stays 0 on every copy): the failover was Maestro's.
  for (const call of secondCalls)
    expect(call.headers).toMatchObject({ 'x-claude-code-session-id': sessionId, 'x-stainless-retry-count': '0' });
  // The exhausted member refused (its 429 never reached Claude Code); another member served.
  expect(h.fake.accounts.served(member)).toBe(served[member]);
  const others = NAMES.filter((n) => n !== member && h.fake.accounts.served(n) > served[n]!);
  expect(others, traffic(secondCalls)).toHaveLength(1);
  const pool = await h.call('GET', '/v1/pools/team');
  const events = (await h.call('GET', `/v1/pools/${pool.json.id}/events`)).json.events as Array<{ type: string }>;
  expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['cooldown_set', 'failover']));
  // Whatever else Claude Code asked Maestro (a HEAD of the base URL) was answered, never a 5xx.
  const proxied = h.logLines
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { req?: { method: string; url: string }; res?: { statusCode: number } })
    .filter((l) => l.req?.url.startsWith('/proxy/') && l.res);
  expect(proxied.filter((l) => l.res!.statusCode >= 500)).toEqual([]);
  expect(proxied.filter((l) => l.req!.method === 'POST').map((l) => [l.req!.url, l.res!.statusCode])).toEqual([
    ['/proxy/anthropic/v1/messages', 200],
    ['/proxy/anthropic/v1/messages', 200],
  ]);
}, 300_000);
