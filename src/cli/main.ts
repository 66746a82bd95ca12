// The `maestro` command: dev (whole local stack), api, worker, migrate, keys rotate (encryption keys),
// openapi, and over HTTP: login, credentials, api-keys (client keys), pools, usage. This file is the wiring
// (commands, options, the one error line); the commands live in serve.ts (run here) and remote.ts
// (call a running Maestro).
import { readFileSync, existsSync } from 'node:fs';
import { Command } from 'commander';
import { api, dev, keysRotate, migrate, worker } from './serve.js';
import { apiKeysCreate, apiKeysList, apiKeysRevoke, collect, credentials, login, usage, wholeNumber, yesNo } from './remote.js';
import { poolsCreate, poolsDelete, poolsEdit, poolsList, poolsShow } from './pools.js';

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
    .option('--pool <id-or-name>', 'a pool the key may use (repeat, or comma-separate)', collect)
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
const pools = program.command('pools').description('pools: several credentials behind one name (needs an admin key to change)');
const policy = (cmd: Command) =>
  cmd
    .option('--member <credential[:priority[:weight[:max]]]>', 'a member (repeat, or comma-separate); max is maxUtilization, 0–1', collect)
    .option('--strategy <strategy>', 'affinity-least-loaded (default), drain-soonest or priority-fill')
    .option('--hold <seconds>', 'when every member is out: hold requests up to this long (1–600)', wholeNumber('--hold'))
    .option('--reject', 'when every member is out: answer 429 pool_exhausted at once (the default)')
    .option(
      '--plan-limits-only <yes|no>',
      'no: let members spend extra usage (yes, the default: they take no work while they do)',
      yesNo('--plan-limits-only'),
    )
    .option('--session-ttl <seconds>', 'how long an idle session stays bound (default 3600)', wholeNumber('--session-ttl'));
remote(
  policy(
    pools.command('create <name>').description('create a pool').requiredOption('--provider <provider>', 'anthropic, openai or gemini'),
  ),
).action(poolsCreate);
remote(pools.command('list').description('list pools with how many members are routable')).action(poolsList);
remote(pools.command('show <id-or-name>').description("a pool's members: state, reason, until, sessions, calls in flight")).action(
  poolsShow,
);
remote(
  policy(pools.command('edit <id-or-name>').description("change a pool's members or policy").option('--name <name>', 'rename it')),
).action(poolsEdit);
remote(pools.command('delete <id-or-name>').description('delete a pool (its credentials stay)')).action(poolsDelete);
remote(
  program
    .command('usage')
    .description('tokens and requests as a table (admin: every key; a client key: its own)')
    .option('--from <when>', 'ISO date-time or how long ago (24h, 7d); default 24h ago')
    .option('--to <when>', 'ISO date-time or how long ago; default now')
    .option('--group-by <dims>', 'comma-separated: key,credential,provider,model,pool', 'key,provider,model')
    .option('--bucket <size>', 'hour, day or none', 'none'),
).action(usage);

program.parseAsync().catch((error: unknown) => {
  // One clear line, no stack trace: the message says what to fix.
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`maestro: ${message}\n`);
  process.exit(1);
});
