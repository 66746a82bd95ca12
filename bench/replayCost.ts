// npm run bench:replay — what a workflow costs the worker when it is not in the sticky cache:
// on its next wake the worker fetches the whole history of the current run and replays it.
// One credential with 2-minute tokens runs on the time-skipping server (continue-as-new off)
// until its history reaches each length; at each, the history is fetched (timed) and replayed
// against the current workflow bundle (Worker.runReplayHistory, CPU timed, median of 5). The
// continue-as-new threshold follows from it (docs/BENCHMARKS.md).
//
//   npm run bench:replay                         # lengths 50 … 4000 (~3 min)
// The server suggests continue-as-new near 4,000+ events, so longer runs do not happen.
// Options: --lengths 50,100,200,500,1000,2000,4000  --repeat 5  --out file.json
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Worker } from '@temporalio/worker';
import { createCore, startWorker } from '../src/app/services.js';
import { createLogger } from '../src/logger.js';
import { dataConverterFor } from '../src/temporal/payloadCodec.js';
import { bundleWorkflows } from '../src/temporal/worker.js';
import { credentialWorkflowId } from '../src/workflows/credentialRefresh.js';
import type { ProviderOverrides } from '../src/config.js';
import { spawnChild } from './lib/ipc.js';
import { eventsPerCycle } from './lib/historyCycles.js';
import { argNumber, argValue, median, round, table } from './lib/stats.js';
import { startBenchStack } from './lib/stack.js';
import { runBench } from './lib/run.js';

const LENGTHS = (argValue('lengths') ?? '50,100,200,500,1000,2000,4000').split(',').map(Number);
const REPEAT = argNumber('repeat', 5);
const log = (...parts: unknown[]) => console.error(`[bench:replay ${new Date().toISOString().slice(11, 19)}]`, ...parts);

async function main() {
  const tokens = await spawnChild<{ overrides: ProviderOverrides }>(new URL('./tokenServer.ts', import.meta.url), {
    env: { BENCH_TTL_SEC: '120' },
  });
  const o = tokens.ready.overrides;
  const stack = await startBenchStack({
    temporal: 'time-skipping',
    env: {
      MAESTRO_ANTHROPIC_BASE_URL: o.baseUrl!,
      MAESTRO_ANTHROPIC_OAUTH_TOKEN_URL: o.oauthTokenUrl!,
      MAESTRO_ANTHROPIC_OAUTH_AUTHORIZE_URL: o.oauthAuthorizeUrl!,
    },
  });
  const { config, db, env } = stack;
  // Continue-as-new only past the longest length measured.
  const core = createCore(config, db, env.client, { maxHistoryEvents: Math.max(...LENGTHS) + 1000 });
  const running = await startWorker(config, createLogger('silent'), env.nativeConnection, core);
  const bundle = await bundleWorkflows();
  const dataConverter = dataConverterFor(config);
  const rows: { events: number; refreshes: number; fetchMs: number; replayCpuMs: number; replayWallMs: number; perEventUs: number }[] = [];
  try {
    const refreshToken = `sk-ant-ort01-replay${randomBytes(12).toString('hex')}`;
    const accessToken = `sk-ant-oat01-replay${randomBytes(12).toString('hex')}`;
    await tokens.call('seed', { pairs: [[refreshToken, accessToken]] });
    const metadata = await core.store.create({
      provider: 'anthropic',
      authType: 'oauth',
      name: 'replay',
      secret: { accessToken, refreshToken },
      expiresAt: new Date(Date.now() + 120_000),
    });
    await core.workflows.start(metadata);
    const handle = env.client.workflow.getHandle(credentialWorkflowId(metadata.id));
    let continued = false;
    for (const target of LENGTHS) {
      // A refresh every 60 simulated seconds; sleep in steps until the history is long enough.
      for (;;) {
        const { historyLength, runId } = await handle.describe();
        if (historyLength >= target) break;
        const cycles = Math.max(1, Math.ceil((target - historyLength) / 12));
        await env.sleep(Math.min(cycles, 100) * 60_000);
        if ((await handle.describe()).runId !== runId) {
          log(`the run continued-as-new (the server's suggestion) after ${historyLength}+ events: no longer runs to measure`);
          continued = true;
          break;
        }
      }
      if (continued) break;
      const t0 = performance.now();
      const history = await handle.fetchHistory();
      const fetchMs = performance.now() - t0;
      const events = history.events?.length ?? 0;
      const cpu: number[] = [];
      const wall: number[] = [];
      for (let i = 0; i < REPEAT; i++) {
        const c0 = process.cpuUsage();
        const w0 = performance.now();
        await Worker.runReplayHistory({ workflowBundle: bundle, dataConverter }, history, credentialWorkflowId(metadata.id));
        wall.push(performance.now() - w0);
        const c = process.cpuUsage(c0);
        cpu.push((c.user + c.system) / 1000);
      }
      const row = {
        events,
        refreshes: eventsPerCycle(history.events ?? []).length + 1,
        fetchMs: round(fetchMs, 1),
        replayCpuMs: round(median(cpu), 1),
        replayWallMs: round(median(wall), 1),
        perEventUs: round((1000 * median(cpu)) / events, 1),
      };
      rows.push(row);
      log(`${events} events: fetch ${row.fetchMs} ms, replay ${row.replayCpuMs} ms CPU (${row.perEventUs} µs/event)`);
    }
    const lines = [
      `## bench:replay — ${new Date().toISOString()}`,
      '',
      'One credential, 2-minute tokens, time-skipping server; replay = Worker.runReplayHistory of the whole run (CPU of this process, median of ' +
        `${REPEAT}); fetch = client.fetchHistory wall time.`,
      '',
      table(
        ['history events', 'refreshes in the run', 'fetch ms', 'replay CPU ms', 'replay wall ms', 'CPU µs per event'],
        rows.map((r) => [r.events, r.refreshes, r.fetchMs, r.replayCpuMs, r.replayWallMs, r.perEventUs]),
      ),
    ];
    console.log(lines.join('\n'));
    const out = argValue('out');
    if (out) writeFileSync(out, JSON.stringify(rows, null, 1));
  } finally {
    running.worker.shutdown();
    await running.done.catch(() => {});
    await tokens.stop();
    await stack.stop();
  }
}

runBench(main);
