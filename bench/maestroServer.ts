// Child process: the real Maestro app as `maestro dev` wires it (createCore + startWorker +
// startApi in one process, real embedded PostgreSQL, real Temporal dev server), with the
// anthropic provider pointed at the bench upstream. Every query any pg client in this process
// sends is counted (pg.Client.prototype.query is wrapped before anything connects), and
// pg_stat_database.xact_commit is read as a cross-check that covers every process.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { request } from 'undici';
import { createCore, startApi, startWorker } from '../src/app/services.js';
import { createLogger } from '../src/logger.js';
import { serve } from './lib/ipc.js';
import { profileStart, profileStop } from './lib/profiler.js';
import { BENCH_API_KEY, startBenchStack } from './lib/stack.js';

let queries = 0;
const originalQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  queries++;
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
} as typeof pg.Client.prototype.query;

const upstreamUrl = process.env.BENCH_UPSTREAM_URL!;
const logLevel = process.env.BENCH_LOG_LEVEL ?? 'silent';

const stack = await startBenchStack({
  temporal: 'dev',
  env: { MAESTRO_ANTHROPIC_BASE_URL: upstreamUrl, LOG_LEVEL: logLevel },
});
const { config, db, databaseUrl, env } = stack;
// Production logs at info, one line per request (pino-http), synchronously like pino's default
// stdout; here into a file so the bench's own output stays readable.
const logFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'maestro-bench-log-')), 'maestro.log');
const log = logLevel === 'silent' ? createLogger('silent') : createLogger(logLevel, pino.destination({ dest: logFile, sync: true }));
const core = createCore(config, db, env.client);
const { worker, done } = await startWorker(config, log, env.nativeConnection, core);
const api = await startApi(config, log, db, databaseUrl, env.client, core);

const auth = { authorization: `Bearer ${BENCH_API_KEY}`, 'content-type': 'application/json' };
async function addCredential(body: Record<string, unknown>) {
  const res = await request(`${api.url}/v1/credentials`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
  const json = (await res.body.json()) as { id?: string };
  if (res.statusCode !== 201) throw new Error(`POST /v1/credentials → ${res.statusCode} ${JSON.stringify(json)}`);
  return json.id!;
}
const apiKeyId = await addCredential({ provider: 'anthropic', authType: 'api_key', apiKey: process.env.BENCH_UPSTREAM_KEY });
const oauthId = await addCredential({
  provider: 'anthropic',
  authType: 'oauth',
  name: 'oauth',
  accessToken: process.env.BENCH_UPSTREAM_TOKEN,
  refreshToken: 'sk-ant-ort01-benchRefreshToken0123456789',
  expiresIn: 8 * 3600,
});

// A pool of three more API-key credentials (the same upstream key: the fake accepts one; Maestro
// routes them as three accounts): the bench's `maestro-pool` case (x-maestro-pool: bench, with a
// session header). Not named `default`, so calls without the header stay on the one credential.
const poolMembers: string[] = [];
for (const name of ['pool-a', 'pool-b', 'pool-c']) {
  poolMembers.push(await addCredential({ provider: 'anthropic', authType: 'api_key', name, apiKey: process.env.BENCH_UPSTREAM_KEY }));
}
const poolAnswer = await request(`${api.url}/v1/pools`, {
  method: 'POST',
  headers: auth,
  body: JSON.stringify({ name: 'bench', provider: 'anthropic', members: poolMembers.map((credential) => ({ credential })) }),
});
const { id: poolId } = (await poolAnswer.body.json()) as { id: string };
if (poolAnswer.statusCode !== 201) throw new Error(`POST /v1/pools → ${poolAnswer.statusCode}`);

// A client key (role client, every anthropic credential): the bench's `maestro-client` case.
const keyAnswer = await request(`${api.url}/v1/keys`, {
  method: 'POST',
  headers: auth,
  body: JSON.stringify({ name: 'bench client', role: 'client', providers: ['anthropic'] }),
});
const { key: clientKey } = (await keyAnswer.body.json()) as { key: string };
if (keyAnswer.statusCode !== 201) throw new Error(`POST /v1/keys → ${keyAnswer.statusCode}`);

const statsClient = new pg.Client({ connectionString: databaseUrl });
await statsClient.connect();
async function xactCommit(): Promise<number> {
  // Through the unwrapped query so the cross-check does not count itself in `queries`.
  const run = originalQuery as unknown as (this: pg.Client, text: string) => Promise<pg.QueryResult<{ xact_commit: string }>>;
  const r = await run.call(statsClient, 'select xact_commit from pg_stat_database where datname = current_database()');
  return Number(r.rows[0]!.xact_commit);
}

serve(
  {
    profileStart,
    profileStop,
    /** The pool as GET /v1/pools/:id shows it: each member's state, sessions and calls in flight. */
    poolState: async () => {
      const res = await request(`${api.url}/v1/pools/${poolId}`, { headers: auth });
      const json = (await res.body.json()) as {
        members?: { credentialId?: string; state?: string; sessions?: number; inFlight?: number }[];
      };
      return (json.members ?? []).map((m) => ({
        credentialId: m.credentialId,
        state: m.state,
        sessions: m.sessions,
        inFlight: m.inFlight,
      }));
    },
    counters: async () => ({
      queries,
      xactCommit: await xactCommit(),
      cacheSize: api.cache.size,
      rss: process.memoryUsage().rss,
      cpu: process.cpuUsage(),
    }),
    shutdown: async () => {
      await api.close();
      worker.shutdown();
      await done;
      await statsClient.end();
      await stack.stop();
      rmSync(path.dirname(logFile), { recursive: true, force: true });
      setImmediate(() => process.exit(0));
      return true;
    },
  },
  {
    url: api.url,
    apiKeyId,
    oauthId,
    poolId,
    poolMembers,
    clientKey,
    logFile: logLevel === 'silent' ? null : logFile,
    // What a separate `maestro api` (the production build) needs to join this stack.
    databaseUrl,
    temporalAddress: env.address,
    taskQueue: config.temporal.taskQueue,
  },
);
