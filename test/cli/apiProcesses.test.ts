// `maestro api` with MAESTRO_API_PROCESSES=2, as an operator runs it, against a real PostgreSQL and
// the Temporal dev server: one line once both processes listen on one (random) port, connections
// answered by both, a SIGKILLed process replaced while the other keeps answering, and SIGTERM to
// the primary stops everything with exit 0. Which process answered comes from the `pid` of the
// request log lines; the processes' own pids from the primary's "API process listening" lines.
// (More than 5 exits a minute stopping everything is not run here: each start takes seconds.)
// When the primary dies (SIGKILL, OOM) or the terminal closes (SIGHUP to the whole group), the API
// processes stop gracefully by themselves: the call in flight is answered and its usage written.
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { proxiedMessage, startRig, type Rig } from '../faults/rig.js';
import { killAllChildren, spawnMaestro, type ChildHandle } from '../support/children.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { callApi, rawRequest } from '../support/http.js';
import { freePort, startDevServer, type DevServer } from '../support/processes.js';
import { TEST_API_KEY, TEST_ENCRYPTION_KEYS } from '../support/temporal.js';
import { until } from '../support/wait.js';

let dev: DevServer;
let testDb: TestDatabase;
let rig: Rig | undefined;
beforeAll(async () => {
  // Not migrated: both API processes migrate the fresh database at once.
  [dev, testDb] = await Promise.all([startDevServer(inject('temporalCliPath')), createTestDatabase({ migrate: false })]);
});
afterAll(async () => {
  await rig?.close();
  await killAllChildren();
  await dev?.close();
  await testDb?.close();
});

type LogLine = { pid?: number; msg?: string; apiPid?: number; port?: number; signal?: string; req?: { url?: string } };
const json = (child: ChildHandle): LogLine[] =>
  child.lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it('runs two API processes behind one port, replaces one that is killed, and stops them all on SIGTERM', async () => {
  const metricsPort = await freePort();
  const api = spawnMaestro('api', {
    MAESTRO_ENV: 'production',
    MAESTRO_API_PROCESSES: '2',
    DATABASE_URL: testDb.url,
    TEMPORAL_ADDRESS: dev.address,
    MAESTRO_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
    MAESTRO_API_KEYS: TEST_API_KEY,
    HOST: '127.0.0.1',
    PORT: '0',
    MAESTRO_METRICS_PORT: String(metricsPort), // shared too; its listener must not count as an API one
    LOG_LEVEL: 'info',
  });
  const line = await api.waitForLine(/API listening/, 60_000);
  const port = Number(/^Maestro API listening on http:\/\/127\.0\.0\.1:(\d+) \(2 processes\)$/.exec(line)?.[1]);
  expect(port, line).toBeGreaterThan(0);
  const listening = () => json(api).filter((l) => l.msg === 'API process listening');
  // PORT=0: both took the primary's one random port.
  expect(listening().map((l) => l.port)).toEqual([port, port]);
  const [first, second] = listening().map((l) => l.apiPid!);
  expect(new Set([first, second, api.pid]).size).toBe(3);
  expect((await rawRequest(metricsPort, { path: '/metrics' })).text).toMatch(/^maestro_process_\w+ \d/m);

  // Each request on a connection of its own (round-robin hands out connections, not requests).
  let sent = 0;
  const requests = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const path = Math.floor(i / 2) % 2 ? '/healthz' : '/v1/credentials'; // pairs: each process serves both
      const answer = await rawRequest(port, { path, headers: { authorization: `Bearer ${TEST_API_KEY}` } });
      expect(answer.status, `${path}: ${answer.text}`).toBe(200);
      expect(answer.json).toEqual(path === '/healthz' ? { status: 'ok' } : { credentials: [], nextCursor: null });
    }
    sent += n;
    // The pids of the last n request log lines (they may land a moment after the answers).
    const served = await until(() => {
      const lines = json(api).filter((l) => l.msg === 'request completed');
      return lines.length >= sent ? lines.slice(sent - n, sent) : undefined;
    });
    return new Set(served.map((l) => l.pid));
  };
  expect(await requests(20)).toEqual(new Set([first, second]));

  // SIGKILL one: the primary says so, the other answers meanwhile, and a new one takes its place.
  process.kill(first!, 'SIGKILL');
  await until(() => json(api).some((l) => l.apiPid === first && l.signal === 'SIGKILL' && /exited unexpectedly/.test(l.msg ?? '')), {
    what: 'the primary to notice the kill',
  });
  expect(await requests(4)).toEqual(new Set([second]));
  await until(() => listening().length === 3, { timeoutMs: 30_000, what: 'a replacement API process' });
  const third = listening()[2]!;
  expect(third.port).toBe(port);
  expect([first, second, api.pid]).not.toContain(third.apiPid);
  expect(await requests(10)).toEqual(new Set([second, third.apiPid]));

  // SIGTERM to the primary alone: it stops both processes and exits 0.
  const stopped = Date.now();
  process.kill(api.pid, 'SIGTERM');
  const exit = await Promise.race([api.exited, new Promise((resolve) => setTimeout(() => resolve('still running after 35 s'), 35_000))]);
  expect(exit).toEqual({ code: 0, signal: null });
  expect(Date.now() - stopped).toBeLessThan(35_000);
  for (const pid of [first!, second!, third.apiPid!]) expect(alive(pid), `API process ${pid}`).toBe(false);
  expect(api.output()).toMatch(/"msg":"stopping API processes"/);
  expect(
    json(api)
      .filter((l) => l.msg === 'shutting down')
      .map((l) => l.pid),
  ).toEqual(expect.arrayContaining([second, third.apiPid]));
  expect(api.output()).not.toContain(TEST_API_KEY);
}, 120_000);

/** `maestro api` with two processes on the rig's database and fake provider; its port and the two pids once both listen. */
async function startTwo(r: Rig) {
  const api = spawnMaestro('api', { ...r.env, MAESTRO_API_PROCESSES: '2', PORT: '0' });
  const line = await api.waitForLine(/API listening/, 60_000);
  const port = Number(/ on http:\/\/127\.0\.0\.1:(\d+) \(2 processes\)$/.exec(line)?.[1]);
  expect(port, line).toBeGreaterThan(0);
  const pids = json(api)
    .filter((l) => l.msg === 'API process listening')
    .map((l) => l.apiPid!);
  expect(pids).toHaveLength(2);
  return { api, pids, url: `http://127.0.0.1:${port}` };
}

async function requestsRecorded(r: Rig, credentialId: string): Promise<number> {
  const rows = await r.db.selectFrom('usage_hourly').select('requests').where('credential_id', '=', credentialId).execute();
  return rows.reduce((sum, row) => sum + Number(row.requests), 0);
}

it('the API processes stop gracefully by themselves when the primary is SIGKILLed, and all of them on SIGHUP', async () => {
  rig ??= await startRig({ dev, dbUrl: testDb.url, fake: { accessTokenTtlSec: 3600 } });
  const credential = await rig.importOAuth({ name: 'orphaned', lifetimeMs: 3600_000 });
  const call = (url: string) => proxiedMessage({ call: (method, path, opts) => callApi(url, method, path, opts) }, credential.name);

  // The primary dies hard while a proxied call is in flight: that call is still answered, its usage
  // is written, and both API processes stop on their own (a bounded wait) through the graceful path.
  const first = await startTwo(rig);
  rig.fake.setApiDelayMs(1_500);
  const sentBefore = rig.fake.apiRequests().length;
  const inFlight = call(first.url);
  await until(() => rig!.fake.apiRequests().length > sentBefore, { what: 'the call to reach the provider' });
  process.kill(first.api.pid, 'SIGKILL');
  expect((await first.api.exited).signal).toBe('SIGKILL');
  const answer = await inFlight;
  expect(answer.status, answer.text).toBe(200);
  rig.fake.setApiDelayMs(0);
  await until(() => first.pids.every((pid) => !alive(pid)), { timeoutMs: 40_000, what: 'the API processes to stop without their primary' });
  const stoppedGracefully = (child: ChildHandle) =>
    json(child)
      .filter((l) => l.msg === 'shutting down')
      .map((l) => l.pid);
  expect(stoppedGracefully(first.api).sort()).toEqual([...first.pids].sort());
  // Stopped by the graceful path itself, not by the bound that ends a stop that hangs.
  expect(first.api.output()).not.toMatch(/did not stop within/);
  expect(await requestsRecorded(rig, credential.id)).toBe(1);

  // A closed terminal: SIGHUP to the whole process group. Everyone stops gracefully, the primary with exit 0.
  const second = await startTwo(rig);
  expect((await call(second.url)).status).toBe(200);
  process.kill(-second.api.pid, 'SIGHUP');
  const exit = await Promise.race([
    second.api.exited,
    new Promise((resolve) => setTimeout(() => resolve('still running after 35 s'), 35_000)),
  ]);
  expect(exit).toEqual({ code: 0, signal: null });
  for (const pid of second.pids) expect(alive(pid), `API process ${pid}`).toBe(false);
  expect(stoppedGracefully(second.api).sort()).toEqual([...second.pids].sort());
  expect(await requestsRecorded(rig, credential.id)).toBe(2);
  expect(first.api.output() + second.api.output()).not.toContain(TEST_API_KEY);
}, 180_000);
