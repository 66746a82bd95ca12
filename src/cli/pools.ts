// `maestro pools create|list|show|edit|delete`: pools over the HTTP API (DESIGN.md "Pools"), like
// any other client. A member is `<credential id or name>[:priority[:weight[:maxUtilization]]]`.
import { ConfigError } from '../errors.js';
import type { PoolView } from '../model/pools.js';
import { apiTarget, call, printTable } from './remote.js';

interface Target {
  url?: string;
  key?: string;
}

interface PolicyOptions extends Target {
  member?: string[];
  strategy?: string;
  hold?: number;
  reject?: boolean;
  planLimitsOnly?: boolean;
  sessionTtl?: number;
  name?: string;
}

/** `alice`, `alice:1`, `alice:1:2`, `alice:1:2:0.9` → a member of the API's shape. */
export function parseMember(spec: string): { credential: string; priority?: number; weight?: number; maxUtilization?: number } {
  const [credential, priority, weight, max] = spec.split(':');
  const number = (value: string | undefined, what: string) => {
    if (value === undefined || value === '') return undefined;
    const n = Number(value);
    if (!Number.isFinite(n)) throw new ConfigError(`--member ${spec}: ${what} must be a number, not "${value}"`);
    return n;
  };
  if (!credential) throw new ConfigError(`--member "${spec}": name a credential (id or name), e.g. --member alice:0:1:0.98`);
  return {
    credential,
    priority: number(priority, 'priority'),
    weight: number(weight, 'weight'),
    maxUtilization: number(max, 'maxUtilization'),
  };
}

function policyOf(opts: PolicyOptions) {
  if (opts.hold !== undefined && opts.reject) throw new ConfigError('--hold and --reject exclude each other');
  return {
    members: opts.member?.map(parseMember),
    strategy: opts.strategy,
    onExhausted: opts.hold !== undefined ? { mode: 'hold', holdSeconds: opts.hold } : opts.reject ? { mode: 'reject' } : undefined,
    planLimitsOnly: opts.planLimitsOnly,
    sessionTtlSeconds: opts.sessionTtl,
  };
}

export async function poolsCreate(name: string, opts: PolicyOptions & { provider: string }): Promise<void> {
  if (!opts.member?.length) throw new ConfigError('a pool needs members: --member <credential> (repeat, or comma-separate)');
  const pool = (await call(apiTarget(opts), 'POST', '/v1/pools', { name, provider: opts.provider, ...policyOf(opts) })) as PoolView;
  process.stdout.write(`Created pool "${pool.name}" (${pool.id}) with ${pool.members.length} members.\n`);
  printPool(pool);
}

export async function poolsList(opts: Target): Promise<void> {
  const { pools } = (await call(apiTarget(opts), 'GET', '/v1/pools')) as { pools: PoolView[] };
  if (pools.length === 0) {
    process.stdout.write('no pools yet: `maestro pools create <name> --provider anthropic --member <credential> --member <credential>`\n');
    return;
  }
  printTable(
    ['ID', 'NAME', 'PROVIDER', 'STRATEGY', 'ON EXHAUSTED', 'MEMBERS', 'ROUTABLE', 'NEXT AVAILABLE'],
    pools.map((p) => [
      p.id,
      p.name,
      p.provider,
      p.strategy,
      p.onExhausted.mode === 'hold' ? `hold ${p.onExhausted.holdSeconds}s` : 'reject',
      p.members.length,
      p.routable,
      p.nextAvailableAt ?? '-',
    ]),
  );
}

export async function poolsShow(idOrName: string, opts: Target): Promise<void> {
  printPool((await call(apiTarget(opts), 'GET', `/v1/pools/${encodeURIComponent(idOrName)}`)) as PoolView);
}

export async function poolsEdit(idOrName: string, opts: PolicyOptions): Promise<void> {
  const patch = { name: opts.name, ...policyOf(opts) };
  if (Object.values(patch).every((v) => v === undefined))
    throw new ConfigError('nothing to change: give --member, --strategy, --hold, --reject, --name …');
  printPool((await call(apiTarget(opts), 'PATCH', `/v1/pools/${encodeURIComponent(idOrName)}`, patch)) as PoolView);
}

export async function poolsDelete(idOrName: string, opts: Target): Promise<void> {
  await call(apiTarget(opts), 'DELETE', `/v1/pools/${encodeURIComponent(idOrName)}`);
  process.stdout.write(`Deleted pool ${idOrName} (its credentials stay).\n`);
}

function printPool(pool: PoolView): void {
  const exhausted = pool.onExhausted.mode === 'hold' ? `hold up to ${pool.onExhausted.holdSeconds}s` : 'reject';
  process.stdout.write(
    `${pool.name} (${pool.id}) ${pool.provider}, ${pool.strategy}, when exhausted: ${exhausted}, plan limits only: ${pool.planLimitsOnly ? 'yes' : 'no'}\n` +
      `${pool.routable} of ${pool.members.length} members routable${pool.nextAvailableAt ? `; next back at ${pool.nextAvailableAt}` : ''}\n\n`,
  );
  printTable(
    ['MEMBER', 'ID', 'PRIORITY', 'WEIGHT', 'MAX', 'STATE', 'REASON', 'UNTIL', 'SESSIONS', 'IN FLIGHT'],
    pool.members.map((m) => [
      m.credentialName,
      m.credentialId,
      m.priority,
      m.weight,
      `${Math.round(m.maxUtilization * 100)}%`,
      m.state,
      m.reason ?? '-',
      m.until ?? '-',
      m.sessions,
      m.inFlight,
    ]),
  );
}
