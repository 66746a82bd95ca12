// PostgreSQL stops for a minute under a running Maestro: an API and a worker as child processes,
// the Temporal dev server, a private embedded PostgreSQL that the test stops and starts again.
//   - the proxy keeps serving tokens it has cached (a steady stream needs no database);
//   - what does need the database answers 503 with Retry-After, never 500;
//   - a refresh that falls due during the outage retries and succeeds once the database is back;
//   - a refresh whose provider answer arrives while the database is down keeps the new tokens
//     until it can write them (the provider has already spent the old refresh token), and its
//     caller is answered within the refresh-wait bound meanwhile.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { killAllChildren } from '../support/children.js';
import { startDevServer, startOwnPostgres, type DevServer, type OwnPostgres } from '../support/processes.js';
import { sleep, until } from '../support/wait.js';
import { knownSecrets, proxiedMessage, startRig, type ApiChild, type Rig } from './rig.js';

let dev: DevServer;
let pgServer: OwnPostgres;
let rig: Rig;
let api: ApiChild;

beforeAll(async () => {
  [dev, pgServer] = await Promise.all([startDevServer(inject('temporalCliPath')), startOwnPostgres()]);
  rig = await startRig({ dev, dbUrl: pgServer.url, fake: { accessTokenTtlSec: 3600 } });
  await rig.startWorker();
  api = await rig.startApi();
});
afterAll(async () => {
  if (pgServer && !pgServer.up) await pgServer.start().catch(() => {});
  await rig?.close();
  await dev?.close();
  await killAllChildren();
  await pgServer?.close();
});

describe('PostgreSQL stopped for a minute', () => {
  it('serves cached tokens, answers 503 + Retry-After where it needs the database, and refreshes once it is back', async () => {
    const OUTAGE_MS = 60_000;
    // warm: used before the outage, so the API has its token cached.
    const warm = await rig.importOAuth({ name: 'default', lifetimeMs: 3600_000 });
    // cold: never used before the outage.
    const cold = await rig.importOAuth({ name: 'cold', lifetimeMs: 3600_000 });
    // inflight: its refresh is at the provider when the database stops; the answer comes back during the outage.
    const inflight = await rig.importOAuth({ name: 'inflight', lifetimeMs: 3600_000 });
    expect((await proxiedMessage(api)).status).toBe(200);
    expect(rig.fake.apiRequests().at(-1)!.headers.authorization).toBe(`Bearer ${warm.accessToken}`);

    rig.gate.mode = 'hold';
    const inflightStarted = Date.now();
    const inflightRefresh = rig.core.workflows.refreshNow(inflight.id).then(
      (view) => ({ view, ms: Date.now() - inflightStarted }),
      (error: Error) => ({ error, ms: Date.now() - inflightStarted }),
    );
    await until(() => rig.gate.held === 1, { what: 'the in-flight refresh to reach the token endpoint' });
    // due: its refresh falls due about 15 s into the outage (a 30-second token refreshes halfway).
    const due = await rig.importOAuth({ name: 'due', lifetimeMs: 2 * 17_000 });
    await until(async () => (await rig.core.workflows.status(due.id))?.phase === 'sleeping', {
      what: 'the due credential to be scheduled',
    });

    // short: cached before the outage; its token expires 30 s into it (its refresh at 15 s fails).
    await rig.importOAuth({ name: 'short', lifetimeMs: 30_000 });
    expect((await proxiedMessage(api, 'short')).status).toBe(200);

    await pgServer.stop();
    const downAt = Date.now();
    // A request on the expired cached token needs a refresh, which needs the database.
    const expiredProbe = (async () => {
      await sleep(33_000);
      const started = Date.now();
      const res = await proxiedMessage(api, 'short');
      return {
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        waitedMs: Date.now() - started,
        sentAfterMs: started - downAt,
      };
    })();
    rig.gate.mode = 'open';
    rig.gate.release(); // the provider rotates the in-flight token now; the worker cannot store it yet

    const statuses: Record<string, number[]> = {
      cachedProxy: [],
      uncachedProxy: [],
      list: [],
      create: [],
      get: [],
      readyz: [],
      healthz: [],
      metrics: [],
    };
    const missingRetryAfter: string[] = [];
    const bodies: string[] = [];
    const record = (what: string, res: { status: number; headers: Headers; text: string }) => {
      statuses[what]!.push(res.status);
      bodies.push(res.text);
      if (res.status === 503 && !res.headers.get('retry-after') && what !== 'readyz') missingRetryAfter.push(what);
    };
    while (Date.now() - downAt < OUTAGE_MS) {
      const started = Date.now();
      record('cachedProxy', await proxiedMessage(api));
      record('uncachedProxy', await proxiedMessage(api, 'cold'));
      record('list', await api.call('GET', '/v1/credentials'));
      record('get', await api.call('GET', `/v1/credentials/${cold.id}`));
      record(
        'create',
        await api.call('POST', '/v1/credentials', {
          body: { provider: 'anthropic', authType: 'api_key', name: 'during-outage', apiKey: 'sk-ant-api03-outage-0123456789' },
        }),
      );
      const readyz = await fetch(`${api.url}/readyz`);
      record('readyz', { status: readyz.status, headers: readyz.headers, text: await readyz.text() });
      const healthz = await fetch(`${api.url}/healthz`);
      record('healthz', { status: healthz.status, headers: healthz.headers, text: await healthz.text() });
      const metrics = await fetch(`${api.url}/metrics`);
      record('metrics', { status: metrics.status, headers: metrics.headers, text: await metrics.text() });
      await sleep(Math.max(0, 5_000 - (Date.now() - started)));
    }
    await pgServer.start();
    const upAt = Date.now();
    const probe = await expiredProbe;
    console.log(
      `[postgresOutage] expired cached token, sent ${probe.sentAfterMs} ms into the outage: ${probe.status} after ${probe.waitedMs} ms (retry-after ${probe.retryAfter})`,
    );
    // Its refresh wait is bounded (MAESTRO_REFRESH_WAIT_MS, 20 s): 503 + Retry-After, never a 500 or a hang.
    expect([200, 503]).toContain(probe.status);
    expect(probe.waitedMs).toBeLessThan(30_000);
    if (probe.status === 503) expect(Number(probe.retryAfter)).toBeGreaterThan(0);

    // During the outage: cached tokens served, everything else 503 with Retry-After, nothing 500.
    console.log(`[postgresOutage] statuses during the outage: ${JSON.stringify(statuses)}`);
    expect(new Set(statuses.cachedProxy)).toEqual(new Set([200]));
    expect(new Set(statuses.healthz)).toEqual(new Set([200]));
    expect(new Set(statuses.readyz)).toEqual(new Set([503]));
    for (const what of ['uncachedProxy', 'list', 'get', 'create']) expect(new Set(statuses[what]), what).toEqual(new Set([503]));
    expect(
      statuses.metrics!.every((s) => s === 200 || s === 503),
      `metrics: ${statuses.metrics}`,
    ).toBe(true);
    expect(missingRetryAfter).toEqual([]);
    expect(statuses.cachedProxy!.length).toBeGreaterThanOrEqual(10);

    // Back: the due refresh retried and succeeded, the in-flight one kept its tokens, cold works.
    await until(async () => (await rig.core.store.get(due.id)).refreshCount >= 1, {
      timeoutMs: 150_000,
      intervalMs: 1_000,
      what: 'the refresh that fell due during the outage',
    });
    // Its caller was answered within the bound ("still being refreshed" while the database was down).
    const outcome = await inflightRefresh;
    expect(outcome.ms).toBeLessThan(30_000);
    if ('error' in outcome) expect(outcome.error.message).toMatch(/still being refreshed|within/);
    const recovered = await until(
      async () => {
        const r = await proxiedMessage(api, 'cold');
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 30_000, what: 'the cold credential to be served' },
    );
    expect(recovered.status).toBe(200);
    console.log(`[postgresOutage] due refresh done ${Math.round((Date.now() - upAt) / 1000)} s after the database came back`);

    for (const c of [warm, cold, inflight, due]) {
      const { metadata, secret } = await rig.core.store.getWithSecret(c.id);
      expect(metadata.status, c.name).toBe('active');
      expect(rig.fake.reusedRefreshTokens).toEqual([]);
      // Whatever the provider issued last for this credential is what is stored.
      const chain = new Map(rig.gate.calls.filter((x) => x.status === 200).map((x) => [x.presented, x.issuedRefreshToken]));
      let last = c.refreshToken;
      while (chain.has(last)) last = chain.get(last)!;
      expect(secret.refreshToken, c.name).toBe(last);
    }
    expect((await rig.core.store.get(inflight.id)).refreshCount).toBe(1);
    expect(await rig.core.store.find('anthropic', 'during-outage')).toBeUndefined();

    // No stack trace or secret in anything the API answered or either process logged.
    const secrets = knownSecrets(rig);
    const everything = [...bodies, ...rig.logLines()].join('\n');
    for (const s of secrets) expect(everything).not.toContain(s);
    expect(bodies.join('\n')).not.toMatch(/\bat .+\.(ts|js):\d+/);
  });
});
