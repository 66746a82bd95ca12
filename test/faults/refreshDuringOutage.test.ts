// Token answers that arrive while PostgreSQL is down, with two real worker processes: the
// provider has rotated every one of those refresh tokens, so each answer must survive until it
// can be written — across Temporal retries on the other worker, and across a worker killed
// during the outage. Real processes: the Temporal dev server, a private embedded PostgreSQL the
// test stops for 40 s, two workers (`maestro worker`), a fake Anthropic that rotates strictly.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { killAllChildren } from '../support/children.js';
import { startDevServer, startOwnPostgres, type DevServer, type OwnPostgres } from '../support/processes.js';
import { sleep, until } from '../support/wait.js';
import { knownSecrets, startRig, type Rig } from './rig.js';

let dev: DevServer;
beforeAll(async () => {
  dev = await startDevServer(inject('temporalCliPath'));
});
afterAll(async () => {
  await dev?.close();
  await killAllChildren();
});

/** The refresh token each credential's chain ends in, from what the gate saw the provider answer. */
function lastIssued(rig: Rig, seed: string): string {
  const next = new Map(
    rig.gate.calls.filter((c) => c.status === 200 && c.presented && c.issuedRefreshToken).map((c) => [c.presented!, c.issuedRefreshToken!]),
  );
  let rt = seed;
  for (let guard = 0; next.has(rt) && guard < 10_000; guard++) rt = next.get(rt)!;
  return rt;
}

async function outage(opts: { restartWorkerDuringOutage: boolean }) {
  const pgServer: OwnPostgres = await startOwnPostgres();
  const rig = await startRig({ dev, dbUrl: pgServer.url, fake: { accessTokenTtlSec: 3600 } });
  try {
    const workers = [await rig.startWorker(), await rig.startWorker()];
    // Ten credentials fall due within seconds; their token calls are held at the gate (sent,
    // not yet answered) until the database is down.
    rig.gate.mode = 'hold';
    const credentials: Awaited<ReturnType<Rig['importOAuth']>>[] = [];
    for (let i = 0; i < 10; i++) credentials.push(await rig.importOAuth({ lifetimeMs: 2 * (3_000 + i * 300) }));
    await until(() => rig.gate.held === credentials.length, { timeoutMs: 60_000, what: 'every refresh to reach the token endpoint' });
    await pgServer.stop();
    const downAt = Date.now();
    rig.gate.mode = 'open';
    rig.gate.release(); // the provider rotates all ten now; nothing can be written yet
    await until(() => rig.gate.calls.filter((c) => c.status === 200).length === credentials.length, {
      timeoutMs: 30_000,
      what: 'the provider to answer',
    });
    if (opts.restartWorkerDuringOutage) {
      await sleep(8_000);
      await workers[0]!.kill('SIGKILL'); // its attempts die with it; Temporal retries them on the other worker
    }
    await sleep(Math.max(0, 40_000 - (Date.now() - downAt)));
    await pgServer.start();
    // The killed worker comes back (it needs the database to start).
    if (opts.restartWorkerDuringOutage) workers[0] = await rig.startWorker();

    await until(
      async () => {
        for (const c of credentials) if ((await rig.core.store.get(c.id)).refreshCount < 1) return false;
        return true;
      },
      { timeoutMs: 180_000, intervalMs: 1_000, what: 'every answered refresh to be stored' },
    );
    for (const c of credentials) {
      const { metadata, secret } = await rig.core.store.getWithSecret(c.id);
      expect(metadata.status, c.name).toBe('active');
      expect(secret.refreshToken, c.name).toBe(lastIssued(rig, c.refreshToken));
    }
    const answered = rig.gate.calls.filter((c) => c.status === 200).length;
    console.log(
      `[refreshDuringOutage] restart=${opts.restartWorkerDuringOutage}: ${credentials.length} answered during a ${Math.round((Date.now() - downAt) / 1000)} s outage window, ${answered} token answers in all, ${rig.fake.reusedRefreshTokens.length} reused, ${rig.gate.calls.filter((c) => c.fate === 'lost').length} lost in transit`,
    );
    expect(rig.fake.reusedRefreshTokens).toEqual([]);
    expect(rig.gate.calls.filter((c) => c.fate === 'lost')).toEqual([]);
    expect(answered).toBe(credentials.length); // nothing was presented again
    const logs = rig.logLines().join('\n');
    for (const s of knownSecrets(rig)) expect(logs).not.toContain(s);
  } finally {
    await rig.close();
    await pgServer.close();
  }
}

describe('token answers while PostgreSQL is down, two workers', () => {
  it('40 s outage: every answer is stored once the database is back, none lost, none reused', () =>
    outage({ restartWorkerDuringOutage: false }));
  it('40 s outage with a worker SIGKILLed during it: still none lost, none reused', () => outage({ restartWorkerDuringOutage: true }));
});
