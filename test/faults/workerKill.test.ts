// The worker is SIGKILLed in the middle of refreshes, again and again: a real Temporal dev server,
// real PostgreSQL, the worker as a child process (`node --import tsx src/cli/main.ts worker`), and
// a fake Anthropic token endpoint that rotates refresh tokens and rejects a reused one. A gate in
// front of the token endpoint sees every call (what was presented, what was issued, whether the
// answer reached the worker), and lets the test choose the moment of each kill.
//
// What survives a kill -9 is decided by where it lands relative to the provider's answer:
//   - while the call is in flight and the provider has not processed it: nothing was spent; the
//     retried activity presents the same refresh token again, which is still valid. (The fake,
//     like a server that notices its client went away, abandons the call. The gate holds calls
//     before they reach the provider and drops those whose worker died, including requests still
//     in transit at the moment of the kill.)
//   - after the new tokens were committed: the retried activity sees the version moved and does
//     not call the token endpoint again (DESIGN.md, "Why the refresh activity reads the version");
//   - after the answer arrived and was recorded (sealed, in the write-ahead row and the activity's
//     heartbeat details) but before the commit: the retried activity, on any worker, stores the
//     recorded answer instead of calling the provider again;
//   - after the provider processed the call but before its answer reached the worker (or in the
//     millisecond before it is recorded): the new refresh token never reached Maestro. Nobody can
//     close that window (the provider has already spent the old token); the last test pins down
//     what happens in it. A provider that completes a call whose client died puts the whole
//     token call inside this window.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CREDENTIAL_CHANGES_CHANNEL } from '../../src/db/changes.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { killAllChildren } from '../support/children.js';
import { startDevServer, type DevServer, type TokenGate } from '../support/processes.js';
import { sleep, until } from '../support/wait.js';
import { startRig, type Rig } from './rig.js';
import { prng } from '../support/prng.js';

async function newRig(dev: DevServer, ttlSec: number): Promise<Rig & { testDb: TestDatabase }> {
  const testDb = await createTestDatabase({ migrate: false });
  const rig = await startRig({ dev, dbUrl: testDb.url, fake: { accessTokenTtlSec: ttlSec } });
  return {
    ...rig,
    testDb,
    close: async () => {
      await rig.close();
      await testDb.close();
    },
  };
}

/** count credentials spread their first refreshes over one refresh interval. */
async function importCredentials(rig: Rig, count: number, lifetimeSec: number) {
  const out: { id: string; seedRefreshToken: string }[] = [];
  for (let i = 0; i < count; i++) {
    const c = await rig.importOAuth({ lifetimeMs: lifetimeSec * 1000 * (0.6 + (0.4 * i) / count) });
    out.push({ id: c.id, seedRefreshToken: c.refreshToken });
  }
  return out;
}

/** The refresh token each credential's chain ends in, from what the gate saw the provider answer. */
function lastIssued(gate: TokenGate, seed: string): string {
  const next = new Map<string, string>();
  for (const c of gate.calls)
    if (c.status === 200 && c.presented && c.issuedRefreshToken && c.fate !== 'held') next.set(c.presented, c.issuedRefreshToken);
  let rt = seed;
  for (let guard = 0; next.has(rt) && guard < 100_000; guard++) rt = next.get(rt)!;
  return rt;
}

async function storedRefreshTokens(rig: Rig, ids: string[]): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (const id of ids) out.set(id, (await rig.core.store.getWithSecret(id)).secret.refreshToken);
  return out;
}

/**
 * Holds new token calls at the gate, then waits until every answer already on its way has been
 * delivered and committed: from then on no rotation exists only in the worker's memory.
 */
async function quiesce(rig: Rig, ids: string[], seeds: Map<string, string>) {
  rig.gate.mode = 'hold';
  await until(() => rig.gate.inFlight === 0, { timeoutMs: 60_000, what: 'token calls in flight to finish' });
  await until(
    async () => {
      const stored = await storedRefreshTokens(rig, ids);
      const behind = ids.filter((id) => stored.get(id) !== lastIssued(rig.gate, seeds.get(id)!));
      if (behind.length === 0) return true;
      // Say which rotation is missing, so a failure explains itself.
      const id = behind[0]!;
      const missing = rig.gate.calls.find((c) => c.presented === stored.get(id));
      throw new Error(
        `${behind.length} credential(s) behind; ${id} stores …${stored.get(id)?.slice(-6)}, presented since with fate ${missing?.fate} status ${missing?.status}`,
      );
    },
    { timeoutMs: 30_000, intervalMs: 50, what: 'every delivered rotation to be committed' },
  );
}

const reopen = (gate: TokenGate) => {
  gate.mode = 'open';
  gate.release();
};

let dev: DevServer;
beforeAll(async () => {
  dev = await startDevServer(inject('temporalCliPath'));
});
afterAll(async () => {
  await dev?.close();
  await killAllChildren();
});

describe('worker killed with SIGKILL in the middle of refreshes', () => {
  it('8 kills across 30 credentials with 20-second tokens: nothing reauth_required, every credential holds the last token issued to it, no token reused', async () => {
    const seed = Number(process.env.FAULT_SEED ?? 20_261_125);
    const random = prng(seed);
    console.log(`[workerKill] FAULT_SEED=${seed}`);
    const rig = await newRig(dev, 20);
    const listener = new pg.Client({ connectionString: rig.dbUrl });
    try {
      rig.fake.setTokenDelayMs(300); // a call takes long enough for kills to land inside it
      const credentials = await importCredentials(rig, 30, 20);
      const ids = credentials.map((c) => c.id);
      const seeds = new Map(credentials.map((c) => [c.id, c.seedRefreshToken]));
      const ownerOf = (refreshToken: string) => ids.find((id) => lastIssued(rig.gate, seeds.get(id)!) === refreshToken)!;
      await listener.connect();
      await listener.query(`LISTEN ${CREDENTIAL_CHANGES_CHANNEL}`);

      const kills: { kind: 'mid-call' | 'after-commit'; held: number }[] = [];
      let worker = await rig.startWorker();
      for (let k = 0; k < 8; k++) {
        await sleep(2_000 + random() * 5_000); // let refreshes run (about three a second)
        await quiesce(rig, ids, seeds);
        if (k % 2 === 0) {
          // Mid-call: the worker has sent refresh requests and waits for the answers.
          await until(() => rig.gate.held >= 1, { timeoutMs: 30_000, what: 'a token call held at the gate' });
          await sleep(random() * 400);
          kills.push({ kind: 'mid-call', held: rig.gate.held });
          await worker.kill('SIGKILL');
        } else {
          // Right after a commit: one refresh goes through; the kill follows its database write,
          // typically before the activity's completion reaches Temporal.
          await until(() => rig.gate.held >= 1, { timeoutMs: 30_000, what: 'a token call held at the gate' });
          const call = rig.gate.calls.find((c) => c.fate === 'held')!;
          const id = ownerOf(call.presented!);
          rig.gate.releaseOne();
          const committed = new Promise<void>((resolve) => {
            const onNotify = async (msg: pg.Notification) => {
              if (msg.payload !== id) return;
              if ((await rig.core.store.getWithSecret(id)).secret.refreshToken !== call.issuedRefreshToken) return;
              listener.off('notification', onNotify);
              resolve();
            };
            listener.on('notification', onNotify);
          });
          await committed;
          kills.push({ kind: 'after-commit', held: rig.gate.held });
          await worker.kill('SIGKILL');
        }
        // Requests the dead worker had in transit reach the gate now: held, seen closed, dropped.
        await sleep(1_000);
        reopen(rig.gate);
        worker = await rig.startWorker();
      }
      const lastRestart = new Date();
      expect(kills).toHaveLength(8);
      expect(rig.gate.calls.filter((c) => c.fate === 'dropped').length).toBeGreaterThanOrEqual(4); // kills really landed mid-call

      // Calls of the killed workers time out (45 s, no heartbeat) and are retried; everyone
      // must be refreshed again by the surviving worker.
      await until(
        async () => {
          const rows = await rig.testDb.query<{ n: string }>(
            `select count(*) as n from saved_authentications where last_refreshed_at > $1 and status = 'active'`,
            [lastRestart],
          );
          return Number(rows[0]!.n) === ids.length;
        },
        { timeoutMs: 150_000, intervalMs: 1_000, what: 'every credential to be refreshed after the last restart' },
      );

      await quiesce(rig, ids, seeds);
      const stored = await storedRefreshTokens(rig, ids);
      const statuses = await rig.testDb.query<{ status: string; n: string }>(
        'select status, count(*) as n from saved_authentications group by status',
      );
      expect(statuses).toEqual([{ status: 'active', n: String(ids.length) }]);
      for (const id of ids) expect(stored.get(id), `credential ${id}`).toBe(lastIssued(rig.gate, seeds.get(id)!));
      expect(rig.fake.reusedRefreshTokens).toEqual([]);
      expect(rig.gate.calls.filter((c) => c.fate === 'lost')).toEqual([]);
      // Every token the provider issued is accounted for: the stored one or one spent later.
      const presented = new Set(rig.gate.calls.map((c) => c.presented));
      const storedSet = new Set(stored.values());
      for (const rt of rig.fake.issued.refreshTokens) expect(presented.has(rt) || storedSet.has(rt), rt.slice(0, 24)).toBe(true);
      const refreshes = rig.gate.calls.filter((c) => c.status === 200).length;
      console.log(
        `[workerKill] ${kills.map((k) => k.kind).join(', ')}; ${refreshes} refreshes, ${rig.gate.calls.filter((c) => c.fate === 'dropped').length} calls cut by kills`,
      );
      expect(refreshes).toBeGreaterThan(60);

      // The workers' own logs never carried a token.
      const logs = rig.workers.flatMap((w) => w.lines).join('\n');
      for (const t of [...rig.fake.issued.accessTokens, ...rig.fake.issued.refreshTokens, ...seeds.values()]) expect(logs).not.toContain(t);
      reopen(rig.gate);
    } finally {
      await listener.end().catch(() => {});
      await rig.close();
    }
  });

  it('a kill after the answer was recorded but before the tokens were written: the retry stores it, nothing is presented twice', async () => {
    const rig = await newRig(dev, 3600);
    const locker = new pg.Client({ connectionString: rig.dbUrl });
    try {
      const [credential] = await importCredentials(rig, 1, 3600);
      let worker = await rig.startWorker();
      await locker.connect();
      // Hold the credential's row lock: the token write waits on it, the write-ahead record does not.
      await locker.query('begin');
      await locker.query('select id from saved_authentications where id = $1 for update', [credential!.id]);
      const refresh = rig.core.workflows.refreshNow(credential!.id).catch((error: Error) => error);
      await until(
        async () => (await rig.testDb.query('select 1 from refresh_answers where credential_id = $1', [credential!.id])).length === 1,
        {
          timeoutMs: 30_000,
          what: 'the token answer to be recorded',
        },
      );
      await worker.kill('SIGKILL');
      await locker.query('rollback');
      worker = await rig.startWorker();
      // The workflow counts the refresh when the activity has returned, i.e. after the answer row was
      // settled; the row's refresh_count moves a moment before that (the caller's wait, 20 s, ends
      // before the retry, which waits out the killed attempt's 20 s heartbeat timeout).
      await until(async () => (await rig.core.workflows.status(credential!.id))?.refreshes === 1, {
        timeoutMs: 90_000,
        intervalMs: 500,
        what: 'the recorded answer to be stored',
      });
      await refresh;
      const { metadata, secret } = await rig.core.store.getWithSecret(credential!.id);
      expect(metadata.status).toBe('active');
      expect(secret.refreshToken).toBe(rig.fake.issued.refreshTokens.at(-1));
      expect(rig.gate.calls.filter((c) => c.status === 200)).toHaveLength(1);
      expect(rig.fake.reusedRefreshTokens).toEqual([]);
      expect(await rig.testDb.query('select 1 from refresh_answers where credential_id = $1', [credential!.id])).toEqual([]);
    } finally {
      await locker.end().catch(() => {});
      await rig.close();
    }
  });

  it("the remaining window, pinned: a worker that dies before the provider's answer reaches it loses the rotation (credential → reauth_required, callers answered)", async () => {
    // The provider answers, the worker dies before a byte of the answer arrives: the old refresh
    // token is spent at the provider and the new one was never seen by Maestro. The retried
    // activity presents the stored (spent) token; the provider reports reuse and the credential
    // needs a new login, which is said clearly. This is the one window left (README, Guarantees).
    const rig = await newRig(dev, 3600);
    try {
      const [credential] = await importCredentials(rig, 1, 3600);
      let worker = await rig.startWorker();
      let killed = false;
      rig.gate.onAnswered = async (call) => {
        if (killed || call.status !== 200) return;
        killed = true;
        await worker.kill('SIGKILL');
      };
      const started = Date.now();
      const refresh = rig.core.workflows.refreshNow(credential!.id).catch((error: Error) => error);
      await until(() => killed, { timeoutMs: 30_000, what: 'the kill' });
      rig.gate.onAnswered = undefined;
      worker = await rig.startWorker();
      const outcome = await refresh;
      expect(outcome).toBeInstanceOf(Error); // answered within the bound: "still being refreshed" or "needs a new login"
      expect(Date.now() - started).toBeLessThan(30_000);
      await until(async () => (await rig.core.store.get(credential!.id)).status === 'reauth_required', {
        timeoutMs: 90_000,
        intervalMs: 500,
        what: 'the credential to need a new login',
      });
      expect(rig.gate.calls.map((c) => c.fate)).toEqual(['lost', 'delivered']);
      expect(rig.fake.reusedRefreshTokens).toEqual([credential!.seedRefreshToken]);
      await expect(rig.core.workflows.refreshNow(credential!.id)).rejects.toThrow(/new login/);
    } finally {
      await rig.close();
    }
  });
});
