// `maestro api` with MAESTRO_API_PROCESSES=2, as an operator runs it, against a real PostgreSQL and
// the Temporal dev server: one line once both processes listen on one (random) port, connections
// answered by both, a SIGKILLed process replaced while the other keeps answering, and SIGTERM to
// the primary stops everything with exit 0. Which process answered comes from the `pid` of the
// request log lines; the processes' own pids from the primary's "API process listening" lines.
// (More than 5 exits a minute stopping everything is not run here: each start takes seconds.)
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { killAllChildren, spawnMaestro, type ChildHandle } from '../support/children.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { rawRequest } from '../support/http.js';
import { freePort, startDevServer, type DevServer } from '../support/processes.js';
import { TEST_API_KEY, TEST_ENCRYPTION_KEYS } from '../support/temporal.js';
import { until } from '../support/wait.js';

let dev: DevServer;
let testDb: TestDatabase;
beforeAll(async () => {
  // Not migrated: both API processes migrate the fresh database at once.
  [dev, testDb] = await Promise.all([startDevServer(inject('temporalCliPath')), createTestDatabase({ migrate: false })]);
});
afterAll(async () => {
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
      expect(answer.json).toEqual(path === '/healthz' ? { status: 'ok' } : { credentials: [] });
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
