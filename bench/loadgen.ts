// Child process: the load generator for bench:proxy (undici Pool, its own event loop).
//   latency: closed loop, n requests at a given concurrency; every request's latency (ms).
//   rate:    open loop at a fixed request rate for a duration; latency is measured from when each
//            request was *due*, so a server that falls behind shows it (no coordinated omission).
//   stream:  n SSE requests; time to the first complete event, total time, events seen.
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { serve } from './lib/ipc.js';
import { percentile } from './lib/stats.js';

export interface Target {
  url: string; // origin + path
  headers: Record<string, string>;
  body: string;
  /** Session ids sent as `x-claude-code-session-id`, one per request in turn (a few sessions cycling). */
  sessions?: string[];
}

const SESSION_HEADER = 'x-claude-code-session-id';
let sessionTurn = 0;
/** The request's headers: the target's, with the next session id when it cycles sessions. */
function headersOf(t: Target): Record<string, string> {
  if (!t.sessions?.length) return t.headers;
  return { ...t.headers, [SESSION_HEADER]: t.sessions[sessionTurn++ % t.sessions.length]! };
}

const pools = new Map<string, Pool>();
function pool(origin: string, connections: number): Pool {
  const key = `${origin}#${connections}`;
  let p = pools.get(key);
  if (!p) {
    p = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
    pools.set(key, p);
  }
  return p;
}

async function once(p: Pool, path: string, t: Target): Promise<{ status: number; bytes: number }> {
  const res = await p.request({ path, method: 'POST', headers: headersOf(t), body: t.body });
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Buffer).length;
  return { status: res.statusCode, bytes };
}

async function latency(args: { target: Target; n: number; concurrency: number }) {
  const u = new URL(args.target.url);
  const p = pool(u.origin, args.concurrency);
  const out = new Float64Array(args.n);
  let next = 0;
  let errors = 0;
  let lastError = '';
  const worker = async () => {
    while (next < args.n) {
      const i = next++;
      const start = performance.now();
      try {
        const r = await once(p, u.pathname, args.target);
        if (r.status !== 200) {
          errors++;
          lastError = `status ${r.status}`;
        }
      } catch (error) {
        errors++;
        lastError = (error as Error).message;
      }
      out[i] = performance.now() - start;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: args.concurrency }, worker));
  const elapsed = performance.now() - started;
  return { latencies: Array.from(out), errors, lastError, rps: (args.n / elapsed) * 1000 };
}

async function rate(args: { target: Target; rate: number; durationMs: number; connections: number; maxInFlight?: number }) {
  const u = new URL(args.target.url);
  const p = pool(u.origin, args.connections);
  const total = Math.round((args.rate * args.durationMs) / 1000);
  const lat: number[] = [];
  let errors = 0;
  let lastError = '';
  let sent = 0;
  let inFlight = 0;
  let dropped = 0;
  const maxInFlight = args.maxInFlight ?? 2_000;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let done = 0;
    const finish = () => {
      if (++done === total) resolve();
    };
    const fire = (due: number) => {
      inFlight++;
      once(p, u.pathname, args.target).then(
        (r) => {
          inFlight--;
          if (r.status !== 200) {
            errors++;
            lastError = `status ${r.status}`;
          }
          lat.push(performance.now() - due);
          finish();
        },
        (error: Error) => {
          inFlight--;
          errors++;
          lastError = error.message;
          lat.push(performance.now() - due);
          finish();
        },
      );
    };
    const tick = () => {
      const now = performance.now();
      const shouldHaveSent = Math.min(total, Math.floor(((now - start) * args.rate) / 1000) + 1);
      while (sent < shouldHaveSent) {
        const due = start + (sent * 1000) / args.rate;
        sent++;
        if (inFlight >= maxInFlight) {
          // Hopelessly behind: count it as a failure rather than queue without bound.
          dropped++;
          errors++;
          finish();
          continue;
        }
        fire(due);
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  const elapsed = performance.now() - start;
  return {
    rate: args.rate,
    sent,
    completed: lat.length,
    errors,
    dropped,
    lastError,
    achieved: (lat.length / elapsed) * 1000,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    max: percentile(lat, 100),
  };
}

async function stream(args: { target: Target; n: number; concurrency: number; staggerMs?: number }) {
  const u = new URL(args.target.url);
  const p = pool(u.origin, args.concurrency);
  const firstEvent: number[] = [];
  const total: number[] = [];
  const events: number[] = [];
  let errors = 0;
  let lastError = '';
  let next = 0;
  const worker = async (k: number) => {
    // Staggered starts: a new stream begins while the others are mid-stream (as in real use),
    // instead of all first events queueing behind each other.
    await new Promise((resolve) => setTimeout(resolve, k * (args.staggerMs ?? 0)));
    while (next < args.n) {
      next++;
      const start = performance.now();
      try {
        const res = await p.request({ path: u.pathname, method: 'POST', headers: headersOf(args.target), body: args.target.body });
        if (res.statusCode !== 200) {
          errors++;
          lastError = `status ${res.statusCode}`;
          await res.body.dump();
          continue;
        }
        let seen = '';
        let first = -1;
        let count = 0;
        for await (const chunk of res.body) {
          const s = (chunk as Buffer).toString('utf8');
          if (first < 0) {
            seen += s;
            if (seen.includes('\n\n')) first = performance.now() - start;
          }
          count += s.split('\n\n').length - 1;
        }
        firstEvent.push(first);
        total.push(performance.now() - start);
        events.push(count);
      } catch (error) {
        errors++;
        lastError = (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, (_, k) => worker(k)));
  return { firstEvent, total, events, errors, lastError };
}

serve(
  {
    latency,
    rate,
    stream,
    usage: () => ({ rss: process.memoryUsage().rss, cpu: process.cpuUsage() }),
    shutdown: async () => {
      await Promise.all([...pools.values()].map((p) => p.close()));
      setImmediate(() => process.exit(0));
      return true;
    },
  },
  {},
);
