// npx tsx bench/streamProbe.ts — a stream's first event through Maestro (dev, admin key), the bare
// forwarder and directly, one stream at a time and 8 at once (starts 160 ms apart), alternating
// cases; medians of 4 rounds (~3 minutes: a stream lasts 1.3 s). Says whether Maestro's first-event
// gap comes from concurrent streams (it does not: the gap is the same at 1 and at 8) or from each
// request's own path (docs/BENCHMARKS.md 5.4; bench/coldPath.ts shows why that path is slower
// between events).
import path from 'node:path';
import { spawnChild } from './lib/ipc.js';
import { pinToCpus } from './lib/procstat.js';
import { BENCH_API_KEY, BENCH_UPSTREAM_ENV, BENCH_UPSTREAM_KEY } from './lib/stack.js';
import { median } from './lib/stats.js';
import { runBench } from './lib/run.js';

const ROUNDS = 4;
const HERE = path.dirname(new URL(import.meta.url).pathname);
const upstreamKey = BENCH_UPSTREAM_KEY;
const childEnv = BENCH_UPSTREAM_ENV;

async function main() {
  const upstream = await spawnChild<{ url: string }>(path.join(HERE, 'upstream.ts'), { env: childEnv });
  const env = { ...childEnv, BENCH_UPSTREAM_URL: upstream.ready.url, BENCH_LOG_LEVEL: 'silent' };
  const [forwarder, loadgen, maestro] = await Promise.all([
    spawnChild<{ url: string }>(path.join(HERE, 'forwarder.ts'), { env }),
    spawnChild<Record<string, never>>(path.join(HERE, 'loadgen.ts'), { env }),
    spawnChild<{ url: string }>(path.join(HERE, 'maestroServer.ts'), { env }),
  ]);
  try {
    for (const c of [upstream, loadgen]) pinToCpus(c.proc.pid!, '0');
    for (const c of [forwarder, maestro]) pinToCpus(c.proc.pid!, '1');
    const base = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };
    const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 512, stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const targets = {
      direct: { url: `${upstream.ready.url}/v1/messages`, headers: { ...base, 'x-api-key': upstreamKey }, body },
      forwarder: { url: `${forwarder.ready.url}/v1/messages`, headers: { ...base, 'x-api-key': BENCH_API_KEY }, body },
      maestro: { url: `${maestro.ready.url}/proxy/anthropic/v1/messages`, headers: { ...base, 'x-api-key': BENCH_API_KEY }, body },
    };
    for (const name of Object.keys(targets) as (keyof typeof targets)[])
      await loadgen.call('stream', { target: targets[name], n: 8, concurrency: 4 }); // warm-up
    for (const concurrency of [1, 8]) {
      const medians: Record<string, number[]> = { direct: [], forwarder: [], maestro: [] };
      for (let round = 0; round < ROUNDS; round++)
        for (const name of Object.keys(targets) as (keyof typeof targets)[]) {
          const res = await loadgen.call<{ firstEvent: number[]; errors: number }>('stream', {
            target: targets[name],
            n: concurrency === 1 ? 8 : 16,
            concurrency,
            staggerMs: concurrency === 1 ? 0 : 160,
          });
          if (res.errors) throw new Error(`${name}: ${res.errors} errors`);
          medians[name]!.push(median(res.firstEvent));
        }
      const d = median(medians.direct!);
      console.log(
        `${concurrency} at a time — first event p50: ${Object.entries(medians)
          .map(([k, v]) => `${k} ${median(v).toFixed(3)} ms${k === 'direct' ? '' : ` (+${(median(v) - d).toFixed(3)})`}`)
          .join(', ')}`,
      );
    }
  } finally {
    for (const c of [maestro, loadgen, forwarder, upstream]) await c.stop();
  }
}

runBench(main);
