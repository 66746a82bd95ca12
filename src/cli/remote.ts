// The commands that talk to a running Maestro over HTTP, like any other client: login,
// credentials, api-keys (client keys) and usage. Each prints what came back as text.
import { createInterface } from 'node:readline/promises';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config.js';
import { ConfigError } from '../errors.js';

/** Where the running Maestro is, and the key to call it with. */
export function apiTarget(opts: { url?: string; key?: string }): { url: string; key: string } {
  const config = loadConfig();
  const url = (opts.url ?? config.cli.url ?? `http://localhost:${config.port}`).replace(/\/$/, '');
  const devKeyFile = path.join(config.dataDir, 'api-key');
  const key =
    opts.key ?? config.cli.apiKey ?? config.apiKeys[0] ?? (existsSync(devKeyFile) ? readFileSync(devKeyFile, 'utf8').trim() : undefined);
  if (!key) throw new ConfigError('no Maestro API key: pass --key, or set MAESTRO_API_KEY');
  return { url, key };
}

export async function call(target: { url: string; key: string }, method: string, route: string, body?: unknown): Promise<unknown> {
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

export async function login(provider: string, opts: { name?: string; url?: string; key?: string }): Promise<void> {
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

export async function credentials(opts: { url?: string; key?: string }): Promise<void> {
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

export const wholeNumber = (flag: string) => (value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new ConfigError(`${flag} must be a positive whole number, not "${value}"`);
  return Number(value);
};
export const yesNo = (flag: string) => (value: string) => {
  if (value === 'yes' || value === 'true') return true;
  if (value === 'no' || value === 'false') return false;
  throw new ConfigError(`${flag} must be yes or no, not "${value}"`);
};
export const collect = (value: string, previous: string[] = []) => [
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
  pools?: string[];
  expiresAt: string | null;
  limits: { requestsPerMinute?: number; tokensPerDay?: number; concurrentCalls?: number };
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export async function apiKeysCreate(opts: {
  name: string;
  role: string;
  credential?: string[];
  provider?: string[];
  pool?: string[];
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
    pools: opts.pool,
    expiresAt: opts.expires === undefined ? undefined : expiryOption(opts.expires),
    limits: limits.requestsPerMinute || limits.tokensPerDay || limits.concurrentCalls ? limits : undefined,
  })) as KeyAnswer & { key: string };
  process.stdout.write(
    `Created ${created.role} key "${created.name}" (${created.id})${created.expiresAt ? `, expires ${created.expiresAt}` : ''}.\n` +
      'The key is shown this once; store it now:\n\n' +
      `  ${created.key}\n\n`,
  );
}

export async function apiKeysList(opts: { url?: string; key?: string }): Promise<void> {
  const { keys } = (await call(apiTarget(opts), 'GET', '/v1/keys')) as { keys: KeyAnswer[] };
  if (keys.length === 0) {
    process.stdout.write('no keys yet (MAESTRO_API_KEYS are admin keys): `maestro api-keys create --name <name> --provider anthropic`\n');
    return;
  }
  const rows = keys.map((k) => {
    const reach =
      k.role === 'admin'
        ? 'everything'
        : [...k.providers.map((p) => `${p}/*`), ...k.credentials, ...(k.pools ?? []).map((p) => `pool:${p}`)].join(',');
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
  printTable(['ID', 'NAME', 'ROLE', 'REACHES', 'LIMITS', 'EXPIRES', 'LAST USED', 'STATE'], rows);
}

/** Rows under a header, columns padded to their widest cell. */
export function printTable(header: string[], rows: Array<Array<string | number>>): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  for (const r of [header, ...rows])
    process.stdout.write(
      `${r
        .map((c, i) => String(c).padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
}

export async function apiKeysRevoke(id: string, opts: { url?: string; key?: string }): Promise<void> {
  await call(apiTarget(opts), 'DELETE', `/v1/keys/${encodeURIComponent(id)}`);
  process.stdout.write(`Revoked key ${id}: every Maestro API process refuses it within 2 s.\n`);
}

interface UsageAnswer {
  from: string;
  to: string;
  usage: Array<Record<string, string | number | undefined>>;
}

export async function usage(opts: {
  from?: string;
  to?: string;
  groupBy: string;
  bucket: string;
  url?: string;
  key?: string;
}): Promise<void> {
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
