// The maintenance Schedule: abandoned login sessions and credential events past retention are
// deleted every hour, so neither table grows without bound (every /start inserts a session row;
// a short-lived token writes an event per refresh). Real PostgreSQL, the real dev server.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedOAuthCredential } from '../support/credentials.js';
import { createDevServerEnv, startHarness, type Harness } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: Harness;
beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startHarness(env, { fake: { accessTokenTtlSec: 3600 } });
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

const count = async (sql: string) => Number((await h.db.query<{ n: string }>(sql))[0]!.n);

describe('maintenance schedule', () => {
  it('deletes expired login sessions and events older than the retention, keeps the rest, hourly', async () => {
    const login = {
      provider: 'anthropic' as const,
      name: 'x',
      verifier: 'v'.repeat(43),
      state: 's'.repeat(22),
      redirectUri: 'https://example.invalid/cb',
    };
    // An abandoned login from yesterday, and one still open.
    await h.core.sessions.create({ ...login, now: new Date(Date.now() - 86_400_000) });
    const open = await h.core.sessions.create(login);
    const { credential: old } = await seedOAuthCredential(h, { tag: 'maint-old', start: false });
    const { credential: recent } = await seedOAuthCredential(h, { tag: 'maint-new', start: false });
    // The first credential's history is 100 days old (retention is 90 days by default).
    await h.db.query(`update credential_events set created_at = now() - interval '100 days' where credential_id = $1`, [old.id]);
    expect(await count('select count(*) as n from oauth_sessions')).toBe(2);

    await h.core.workflows.ensureMaintenanceSchedule();
    await h.core.workflows.ensureMaintenanceSchedule(); // idempotent: a second worker start keeps it
    const schedule = env.client.schedule.getHandle(`maestro-maintenance:${h.taskQueue}`);
    try {
      expect((await schedule.describe()).spec.intervals?.[0]?.every).toBe(3600_000);
      await schedule.trigger(); // what the interval does every hour
      let action;
      for (let i = 0; i < 100 && !action; i++) {
        await new Promise((r) => setTimeout(r, 200));
        action = (await schedule.describe()).info.recentActions.at(-1)?.action;
      }
      const result = await env.client.workflow.getHandle(action!.workflow.workflowId).result();
      expect(result).toEqual({ loginSessions: 1, events: 1, durableCallClaims: 0, durableCallUsage: 0, poolRouting: 0 });
    } finally {
      await schedule.delete();
    }
    expect(await h.db.query('select id from oauth_sessions')).toEqual([{ id: open.id }]);
    expect(await h.core.store.listEvents(old.id)).toEqual([]);
    expect((await h.core.store.listEvents(recent.id)).map((e) => e.type)).toEqual(['created']);
    // The credential itself stays: retention trims history, never credentials.
    expect((await h.core.store.get(old.id)).id).toBe(old.id);
  });
});
