// npx tsx bench/coldPath.ts — the same function (buildProviderCall: the upstream URL and headers of
// one proxied Anthropic call) in a hot loop, and once after the process idled 5 ms or 1.3 s, as a
// stream's first event finds it when the proxy mostly waits between events. On a VM core that
// idles, caches and predictors go cold: the per-request code a proxy touches costs many times its
// hot-loop time (docs/BENCHMARKS.md 5.4).
import { buildProviderCall } from '../src/auth/clientBuilder.js';
import { defineProvider } from '../src/providers/registry.js';
import { median } from './lib/stats.js';
import { runBench } from './lib/run.js';

async function main() {
  const def = defineProvider('anthropic', { baseUrl: 'http://127.0.0.1:40000' });
  const input = {
    auth: { type: 'api_key' as const, apiKey: 'sk-ant-api03-benchUpstreamKey0123456789' },
    method: 'POST',
    path: '/v1/messages',
    search: '',
    clientHeaders: {
      host: '127.0.0.1:3000',
      connection: 'keep-alive',
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      'x-api-key': 'msk_benchbenchbenchbench',
      'content-length': '150',
    },
    body: Buffer.from('{"model":"claude-sonnet-4-5","max_tokens":512,"stream":true,"messages":[]}'),
  };
  const N = 100_000;
  const hot: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    for (let i = 0; i < N; i++) buildProviderCall(def, input);
    hot.push(((performance.now() - t) * 1000) / N);
  }
  const after: Record<number, number[]> = { 5: [], 1300: [] };
  for (let i = 0; i < 20; i++) {
    const idleMs = i % 2 ? 1300 : 5;
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    const t = performance.now();
    buildProviderCall(def, input);
    after[idleMs]!.push((performance.now() - t) * 1000);
  }
  console.log(
    `buildProviderCall: hot loop ${median(hot).toFixed(1)} µs; after 5 ms idle ${median(after[5]!).toFixed(1)} µs; after 1.3 s idle ${median(after[1300]!).toFixed(1)} µs (medians of 10)`,
  );
}

runBench(main);
