// `npm run dev` as a user runs it: the whole local stack comes up, answers /healthz, serves the
// Temporal Web UI, has a worker polling, stops cleanly on Ctrl-C, and keeps its data.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { freePort } from '../support/processes.js';
import { runMaestro, type ChildHandle } from '../support/children.js';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'maestro-dev-test-'));
let child: ChildHandle | undefined;
afterAll(async () => {
  if (child?.running) await child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

async function startDev(ports: { api: number; temporal: number; ui: number }) {
  const started = Date.now();
  const dev = runMaestro(['dev'], {
    MAESTRO_DATA_DIR: dataDir,
    PORT: String(ports.api),
    MAESTRO_DEV_TEMPORAL_PORT: String(ports.temporal),
    MAESTRO_DEV_UI_PORT: String(ports.ui),
    MAESTRO_TEMPORAL_CLI_PATH: inject('temporalCliPath'),
    LOG_LEVEL: 'warn',
  });
  await dev.waitFor(/Maestro is running/, 90_000);
  return { dev, startupMs: Date.now() - started };
}

describe('npm run dev', () => {
  it('brings up the whole stack, stops on Ctrl-C, and keeps its data', async () => {
    const ports = { api: await freePort(), temporal: await freePort(), ui: await freePort() };
    const first = await startDev(ports);
    child = first.dev;
    expect(first.startupMs).toBeLessThan(60_000);
    const out = first.dev.output();
    const key = /API key:\s+(\S+)/.exec(out)?.[1];
    expect(key).toMatch(/^msk_dev_/);
    expect(out).toContain(`http://localhost:${ports.ui}`);

    const health = await fetch(`http://127.0.0.1:${ports.api}/healthz`);
    expect(health.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${ports.api}/readyz`)).status).toBe(200);
    const ui = await fetch(`http://127.0.0.1:${ports.ui}/`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toMatch(/<html/i);
    // The Web UI decodes Maestro's sealed payloads through the local API's /codec; only its own
    // origin, from this machine, is answered without a key.
    const settings = (await (await fetch(`http://127.0.0.1:${ports.ui}/api/v1/settings`)).json()) as { Codec?: { Endpoint?: string } };
    expect(settings.Codec?.Endpoint).toBe(`http://localhost:${ports.api}/codec`);
    const payload = JSON.stringify({
      payloads: [{ metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('{"a":1}').toString('base64') }],
    });
    const codecCall = (origin: string) =>
      fetch(`http://127.0.0.1:${ports.api}/codec/encode`, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/json' },
        body: payload,
      });
    expect((await codecCall(`http://localhost:${ports.ui}`)).status).toBe(200);
    expect((await codecCall('http://evil.example')).status).toBe(401);

    const connection = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
    const client = new Client({ connection });
    const queue = await client.workflowService.describeTaskQueue({
      namespace: 'default',
      taskQueue: { name: 'maestro' },
      taskQueueType: 1,
    });
    expect(queue.pollers?.length).toBeGreaterThan(0);

    const created = await fetch(`http://127.0.0.1:${ports.api}/v1/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        provider: 'anthropic',
        authType: 'oauth',
        name: 'kept',
        accessToken: 'sk-ant-oat01-devtest-abcdef',
        refreshToken: 'sk-ant-ort01-devtest-abcdef',
        expiresIn: 28800,
      }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    await connection.close();

    first.dev.proc.kill('SIGINT');
    expect((await first.dev.exited).code).toBe(0);
    // A quiet start and a quiet Ctrl-C: no SDK warnings (the refresh queue runs activities only by
    // design), nothing warned or failed while the stack stops in order.
    const all = first.dev.output();
    expect(all).not.toMatch(/No workflows registered/);
    const stopping = all.slice(all.indexOf('"shutting down"'));
    expect(stopping).not.toMatch(/"level":(40|50)|\[(WARN|ERROR)\]|refused/i);

    const second = await startDev(ports);
    child = second.dev;
    expect(/API key:\s+(\S+)/.exec(second.dev.output())?.[1]).toBe(key); // the same generated key
    // The credential and its workflow survived the restart (the workflow may still be finishing
    // the first read it started just before Ctrl-C).
    await vi.waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${ports.api}/v1/credentials/${id}`, { headers: { authorization: `Bearer ${key}` } });
        expect(res.status).toBe(200);
        const body = (await res.json()) as { name: string; workflow: { phase: string } | null };
        expect(body.name).toBe('kept');
        expect(body.workflow?.phase).toBe('sleeping');
      },
      { timeout: 45_000, interval: 500 },
    );
    second.dev.proc.kill('SIGINT');
    expect((await second.dev.exited).code).toBe(0);
  }, 240_000);
});

describe('start-up errors', () => {
  it('names DATABASE_URL in one clear line when Postgres is unreachable', async () => {
    const run = runMaestro(['api'], {
      DATABASE_URL: 'postgres://nobody:x@127.0.0.1:1/none',
      MAESTRO_DATA_DIR: dataDir,
      LOG_LEVEL: 'silent',
    });
    expect((await run.exited).code).toBe(1);
    const lines = run.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^maestro: cannot reach PostgreSQL at DATABASE_URL/);
  }, 60_000);

  it('names TEMPORAL_ADDRESS in one clear line when Temporal is unreachable', async () => {
    const run = runMaestro(['worker'], {
      DATABASE_URL: inject('postgresAdminUrl'),
      TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
      MAESTRO_DATA_DIR: dataDir,
      LOG_LEVEL: 'silent',
    });
    expect((await run.exited).code).toBe(1);
    const lines = run.output().trim().split('\n');
    expect(lines.at(-1)).toMatch(/^maestro: cannot reach Temporal at TEMPORAL_ADDRESS=127\.0\.0\.1:\d+/);
    expect(run.output()).not.toMatch(/\n\s+at /); // no stack trace
  }, 60_000);

  it('refuses to start in production without keys, naming the variable', async () => {
    const run = runMaestro(['api'], { NODE_ENV: 'production', MAESTRO_DATA_DIR: dataDir });
    expect((await run.exited).code).toBe(1);
    expect(run.output().trim()).toMatch(/^maestro: MAESTRO_ENCRYPTION_KEYS is required in production/);
  }, 60_000);

  it('rejects a malformed encryption key with a clear message', async () => {
    const run = runMaestro(['migrate'], { MAESTRO_ENCRYPTION_KEYS: 'k1:not-base64!!', MAESTRO_DATA_DIR: dataDir });
    expect((await run.exited).code).toBe(1);
    expect(run.output().trim()).toBe(
      'maestro: MAESTRO_ENCRYPTION_KEYS: key "k1" must be 32 bytes, base64-encoded (openssl rand -base64 32)',
    );
  }, 60_000);
});
