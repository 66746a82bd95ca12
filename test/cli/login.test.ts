// `maestro login <provider>` from a terminal, against a running API: prints the authorize URL,
// reads the pasted code, reports the stored credential. `maestro credentials` lists it.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { runMaestro } from '../support/children.js';
import { createDevServerEnv, TEST_API_KEY } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env);
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

it('logs in through the pasted code and lists the stored credential', async () => {
  const cliEnv = { MAESTRO_URL: h.url, MAESTRO_API_KEY: TEST_API_KEY, MAESTRO_ENV: 'test' };
  const login = runMaestro(['login', 'anthropic', '--name', 'terminal'], cliEnv, { stdin: true });
  await login.waitFor(/Paste the code/, 30_000);
  const url = /(http:\/\/127\.0\.0\.1:\d+\/oauth\/authorize\?\S+)/.exec(login.output())?.[1];
  expect(url).toBeDefined();
  const consent = h.fake.authorize(url!);
  login.proc.stdin!.end(`${consent.pasted}\n`);
  expect((await login.exited).code).toBe(0);
  expect(login.output()).toMatch(/Stored anthropic credential "terminal" \([0-9a-f-]{36}\), expires \d{4}-/);
  expect(login.output()).not.toContain(consent.code);

  const list = runMaestro(['credentials'], cliEnv);
  expect((await list.exited).code).toBe(0);
  expect(list.output()).toMatch(/anthropic\s+oauth\s+terminal\s+active/);

  const wrong = runMaestro(['credentials'], { ...cliEnv, MAESTRO_API_KEY: 'msk_wrong_0000000000000' });
  expect((await wrong.exited).code).toBe(1);
  expect(wrong.output().trim()).toBe('maestro: invalid Maestro API key');
}, 90_000);
