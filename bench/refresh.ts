// npm run bench:refresh — N OAuth credentials with short-lived tokens against the real worker,
// the Temporal dev server and a fake token endpoint; how many tokens expire before they are
// refreshed, how late refreshes run against their schedule, what the worker costs per refresh,
// and how long histories get. With --time-skipping: a simulated week on the time-skipping
// test server, reporting wall time.
//
//   npm run bench:refresh                              # N=1000, 2-minute tokens, 10 minutes
//   npm run bench:refresh -- --n 10000 --minutes 5
//   npm run bench:refresh -- --time-skipping           # N=1000, 8-hour tokens, one simulated week
// Options: --n  --minutes  --ttl-sec (token lifetime; 120, or 28800 with --time-skipping)
//          --days (simulated, with --time-skipping; 7)  --max-history (continue-as-new threshold
//          passed to the workflows; 100 here so it happens inside the window, 10000 in production)
//          --burst (all tokens share one expiry instead of a spread)  --max-cached (worker sticky cache)
//          --sample-workflows (histories read for events per cycle and lateness by stage; 200)
//          --profile (V8 CPU profile of the worker process over the window)  --out file.json
//          --server-profile (the dev server's CPU profile over the window: perf + go tool addr2line)
//          --quota-interval-sec S (idle quota reads per credential every S seconds, as
//          MAESTRO_QUOTA_INTERVAL; 0, the default here: off, as before issue 30; 900 = production's default)
//          --settle-sec S (first tokens expire S seconds later and the window starts S seconds
//          after the import began: a mass import's backlog — every workflow's first tasks — is
//          worked off before the first refreshes fall due, so the window measures the steady state)
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { createCore, startWorker } from '../src/app/services.js';
import { createLogger } from '../src/logger.js';
import { refreshDelayForLifetime } from '../src/model/refreshSchedule.js';
import { credentialWorkflowId, statusQuery, type RefreshStatus } from '../src/workflows/credentialRefresh.js';
import type { ProviderOverrides } from '../src/config.js';
import { spawnChild } from './lib/ipc.js';
import { childPid, childrenUsage, machine } from './lib/procstat.js';
import { serverProfileUnavailable, startServerProfile } from './lib/serverProfile.js';
import { cycleTimings, eventsPerCycle, type CycleTiming } from './lib/historyCycles.js';
import { argFlag, argNumber, argValue, percentile, round, table } from './lib/stats.js';
import { startBenchStack } from './lib/stack.js';
import { profileStart, profileStop } from './lib/profiler.js';
import { summarizeCpuProfile } from './lib/cpuprofile.js';
import os from 'node:os';
import path from 'node:path';
import { runBench } from './lib/run.js';

const timeSkipping = argFlag('time-skipping');
const N = argNumber('n', 1000);
const MINUTES = argNumber('minutes', 10);
const DAYS = argNumber('days', 7);
const TTL_SEC = argNumber('ttl-sec', timeSkipping ? 8 * 3600 : 120);
const MAX_HISTORY = argNumber('max-history', 100);
const BURST = argFlag('burst');
const MAX_CACHED = argValue('max-cached') === undefined ? undefined : argNumber('max-cached', 0);
const SAMPLE_MS = 5_000;
const PROFILE = argFlag('profile');
const SERVER_PROFILE = argFlag('server-profile');
const SETTLE_MS = argNumber('settle-sec', 0) * 1000;
const QUOTA_INTERVAL_MS = argNumber('quota-interval-sec', 0) * 1000;
/** Workflows whose histories are read for events per cycle and lateness by stage. */
const SAMPLE_WORKFLOWS = argNumber('sample-workflows', 200);

const log = (...parts: unknown[]) => console.error(`[bench:refresh ${new Date().toISOString().slice(11, 19)}]`, ...parts);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function pool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

async function main() {
  const t0 = performance.now();
  log(
    `${timeSkipping ? 'time-skipping' : 'dev server'}: N=${N}, token lifetime ${TTL_SEC} s, ${timeSkipping ? `${DAYS} simulated days` : `${MINUTES} min window`}, continue-as-new after ${MAX_HISTORY} events`,
  );
  const tokens = await spawnChild<{ overrides: ProviderOverrides }>(new URL('./tokenServer.ts', import.meta.url), {
    env: { BENCH_TTL_SEC: String(TTL_SEC) },
  });
  const o = tokens.ready.overrides;
  const stack = await startBenchStack({
    temporal: timeSkipping ? 'time-skipping' : 'dev',
    dbPoolSize: 20,
    env: {
      MAESTRO_ANTHROPIC_BASE_URL: o.baseUrl!,
      MAESTRO_ANTHROPIC_OAUTH_TOKEN_URL: o.oauthTokenUrl!,
      MAESTRO_ANTHROPIC_OAUTH_AUTHORIZE_URL: o.oauthAuthorizeUrl!,
    },
  });
  const { config, db, env } = stack;
  const wlog = createLogger('silent');
  config.quotaIntervalMs = QUOTA_INTERVAL_MS;
  const core = createCore(config, db, env.client, { maxHistoryEvents: MAX_HISTORY });
  // --max-cached sets MAESTRO_WORKFLOW_CACHE_SIZE's setting; otherwise the production default.
  if (MAX_CACHED !== undefined) config.workflowCacheSize = MAX_CACHED;
  const running = await startWorker(config, wlog, env.nativeConnection, core);
  log(`stack and worker up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    log('interrupted: stopping the worker, Temporal and PostgreSQL');
    void (async () => {
      if (running.worker.getState() === 'RUNNING') running.worker.shutdown();
      await Promise.race([running.done.catch(() => {}), sleep(10_000)]);
      await tokens.stop();
      await stack.stop();
      process.exit(130);
    })();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // Credentials as the API imports them: row + sealed tokens, then the workflow start.
    // First lifetimes are spread over [L/6, 7L/6] (all L with --burst): first refreshes fall
    // uniformly over one refresh interval, so the steady state is an even N / (L/2) per second
    // instead of bursts.
    const tag = randomBytes(3).toString('hex');
    const specs = Array.from({ length: N }, (_, i) => ({
      i,
      refreshToken: `sk-ant-ort01-bench${tag}${i.toString(36)}${randomBytes(12).toString('hex')}`,
      accessToken: `sk-ant-oat01-bench${tag}${i.toString(36)}${randomBytes(12).toString('hex')}`,
      lifetimeMs: SETTLE_MS + (BURST ? TTL_SEC * 1000 : Math.round(TTL_SEC * 1000 * (1 / 6 + i / N))),
    }));
    for (let i = 0; i < specs.length; i += 2000) {
      await tokens.call('seed', { pairs: specs.slice(i, i + 2000).map((s) => [s.refreshToken, s.accessToken]) });
    }
    const tCreate = performance.now();
    const importStarted = Date.now();
    const ids: string[] = new Array(N);
    await pool(specs, 32, async (s) => {
      const metadata = await core.store.create({
        provider: 'anthropic',
        authType: 'oauth',
        name: `bench-${tag}-${s.i}`,
        secret: { accessToken: s.accessToken, refreshToken: s.refreshToken },
        expiresAt: new Date(Date.now() + s.lifetimeMs),
      });
      await core.workflows.start(metadata);
      ids[s.i] = metadata.id;
    });
    const createSec = (performance.now() - tCreate) / 1000;
    log(`${N} credentials imported and their workflows started in ${createSec.toFixed(1)} s (${Math.round(N / createSec)}/s)`);

    const samples: {
      t: number;
      refreshes: number;
      expiredNow: number;
      rssMb: number;
      heapMb: number;
      cpuSec: number;
      children: ReturnType<typeof childrenUsage>;
      token: { tokenRequests: number; reusedRefreshTokens: number; quotaRequests: number };
    }[] = [];
    const sample = async () => {
      const [row] = await sql<{ refreshes: string; expired: string }>`
        select (select count(*) from credential_events where type = 'refreshed') as refreshes,
               (select count(*) from saved_authentications where auth_type = 'oauth' and expires_at < now()) as expired`
        .execute(db)
        .then((r) => r.rows);
      const cpu = process.cpuUsage();
      const s = {
        t: performance.now(),
        refreshes: Number(row!.refreshes),
        expiredNow: Number(row!.expired),
        rssMb: process.memoryUsage().rss / 1e6,
        heapMb: process.memoryUsage().heapUsed / 1e6,
        cpuSec: (cpu.user + cpu.system) / 1e6,
        children: childrenUsage(),
        token: await tokens.call<{ tokenRequests: number; reusedRefreshTokens: number; quotaRequests: number }>('counters'),
      };
      samples.push(s);
      return s;
    };

    if (SETTLE_MS) {
      log(`settling: the window starts ${Math.round((importStarted + SETTLE_MS - Date.now()) / 1000)} s from now`);
      await sleep(Math.max(0, importStarted + SETTLE_MS - Date.now()));
    }
    const windowStart = Date.now();
    const first = await sample();
    if (PROFILE) await profileStart();
    const serverPid = childPid('temporal');
    const serverProfileSkipped = SERVER_PROFILE
      ? serverPid === undefined
        ? 'no Temporal server process'
        : serverProfileUnavailable()
      : undefined;
    if (serverProfileSkipped) log(`no server profile: ${serverProfileSkipped}`);
    const serverProfiler =
      SERVER_PROFILE && !serverProfileSkipped
        ? startServerProfile(serverPid!, path.join(os.tmpdir(), `maestro-bench-refresh-server-${Date.now()}.perf`))
        : undefined;
    let wallSec: number;
    if (timeSkipping) {
      const simStart = await env.currentTimeMs();
      const tSkip = performance.now();
      const ticker = setInterval(
        () => void sample().then((s) => log(`${s.refreshes} refreshes so far, worker RSS ${Math.round(s.rssMb)} MB`)),
        15_000,
      );
      // In 6-hour steps: one week-long unlockTimeSkippingWithSleep call outlives the gRPC
      // keep-alive (the test server answers "excess pings" and drops the connection, and from
      // then on time only moves in real time).
      for (let day = 0; day < DAYS * 4; day++) await env.sleep('6 hours');
      clearInterval(ticker);
      wallSec = (performance.now() - tSkip) / 1000;
      log(
        `simulated ${((Number(await env.currentTimeMs()) - Number(simStart)) / 86_400_000).toFixed(2)} days in ${wallSec.toFixed(1)} s of wall time`,
      );
    } else {
      const end = performance.now() + MINUTES * 60_000;
      while (performance.now() < end) {
        await sleep(Math.min(SAMPLE_MS, end - performance.now()));
        const s = await sample();
        const prev = samples[samples.length - 2]!;
        const dt = (s.t - prev.t) / 1000;
        const rate = (s.refreshes - prev.refreshes) / dt;
        log(
          `${Math.round((s.t - first.t) / 1000)} s: ${s.refreshes} refreshes (${rate.toFixed(1)}/s), ${s.expiredNow} expired now, worker RSS ${Math.round(s.rssMb)} MB, ` +
            `worker CPU ${Math.round((100 * (s.cpuSec - prev.cpuSec)) / dt)} %, temporal ${Math.round((100 * ((Object.entries(s.children).find(([k]) => k.startsWith('temporal'))?.[1].cpuSec ?? 0) - (Object.entries(prev.children).find(([k]) => k.startsWith('temporal'))?.[1].cpuSec ?? 0))) / dt)} %`,
        );
      }
      wallSec = (performance.now() - first.t) / 1000;
    }
    const last = await sample();
    const windowEnd = Date.now();
    const serverProfile = await serverProfiler?.stop();
    const profile = PROFILE
      ? summarizeCpuProfile(await profileStop({ file: path.join(os.tmpdir(), `maestro-bench-refresh-${Date.now()}.cpuprofile`) }), 25)
      : undefined;

    // Schedule vs reality, from the credential history (every write appends an event in the same
    // transaction). Refresh k of a credential was due at obtained(k-1) + delay(L(k-1)).
    const events = await db
      .selectFrom('credential_events')
      .select(['credential_id', 'type', 'details', 'created_at'])
      .where('type', 'in', ['created', 'refreshed'])
      .orderBy('credential_id')
      .orderBy('id')
      .execute();
    const lateAt: { at: number; late: number }[] = []; // steady state: second and later refreshes
    const firstLateness: number[] = [];
    let expiredBeforeRefresh = 0;
    let refreshesInWindow = 0;
    const perCredential = new Map<string, number>();
    let prev: { id: string; at: number; expiresAt: number; n: number } | undefined;
    for (const e of events) {
      const at = new Date(e.created_at as unknown as string).getTime();
      const details = (typeof e.details === 'string' ? JSON.parse(e.details) : e.details) as { expiresAt?: string };
      const expiresAt = details.expiresAt ? Date.parse(details.expiresAt) : NaN;
      if (e.type === 'refreshed' && prev && prev.id === e.credential_id) {
        perCredential.set(e.credential_id, (perCredential.get(e.credential_id) ?? 0) + 1);
        if (!timeSkipping) {
          const due = prev.at + refreshDelayForLifetime(prev.expiresAt - prev.at);
          if (prev.n === 0) firstLateness.push(at - due);
          else lateAt.push({ at, late: at - due });
          if (at > prev.expiresAt) expiredBeforeRefresh++;
          if (at >= windowStart) refreshesInWindow++;
        }
        prev = { id: e.credential_id, at, expiresAt, n: prev.n + 1 };
      } else {
        prev = { id: e.credential_id, at, expiresAt, n: 0 };
      }
    }
    const lateness = lateAt.map((l) => l.late);
    // Tokens that are expired at the end and were never replaced count too.
    const expiredAtEnd = last.expiredNow;

    // Histories: a sample of workflows, after continue-as-new.
    const sampleCount = Math.min(SAMPLE_WORKFLOWS, N);
    const sampleIds = Array.from({ length: sampleCount }, (_, k) => ids[Math.floor((k * N) / sampleCount)]!);
    const described = await Promise.all(
      sampleIds.map(async (id) => {
        const handle = env.client.workflow.getHandle(credentialWorkflowId(id));
        const d = await handle.describe();
        const status = await handle.query(statusQuery).catch(() => null as RefreshStatus | null);
        const history = await handle.fetchHistory().catch(() => undefined);
        return {
          cycles: eventsPerCycle(history?.events ?? []),
          timings: cycleTimings(history?.events ?? []),
          historyLength: d.historyLength,
          refreshes: status?.refreshes ?? NaN,
          phase: status?.phase,
          firstRun: d.raw.workflowExecutionInfo?.firstRunId === d.runId,
        };
      }),
    );
    // Where a late refresh's time went (sampled histories, timer-woken refreshes in the window),
    // and whether late refreshes gather while the reconcile Schedule's run lists every workflow.
    const stages = described.flatMap((d) => d.timings).filter((t) => t.scheduledAt >= windowStart);
    const reconcileRuns: { start: number; end: number }[] = [];
    if (!timeSkipping) {
      for await (const w of env.client.workflow.list({ query: `WorkflowType = 'reconcileWorkflow'` })) {
        const start = w.startTime.getTime();
        const end = (w.closeTime ?? new Date(windowEnd)).getTime();
        if (end >= windowStart && start <= windowEnd) reconcileRuns.push({ start, end });
      }
    }
    const RECONCILE_MARGIN_MS = 5_000;
    const inReconcile = (t: number) => reconcileRuns.some((r) => t >= r.start && t <= r.end + RECONCILE_MARGIN_MS);
    const windowLate = lateAt.filter((l) => l.at >= windowStart && l.late > 1000);
    const reconcileCoverMs = reconcileRuns.reduce(
      (sum, r) => sum + Math.max(0, Math.min(r.end + RECONCILE_MARGIN_MS, windowEnd) - Math.max(r.start, windowStart)),
      0,
    );
    const stageRow = (name: string, key: keyof Omit<CycleTiming, 'scheduledAt'>) => {
      const v = stages.map((t) => t[key]);
      return [name, ...[50, 90, 99, 100].map((p) => (v.length ? round(percentile(v, p) / 1000, 3) : '–'))];
    };
    const counts = [...perCredential.values()];
    const cpuWindow = last.cpuSec - first.cpuSec;
    const refreshed = last.refreshes - first.refreshes;
    const child = (s: typeof last, prefix: string) =>
      Object.entries(s.children).find(([k]) => k.startsWith(prefix))?.[1] ?? { cpuSec: 0, rssMb: 0 };
    const temporalName = timeSkipping ? 'temporal-test' : 'temporal';
    const m = machine();
    const lines: string[] = [];
    lines.push(`## bench:refresh — ${new Date().toISOString()} (${timeSkipping ? 'time-skipping test server' : 'Temporal dev server'})`);
    lines.push(`${m.cpus} × ${m.model}, Node ${m.node}, load average ${m.loadavg.map((v) => v.toFixed(2)).join(' ')}`);
    lines.push('');
    lines.push(
      table(
        ['metric', 'value'],
        [
          ['credentials (N)', N],
          ['token lifetime', `${TTL_SEC} s${BURST ? ' (all equal: burst)' : ' (first tokens spread over [L/6, 7L/6])'}`],
          [timeSkipping ? 'simulated time' : 'window', timeSkipping ? `${DAYS} days` : `${MINUTES} min`],
          ['import + workflow start', `${createSec.toFixed(1)} s (${Math.round(N / createSec)}/s)`],
          ...(SETTLE_MS ? [['settle before the window (first tokens expire this much later)', `${SETTLE_MS / 1000} s`]] : []),
          ...(timeSkipping
            ? [
                ['wall time for the simulated span', `${wallSec.toFixed(1)} s`],
                [
                  'refreshes',
                  `${refreshed} (${counts.length ? `per credential min ${Math.min(...counts)} / median ${percentile(counts, 50)} / max ${Math.max(...counts)}` : 'none'}; expected ≈ ${Math.round((DAYS * 86_400) / (refreshDelayForLifetime(TTL_SEC * 1000) / 1000))} each)`,
                ],
              ]
            : [
                [
                  'refreshes in window',
                  `${refreshesInWindow} (${(refreshesInWindow / wallSec).toFixed(1)}/s; expected ≈ ${Math.round((N * wallSec) / (refreshDelayForLifetime(TTL_SEC * 1000) / 1000))})`,
                ],
                ['tokens expired before their refresh', `${expiredBeforeRefresh} (and ${expiredAtEnd} expired, unreplaced, at the end)`],
                [
                  'lateness vs schedule, steady state (p50 / p99 / max)',
                  `${round(percentile(lateness, 50) / 1000, 3)} / ${round(percentile(lateness, 99) / 1000, 3)} / ${round(percentile(lateness, 100) / 1000, 3)} s (${lateness.length} refreshes)`,
                ],
                [
                  'lateness, first refresh after import (p50 / p99 / max)',
                  `${round(percentile(firstLateness, 50) / 1000, 3)} / ${round(percentile(firstLateness, 99) / 1000, 3)} / ${round(percentile(firstLateness, 100) / 1000, 3)} s`,
                ],
              ]),
          [
            'quota reads in window (every credential every --quota-interval-sec)',
            QUOTA_INTERVAL_MS
              ? `${last.token.quotaRequests - first.token.quotaRequests} (${((last.token.quotaRequests - first.token.quotaRequests) / wallSec).toFixed(1)}/s; interval ${QUOTA_INTERVAL_MS / 1000} s)`
              : 'off',
          ],
          [
            'worker process CPU per refresh',
            `${((1000 * cpuWindow) / Math.max(1, refreshed)).toFixed(2)} ms (${Math.round((100 * cpuWindow) / wallSec)} % of one core on average)`,
          ],
          [
            `${temporalName} server CPU per refresh`,
            `${((1000 * (child(last, temporalName).cpuSec - child(first, temporalName).cpuSec)) / Math.max(1, refreshed)).toFixed(2)} ms`,
          ],
          [
            'PostgreSQL CPU per refresh',
            `${((1000 * (child(last, 'postgres').cpuSec - child(first, 'postgres').cpuSec)) / Math.max(1, refreshed)).toFixed(2)} ms`,
          ],
          [
            'worker RSS start → max → end',
            `${Math.round(first.rssMb)} → ${Math.round(Math.max(...samples.map((s) => s.rssMb)))} → ${Math.round(last.rssMb)} MB (heap ${Math.round(last.heapMb)} MB)`,
          ],
          ['workflow cache (maxCachedWorkflows)', String(config.workflowCacheSize)],
          [
            'history events per refresh cycle (sampled workflows, min / median / max)',
            (() => {
              const all = described.flatMap((d) => d.cycles);
              return all.length
                ? `${Math.min(...all)} / ${percentile(all, 50)} / ${Math.max(...all)} (${all.length} cycles)`
                : 'no two refreshes in one run';
            })(),
          ],
          [`${temporalName} server RSS at end`, `${Math.round(child(last, temporalName).rssMb)} MB`],
          ['token endpoint calls / reused refresh tokens', `${last.token.tokenRequests} / ${last.token.reusedRefreshTokens}`],
          [
            `history length, ${described.length} sampled workflows (min / median / max)`,
            `${Math.min(...described.map((d) => d.historyLength))} / ${percentile(
              described.map((d) => d.historyLength),
              50,
            )} / ${Math.max(...described.map((d) => d.historyLength))} events; ` +
              `${described.filter((d) => !d.firstRun).length} of them continued-as-new at least once; refreshes carried in state median ${percentile(
                described.map((d) => d.refreshes),
                50,
              )}`,
          ],
        ],
      ),
    );
    if (!timeSkipping) {
      lines.push('');
      lines.push(
        `Lateness by stage (s): ${stages.length} timer-woken refreshes in the window from ${described.length} sampled histories (each run's last ≤ 100 events)`,
      );
      lines.push(
        table(
          ['stage', 'p50', 'p90', 'p99', 'max'],
          [
            stageRow('timer fired after its due time (server timer queue)', 'timerLate'),
            stageRow('workflow task waited for a worker (incl. timed-out tries)', 'taskWait'),
            stageRow('workflow task ran on the worker (a cache miss replays here)', 'taskRun'),
            stageRow('refresh activity waited for a worker', 'activityWait'),
            stageRow('refresh activity ran (token call, database write)', 'activityRun'),
          ],
        ),
      );
      lines.push('');
      lines.push(
        `Steady refreshes > 1 s late in the window: ${windowLate.length}; ${windowLate.filter((l) => inReconcile(l.at)).length} of them during a reconcile run (+${RECONCILE_MARGIN_MS / 1000} s), ` +
          `whose ${reconcileRuns.length} runs cover ${Math.round((100 * reconcileCoverMs) / Math.max(1, windowEnd - windowStart))} % of the window`,
      );
    }
    /** A heading, then tables one blank line apart. */
    const section = (heading: string, ...tables: string[]) => lines.push('', heading, ...tables.flatMap((t, i) => (i ? ['', t] : [t])));
    if (profile) {
      section(
        `Worker process CPU profile over the window (busy ${Math.round(profile.busyMs)} ms of ${Math.round(profile.totalMs)} ms), self time by origin:`,
        table(
          ['origin', 'ms', '% busy'],
          profile.byOrigin.map((o) => [o.origin, o.ms, o.pct]),
        ),
        table(
          ['function', 'where', 'ms', '% busy'],
          profile.topFunctions.map((f) => [f.fn, f.where, f.ms, f.pct]),
        ),
      );
    }
    if (serverProfile) {
      section(
        `Temporal server CPU profile over the window (perf, ${serverProfile.samples} samples at 99 Hz; % of the server's samples), by package:`,
        table(
          ['package', '% self', '% inclusive'],
          serverProfile.byPackage.map((p) => [p.pkg, p.selfPct, p.inclusivePct]),
        ),
        table(
          ['part of the server (stacks passing through it; parts overlap)', '%'],
          serverProfile.byPart.map((p) => [p.part, p.pct]),
        ),
        table(
          ['function (self)', '%'],
          serverProfile.topSelf.map((f) => [f.fn, f.pct]),
        ),
      );
    }
    console.log(lines.join('\n'));
    const out = argValue('out');
    if (out)
      writeFileSync(
        out,
        JSON.stringify(
          {
            N,
            TTL_SEC,
            MINUTES,
            DAYS,
            timeSkipping,
            wallSec,
            createSec,
            samples,
            lateness,
            firstLateness,
            expiredBeforeRefresh,
            expiredAtEnd,
            described,
            reconcileRuns,
            lateAt,
            windowStart,
            windowEnd,
            serverProfile,
          },
          null,
          1,
        ),
      );
  } finally {
    if (running.worker.getState() === 'RUNNING') running.worker.shutdown();
    await running.done.catch(() => {});
    await tokens.stop();
    await stack.stop();
  }
}

runBench(main);
