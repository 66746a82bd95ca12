// Randomized interleavings of everything that can happen to one credential's refresh workflow:
// PATCHes (both tokens, access token only), refresh-now callers (alone and concurrent), token
// endpoint failures, a dead grant and the new login after it, worker restarts, then DELETE or
// stop. Real dev server, real database, a fake provider that rotates strictly. Over many seeds:
//   - every refresh-now caller is answered within the bound (fresh metadata or a known failure);
//   - a refresh asked for after a PATCH spends the PATCHed refresh token;
//   - no refresh token is ever presented twice;
//   - at the end the stored refresh token works, and stop or DELETE ends the workflow.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialView } from '../../src/activities/index.js';
import { NotFoundError, ReauthRequiredError, ServiceUnavailableError } from '../../src/errors.js';
import { credentialWorkflowId, stopSignal } from '../../src/workflows/credentialRefresh.js';
import { createDevServerEnv, startHarness, type Harness } from '../support/temporal.js';
import { prng } from '../support/prng.js';
import { seedOAuthCredential } from '../support/credentials.js';

const WAIT_MS = 3_000;
const BOUND_MS = WAIT_MS + 5_000 + 2_000; // the workflow's bound, the client's grace, slack

// INTERLEAVING_SEED=<n> replays one seed; INTERLEAVING_SEEDS=<from>-<to> explores more.
const range = /^(\d+)-(\d+)$/.exec(process.env.INTERLEAVING_SEEDS ?? '');
const SEEDS = process.env.INTERLEAVING_SEED
  ? [Number(process.env.INTERLEAVING_SEED)]
  : range
    ? Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i)
    : [1, 2, 3, 4, 5, 6];
const OPS = ['refresh', 'refresh', 'concurrent', 'patchThenRefresh', 'patchAccess', 'fail', 'revoke', 'restart', 'pause'] as const;

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await createDevServerEnv();
});
afterAll(async () => {
  await env?.teardown();
});

describe('randomized interleavings on one credential', () => {
  it.each(SEEDS)(
    'seed %i',
    async (seed) => {
      const random = prng(seed);
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
      const h: Harness = await startHarness(env, { fake: { accessTokenTtlSec: 3600 }, refreshWaitMs: WAIT_MS, maxCachedWorkflows: 0 });
      const log: string[] = [];
      try {
        let n = 0;
        const fresh = () => {
          n++;
          const t = { accessToken: `sk-ant-oat01-il-${seed}-${n}-000000`, refreshToken: `sk-ant-ort01-il-${seed}-${n}-000000` };
          h.fake.seedTokens(t.refreshToken, t.accessToken);
          return t;
        };
        const { credential } = await seedOAuthCredential(h, { tag: `il-${seed}-0` });
        const handle = env.client.workflow.getHandle(credentialWorkflowId(credential.id));

        const callers: Promise<void>[] = [];
        const problems: string[] = [];
        const refresh = (what: string) => {
          const started = Date.now();
          const p = h.core.workflows.refreshNow(credential.id).then(
            (view) => ({ view, ms: Date.now() - started }),
            (error: Error) => ({ error, ms: Date.now() - started }),
          );
          callers.push(
            p.then((r) => {
              if (r.ms > BOUND_MS) problems.push(`${what}: answered after ${r.ms} ms`);
              if ('error' in r && !(r.error instanceof ReauthRequiredError || r.error instanceof ServiceUnavailableError)) {
                problems.push(`${what}: unexpected ${r.error.name}: ${r.error.message}`);
              }
            }),
          );
          return p;
        };
        const presented = () => h.fake.tokenRequests().map((r) => (r.json as { refresh_token?: string } | undefined)?.refresh_token);

        for (let step = 0; step < 14; step++) {
          const op = pick(OPS);
          log.push(op);
          switch (op) {
            case 'refresh':
              void refresh(`step ${step} refresh`);
              break;
            case 'concurrent':
              for (let i = 0; i < 3; i++) void refresh(`step ${step} concurrent ${i}`);
              break;
            case 'patchThenRefresh': {
              const t = fresh(); // a new login's tokens
              const patched = await h.core.store.replaceTokens(credential.id, { secret: t, expiresAt: new Date(Date.now() + 3600_000) });
              await h.core.workflows.credentialUpdated(patched);
              const r = await refresh(`step ${step} refresh after PATCH`);
              if ('view' in r) {
                const view = r.view as CredentialView;
                if (view.version <= patched.version)
                  problems.push(`step ${step}: refresh after PATCH answered version ${view.version} ≤ ${patched.version}`);
                if (!presented().includes(t.refreshToken))
                  problems.push(`step ${step}: refresh after PATCH did not spend the PATCHed refresh token`);
              }
              break;
            }
            case 'patchAccess': {
              const { accessToken } = fresh();
              const patched = await h.core.store.replaceTokens(credential.id, {
                secret: { accessToken },
                expiresAt: new Date(Date.now() + 3600_000),
                keep: ['refreshToken'],
              });
              await h.core.workflows.credentialUpdated(patched);
              break;
            }
            case 'fail':
              h.fake.failNextToken([{ status: 503 }]);
              break;
            case 'revoke':
              h.fake.revokeAllRefreshTokens(); // the grant dies; the next patchThenRefresh is the new login
              break;
            case 'restart':
              await h.startWorker();
              break;
            case 'pause':
              await new Promise((r) => setTimeout(r, random() * 400));
              break;
          }
          await new Promise((r) => setTimeout(r, random() * 150));
        }
        await Promise.all(callers);

        // A refresh still retrying (scripted 503s, attempts cut by restarts) is waited out first: a
        // PATCH meanwhile is read only once that refresh's next attempt ends (the retry backoff;
        // callers get "still retrying" within the bound all the while, as checked above).
        const settleBy = Date.now() + 120_000;
        while (Date.now() < settleBy && (await h.core.workflows.status(credential.id))?.phase === 'refreshing')
          await new Promise((r) => setTimeout(r, 250));

        // A new login, then refreshes until one goes through (a scripted 503 may still be queued).
        const t = fresh();
        const patched = await h.core.store.replaceTokens(credential.id, { secret: t, expiresAt: new Date(Date.now() + 3600_000) });
        await h.core.workflows.credentialUpdated(patched);
        // Liveness bound: an attempt handed to a worker as it restarted is only retried after the
        // heartbeat timeout (20 s), then the retry backoff; callers meanwhile get "still retrying".
        let final: CredentialView | undefined;
        const finalErrors: string[] = [];
        const liveBy = Date.now() + 45_000;
        let slowReported = false;
        const slowAt = Date.now() + 15_000;
        while (!final && Date.now() < liveBy) {
          final = await h.core.workflows.refreshNow(credential.id).catch((error: Error) => void finalErrors.push(error.message));
          if (!final && !slowReported && Date.now() > slowAt) {
            slowReported = true;
            const pending = ((await handle.describe()).raw.pendingActivities ?? []).map((a) =>
              JSON.stringify({
                type: a.activityType?.name,
                state: a.state,
                attempt: a.attempt,
                lastFailure: a.lastFailure?.message,
                next: a.nextAttemptScheduleTime?.seconds?.toString(),
                worker: a.lastWorkerIdentity,
              }),
            );
            process.stderr.write(`[interleavings] seed ${seed} slow (ops ${log.join(',')}): pending ${pending.join(' ')}\n`);
          }
        }
        if (!final) {
          const status = await h.core.workflows.status(credential.id).catch(() => null);
          const stored = await h.core.store.get(credential.id);
          const tail = h.fake
            .tokenRequests()
            .slice(-4)
            .map((r) => (r.json as { refresh_token?: string } | undefined)?.refresh_token?.slice(-12));
          const events = (await handle.fetchHistory()).events ?? [];
          const t0 = Number(events[0]?.eventTime?.seconds ?? 0);
          const lines = events.map((e) => {
            const at = Number(e.eventTime?.seconds ?? 0) - t0;
            const what =
              e.activityTaskScheduledEventAttributes?.activityType?.name ??
              (e.activityTaskStartedEventAttributes ? `started attempt ${e.activityTaskStartedEventAttributes.attempt}` : undefined) ??
              e.activityTaskFailedEventAttributes?.failure?.message ??
              e.activityTaskTimedOutEventAttributes?.failure?.message ??
              e.workflowTaskFailedEventAttributes?.failure?.message ??
              '';
            return `${at}s ${e.eventType} ${what}`;
          });
          const pending = ((await handle.describe()).raw.pendingActivities ?? []).map((a) =>
            JSON.stringify({
              type: a.activityType?.name,
              state: a.state,
              attempt: a.attempt,
              lastFailure: a.lastFailure?.message,
              next: a.nextAttemptScheduleTime?.seconds?.toString(),
              worker: a.lastWorkerIdentity,
            }),
          );
          process.stderr.write(`[interleavings] seed ${seed} history:\n${lines.join('\n')}\npending: ${pending.join('\n')}\n`);
          throw new Error(
            `seed ${seed} ops ${log.join(',')}: no refresh after the new login: ${finalErrors.join(' | ')}; workflow ${JSON.stringify(status)}; stored v${stored.version} ${stored.status} ${stored.lastError}; last presented ${tail.join(',')}`,
          );
        }
        expect(presented()).toContain(t.refreshToken);

        expect(problems, `seed ${seed} ops ${log.join(',')}`).toEqual([]);
        expect(h.fake.reusedRefreshTokens, `seed ${seed} ops ${log.join(',')}`).toEqual([]);

        // The end: DELETE (stops the workflow) or stop; either way the run completes.
        const ended = env.client.workflow.getHandle(credentialWorkflowId(credential.id), (await handle.describe()).runId);
        const deleted = random() < 0.5;
        if (deleted) {
          await h.core.store.delete(credential.id);
          await h.core.workflows.stop(credential.id);
        } else {
          await ended.signal(stopSignal);
        }
        expect((await ended.result()).phase).toBe('stopped');
        expect((await ended.describe()).status.name).toBe('COMPLETED');
        const late = await h.core.workflows.refreshNow(credential.id).catch((error: Error) => error);
        if (deleted) expect(late instanceof NotFoundError, String(late)).toBe(true);
        else {
          // A credential that is still there and lost its workflow gets one again (as the reconcile Schedule would do).
          expect(late instanceof Error ? late instanceof ServiceUnavailableError : late.version > 0, String(late)).toBe(true);
          await handle.terminate('test finished').catch(() => {});
        }
      } finally {
        await h.close();
      }
    },
    240_000,
  );
});
