// Code Assist project discovery against a scripted server: the answers the fake Code Assist does
// not give (accounts that need a project, ineligible accounts, refusals), and the exact requests.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverCodeAssistProject } from '../../../src/auth/backends/codeAssistSetup.js';
import { ReauthRequiredError, ValidationError } from '../../../src/errors.js';
import { defineProvider } from '../../../src/providers/registry.js';
import { readAll } from '../../support/http.js';

let server: http.Server;
let answers: Array<{ status: number; body: unknown }> = [];
const seen: Array<{ method: string; path: string; body: unknown }> = [];
let def: ReturnType<typeof defineProvider>;
const TOKEN = 'ya29.setup-test-token-abcdefgh';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    void readAll(req).then((raw) => {
      seen.push({ method: req.method!, path: req.url!, body: raw.length ? JSON.parse(raw.toString()) : undefined });
      const next = answers.shift() ?? { status: 500, body: { error: { message: 'unscripted' } } };
      res.writeHead(next.status, { 'content-type': 'application/json' }).end(JSON.stringify(next.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  def = defineProvider('gemini', { oauthBaseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const script = (...list: Array<{ status: number; body: unknown }>) => {
  answers = list;
  seen.length = 0;
};

describe('discoverCodeAssistProject', () => {
  it('a tier that needs a project of its own: onboarded with the given project, as the Gemini CLI sends it', async () => {
    script(
      { status: 200, body: { allowedTiers: [{ id: 'standard-tier', isDefault: true, userDefinedCloudaicompanionProject: true }] } },
      { status: 200, body: { name: 'operations/op-1', done: false } },
      { status: 200, body: { name: 'operations/op-1', done: true, response: { cloudaicompanionProject: { id: 'my-proj' } } } },
    );
    await expect(discoverCodeAssistProject(def, TOKEN, { project: 'my-proj', pollIntervalMs: 1 })).resolves.toBe('my-proj');
    expect(seen.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /v1internal:loadCodeAssist',
      'POST /v1internal:onboardUser',
      'GET /v1internal/operations/op-1',
    ]);
    expect(seen[1]!.body).toEqual({
      tierId: 'standard-tier',
      cloudaicompanionProject: 'my-proj',
      metadata: { ideType: 'IDE_UNSPECIFIED', platform: 'PLATFORM_UNSPECIFIED', pluginType: 'GEMINI', duetProject: 'my-proj' },
    });
  });

  it('without a project such an account is a 400 that says what to do, or gives Google its reasons', async () => {
    script({ status: 200, body: { allowedTiers: [{ id: 'standard-tier', isDefault: true, userDefinedCloudaicompanionProject: true }] } });
    await expect(discoverCodeAssistProject(def, TOKEN)).rejects.toThrow(/import the credential with "project"/);
    script({
      status: 200,
      body: { currentTier: { id: 'free-tier' }, ineligibleTiers: [{ reasonMessage: 'Your account is not eligible' }] },
    });
    await expect(discoverCodeAssistProject(def, TOKEN)).rejects.toThrow(/Your account is not eligible/);
  });

  it('refusals: 401 needs a new login, 403 names the Gemini CLI restriction; the token never appears', async () => {
    script({ status: 401, body: { error: { message: `bad token ${TOKEN}` } } });
    const unauthorized = await discoverCodeAssistProject(def, TOKEN).catch((e: unknown) => e);
    expect(unauthorized).toBeInstanceOf(ReauthRequiredError);
    expect(String((unauthorized as Error).message)).not.toContain(TOKEN);
    script({ status: 403, body: { error: { message: 'The caller does not have permission' } } });
    const forbidden = await discoverCodeAssistProject(def, TOKEN).catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(ValidationError);
    expect((forbidden as Error).message).toMatch(/individual Google accounts/);
  });

  it('follows only operation names it can put in a path', async () => {
    script(
      { status: 200, body: { allowedTiers: [{ id: 'free-tier', isDefault: true }] } },
      { status: 200, body: { name: '../../evil', done: false } },
    );
    await expect(discoverCodeAssistProject(def, TOKEN, { pollIntervalMs: 1 })).rejects.toThrow(/cannot follow/);
    expect(seen).toHaveLength(2);
  });
});
