// Environment → one typed, validated Config. Nothing else in Maestro reads process.env.
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { loadTemporalConnection, type TemporalConnectionSettings } from './temporalConfig.js';

import { PROVIDER_IDS, type ProviderId } from './model/providers.js';
import { DEFAULT_REFRESH_WAIT_MS, MAX_REFRESH_WAIT_MS, MIN_REFRESH_WAIT_MS } from './model/refreshWait.js';

/** Re-exported for the callers that read settings per provider. */
export { PROVIDER_IDS, type ProviderId };

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

/** Per-provider overrides; anything unset falls back to the provider's public values. */
export interface ProviderOverrides {
  baseUrl?: string;
  /** Where sign-in (OAuth) tokens are sent when the provider serves them from another API than its keys (OpenAI: Codex, Gemini: Code Assist). */
  oauthBaseUrl?: string;
  oauthTokenUrl?: string;
  oauthAuthorizeUrl?: string;
  oauthClientId?: string;
  oauthClientSecret?: string;
  oauthRedirectUri?: string;
  oauthScopes?: string;
  userAgent?: string;
}

export interface Config {
  mode: 'development' | 'production' | 'test';
  /** Where development state lives: embedded Postgres data, Temporal db, generated keys, binaries. */
  dataDir: string;
  databaseUrl?: string;
  temporal: {
    /** Unset: Maestro starts an embedded dev server (development only). */
    address?: string;
    namespace: string;
    /** TLS, API key and gRPC metadata from Temporal's environment configuration (src/temporalConfig.ts). */
    connection: Omit<TemporalConnectionSettings, 'address' | 'namespace'>;
    taskQueue: string;
    cliPath?: string;
    testServerPath?: string;
    /** Ports of the embedded dev server (development only). */
    devPort: number;
    devUiPort: number;
  };
  host: string;
  port: number;
  /** Set: /metrics is served on this port (same host) by its own server, and the API's /metrics is 404. */
  metricsPort?: number;
  /** Empty in development until resolved by ensureDevSecrets. */
  apiKeys: string[];
  /** First key seals; all keys open. Empty in development until resolved by ensureDevSecrets. */
  encryptionKeys: EncryptionKey[];
  /** Keys of the Temporal payload codec (first seals, all open); empty: the encryption keys. */
  payloadKeys: EncryptionKey[];
  /** Browser origins (a Temporal Web UI) allowed to call /codec; development adds the dev server's UI. */
  codecCorsOrigins: string[];
  providers: Record<ProviderId, ProviderOverrides>;
  /** Proxy falls back to a provider's API key when its OAuth credential needs a new login. */
  apiKeyFallback: boolean;
  webhook: { url?: string; secret?: string };
  logLevel: string;
  /** Largest request body the API accepts, in bytes. */
  bodyLimitBytes: number;
  /** How long a refresh-now caller (route, proxy, durable message) waits before "still retrying" (ms). */
  refreshWaitMs: number;
  /**
   * Which hops' X-Forwarded-For to believe when finding a client's address (Express's `trust proxy`):
   * false (default: the socket's peer), true, a hop count, or addresses/subnets/`loopback`…
   */
  trustProxy: boolean | number | string[];
  /** Failed key checks per client address per minute before that address gets 429 for the rest of it. */
  authFailuresPerMinute: number;
  /**
   * How often each sign-in credential's workflow reads its quota endpoint while idle (ms;
   * MAESTRO_QUOTA_INTERVAL, default 15 min); 0: only while benched or when asked.
   */
  quotaIntervalMs: number;
  /** credential_events older than this many days are deleted by the maintenance schedule; 0 keeps them forever. */
  eventRetentionDays: number;
  /**
   * Workflows the worker keeps in its sticky cache (Temporal's maxCachedWorkflows). Bounds the
   * worker's memory; a workflow outside the cache replays its history on its next wake
   * (docs/BENCHMARKS.md measures both).
   */
  workflowCacheSize: number;
  /** API processes `maestro api` runs behind one port (node:cluster); 1: the API runs in this process. */
  apiProcesses: number;
  /** Where `maestro login` / `maestro credentials` find a running Maestro, and the key they present. */
  cli: { url?: string; apiKey?: string };
  /** The admin web page at /admin (MAESTRO_ADMIN_UI; off: /admin is 404). */
  adminUi: boolean;
  /** The Temporal Web UI the admin page links a credential's workflow to (dev: the embedded server's UI). */
  temporalUiUrl?: string;
}

const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const optionalUrl = (name: string) =>
  optionalString.refine((v) => v === undefined || URL.canParse(v), { message: `${name} must be an absolute URL` });

const MAX_API_PROCESSES = 256;

const envSchema = z.object({
  NODE_ENV: optionalString,
  MAESTRO_ENV: optionalString.pipe(z.enum(['development', 'production', 'test']).optional()),
  MAESTRO_DATA_DIR: optionalString,
  DATABASE_URL: optionalString.refine(
    (v) => v === undefined || /^postgres(ql)?:\/\//.test(v),
    'DATABASE_URL must be a postgres:// or postgresql:// URL',
  ),
  // Read (with the rest of Temporal's settings) by src/temporalConfig.ts.
  TEMPORAL_ADDRESS: optionalString,
  TEMPORAL_NAMESPACE: optionalString,
  MAESTRO_TASK_QUEUE: optionalString,
  MAESTRO_TEMPORAL_CLI_PATH: optionalString,
  MAESTRO_TEMPORAL_TEST_SERVER_PATH: optionalString,
  MAESTRO_DEV_TEMPORAL_PORT: optionalString.refine(
    (v) => v === undefined || /^\d{1,5}$/.test(v),
    'MAESTRO_DEV_TEMPORAL_PORT must be a port number',
  ),
  MAESTRO_DEV_UI_PORT: optionalString.refine((v) => v === undefined || /^\d{1,5}$/.test(v), 'MAESTRO_DEV_UI_PORT must be a port number'),
  HOST: optionalString,
  PORT: optionalString.refine((v) => v === undefined || (/^\d+$/.test(v) && Number(v) < 65536), 'PORT must be a port number (0-65535)'),
  MAESTRO_METRICS_PORT: optionalString.refine(
    (v) => v === undefined || (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) < 65536),
    'MAESTRO_METRICS_PORT must be a port number (1-65535)',
  ),
  MAESTRO_API_KEYS: optionalString,
  MAESTRO_ENCRYPTION_KEYS: optionalString,
  MAESTRO_PAYLOAD_KEYS: optionalString,
  MAESTRO_CODEC_CORS_ORIGINS: optionalString,
  MAESTRO_API_KEY_FALLBACK: optionalString.pipe(
    z.enum(['true', 'false', '1', '0'], { error: 'MAESTRO_API_KEY_FALLBACK must be true or false' }).optional(),
  ),
  MAESTRO_WEBHOOK_URL: optionalUrl('MAESTRO_WEBHOOK_URL'),
  MAESTRO_WEBHOOK_SECRET: optionalString,
  MAESTRO_BODY_LIMIT_BYTES: optionalString.refine(
    (v) => v === undefined || /^\d+$/.test(v),
    'MAESTRO_BODY_LIMIT_BYTES must be a whole number of bytes',
  ),
  MAESTRO_REFRESH_WAIT_MS: optionalString.refine(
    (v) => v === undefined || (/^\d+$/.test(v) && Number(v) >= MIN_REFRESH_WAIT_MS && Number(v) <= MAX_REFRESH_WAIT_MS),
    `MAESTRO_REFRESH_WAIT_MS must be a whole number of milliseconds from ${MIN_REFRESH_WAIT_MS} to ${MAX_REFRESH_WAIT_MS}`,
  ),
  MAESTRO_TRUST_PROXY: optionalString,
  MAESTRO_AUTH_FAILURES_PER_MINUTE: optionalString.refine(
    (v) => v === undefined || (/^\d+$/.test(v) && Number(v) >= 1),
    'MAESTRO_AUTH_FAILURES_PER_MINUTE must be a whole number from 1',
  ),
  MAESTRO_QUOTA_INTERVAL: optionalString.refine(
    (v) => v === undefined || quotaIntervalMs(v) !== undefined,
    'MAESTRO_QUOTA_INTERVAL must be a duration from 10s to 24h (e.g. 15m, 900s, 1h; a bare number is seconds), or 0 to read only while benched or when asked',
  ),
  MAESTRO_EVENT_RETENTION_DAYS: optionalString.refine(
    (v) => v === undefined || (/^\d+$/.test(v) && Number(v) <= 36_500),
    'MAESTRO_EVENT_RETENTION_DAYS must be a whole number of days (0 keeps events forever)',
  ),
  MAESTRO_WORKFLOW_CACHE_SIZE: optionalString.refine(
    (v) => v === undefined || (/^\d+$/.test(v) && Number(v) <= 1_000_000),
    'MAESTRO_WORKFLOW_CACHE_SIZE must be a whole number of workflows (0 turns the cache off)',
  ),
  MAESTRO_API_PROCESSES: optionalString.refine(
    (v) => v === undefined || v === 'auto' || (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= MAX_API_PROCESSES),
    `MAESTRO_API_PROCESSES must be a whole number of API processes from 1 to ${MAX_API_PROCESSES}, or auto (one per CPU core)`,
  ),
  MAESTRO_URL: optionalUrl('MAESTRO_URL'),
  MAESTRO_ADMIN_UI: optionalString.pipe(
    z.enum(['true', 'false', '1', '0'], { error: 'MAESTRO_ADMIN_UI must be true or false' }).optional(),
  ),
  MAESTRO_TEMPORAL_UI_URL: optionalString.refine(
    (v) => v === undefined || /^https?:\/\/[^\s]+$/.test(v),
    'MAESTRO_TEMPORAL_UI_URL must be an absolute http(s) URL',
  ),
  MAESTRO_API_KEY: optionalString,
  LOG_LEVEL: optionalString.pipe(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional()),
});

/** Idle quota reads, per credential (issue 30): about 11 reads/s beside the refreshes at 10,000 credentials. */
export const DEFAULT_QUOTA_INTERVAL_MS = 15 * 60_000;

/** `15m`, `900s`, `1h`, `900` (seconds) → ms; `0` → 0; out of 10 s..24 h or unreadable → undefined. */
export function quotaIntervalMs(value: string): number | undefined {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) return undefined;
  const n = Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  if (n === 0) return 0;
  return n >= 10_000 && n <= 24 * 3_600_000 ? n : undefined;
}

/** Keeps one worker under 1 GB RSS at 10,000 credentials (docs/BENCHMARKS.md, "Refresh at scale"). */
export const DEFAULT_WORKFLOW_CACHE_SIZE = 1000;

const PROVIDER_FIELDS: Record<keyof ProviderOverrides, string> = {
  baseUrl: 'BASE_URL',
  oauthBaseUrl: 'OAUTH_BASE_URL',
  oauthTokenUrl: 'OAUTH_TOKEN_URL',
  oauthAuthorizeUrl: 'OAUTH_AUTHORIZE_URL',
  oauthClientId: 'OAUTH_CLIENT_ID',
  oauthClientSecret: 'OAUTH_CLIENT_SECRET',
  oauthRedirectUri: 'OAUTH_REDIRECT_URI',
  oauthScopes: 'OAUTH_SCOPES',
  userAgent: 'USER_AGENT',
};
const URL_FIELDS = new Set<keyof ProviderOverrides>(['baseUrl', 'oauthBaseUrl', 'oauthTokenUrl', 'oauthAuthorizeUrl', 'oauthRedirectUri']);

/** `id:base64,…`; every key must decode to exactly 32 bytes. The key material never appears in an error. */
export function parseEncryptionKeys(value: string, variable = 'MAESTRO_ENCRYPTION_KEYS'): EncryptionKey[] {
  const keys = value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part, index) => {
      const colon = part.indexOf(':');
      const id = colon > 0 ? part.slice(0, colon) : '';
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
        throw new ConfigError(`${variable}: entry ${index + 1} must look like id:base64key (id of letters, digits, . _ -)`);
      }
      const material = part.slice(colon + 1);
      const key = Buffer.from(material, 'base64');
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(material) || key.length !== 32) {
        throw new ConfigError(`${variable}: key "${id}" must be 32 bytes, base64-encoded (openssl rand -base64 32)`);
      }
      return { id, key };
    });
  if (keys.length === 0) throw new ConfigError(`${variable} is set but holds no key`);
  const ids = new Set(keys.map((k) => k.id));
  if (ids.size !== keys.length) throw new ConfigError(`${variable}: key ids must be unique`);
  return keys;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    throw new ConfigError(issue.message.includes(variable) ? issue.message : `${variable}: ${issue.message}`);
  }
  const e = parsed.data;
  const mode = e.MAESTRO_ENV ?? (e.NODE_ENV === 'production' ? 'production' : e.NODE_ENV === 'test' ? 'test' : 'development');

  const providers = {} as Record<ProviderId, ProviderOverrides>;
  for (const provider of PROVIDER_IDS) {
    const overrides: ProviderOverrides = {};
    for (const [field, suffix] of Object.entries(PROVIDER_FIELDS) as [keyof ProviderOverrides, string][]) {
      const variable = `MAESTRO_${provider.toUpperCase()}_${suffix}`;
      const value = env[variable]?.trim();
      if (!value) continue;
      if (URL_FIELDS.has(field) && !/^https?:\/\//.test(value)) {
        throw new ConfigError(`${variable} must be an absolute http(s) URL`);
      }
      overrides[field] = value;
    }
    providers[provider] = overrides;
  }

  let temporal: TemporalConnectionSettings;
  try {
    temporal = loadTemporalConnection(env);
  } catch (error) {
    throw new ConfigError((error as Error).message, { cause: error });
  }

  const apiKeys = (e.MAESTRO_API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  if (apiKeys.some((k) => k.length < 16)) {
    throw new ConfigError('MAESTRO_API_KEYS: every key must be at least 16 characters');
  }
  if (e.MAESTRO_WEBHOOK_URL && !e.MAESTRO_WEBHOOK_SECRET) {
    throw new ConfigError('MAESTRO_WEBHOOK_SECRET is required when MAESTRO_WEBHOOK_URL is set');
  }

  return {
    mode,
    dataDir: path.resolve(cwd, e.MAESTRO_DATA_DIR ?? '.maestro'),
    databaseUrl: e.DATABASE_URL,
    temporal: {
      address: temporal.address,
      namespace: temporal.namespace ?? 'default',
      connection: { tls: temporal.tls, apiKey: temporal.apiKey, metadata: temporal.metadata },
      taskQueue: e.MAESTRO_TASK_QUEUE ?? 'maestro',
      cliPath: e.MAESTRO_TEMPORAL_CLI_PATH,
      testServerPath: e.MAESTRO_TEMPORAL_TEST_SERVER_PATH,
      devPort: e.MAESTRO_DEV_TEMPORAL_PORT === undefined ? 7233 : Number(e.MAESTRO_DEV_TEMPORAL_PORT),
      devUiPort: e.MAESTRO_DEV_UI_PORT === undefined ? 8233 : Number(e.MAESTRO_DEV_UI_PORT),
    },
    host: e.HOST ?? '0.0.0.0',
    port: e.PORT === undefined ? 3000 : Number(e.PORT),
    metricsPort: metricsPortFrom(e.MAESTRO_METRICS_PORT, e.PORT === undefined ? 3000 : Number(e.PORT)),
    apiKeys,
    encryptionKeys: e.MAESTRO_ENCRYPTION_KEYS ? parseEncryptionKeys(e.MAESTRO_ENCRYPTION_KEYS) : [],
    payloadKeys: e.MAESTRO_PAYLOAD_KEYS ? parseEncryptionKeys(e.MAESTRO_PAYLOAD_KEYS, 'MAESTRO_PAYLOAD_KEYS') : [],
    codecCorsOrigins: parseOrigins(e.MAESTRO_CODEC_CORS_ORIGINS),
    providers,
    apiKeyFallback: e.MAESTRO_API_KEY_FALLBACK === 'true' || e.MAESTRO_API_KEY_FALLBACK === '1',
    webhook: { url: e.MAESTRO_WEBHOOK_URL, secret: e.MAESTRO_WEBHOOK_SECRET },
    logLevel: e.LOG_LEVEL ?? (mode === 'test' ? 'silent' : 'info'),
    bodyLimitBytes: e.MAESTRO_BODY_LIMIT_BYTES === undefined ? 10 * 1024 * 1024 : Number(e.MAESTRO_BODY_LIMIT_BYTES),
    refreshWaitMs: e.MAESTRO_REFRESH_WAIT_MS === undefined ? DEFAULT_REFRESH_WAIT_MS : Number(e.MAESTRO_REFRESH_WAIT_MS),
    trustProxy: parseTrustProxy(e.MAESTRO_TRUST_PROXY),
    authFailuresPerMinute: e.MAESTRO_AUTH_FAILURES_PER_MINUTE === undefined ? 30 : Number(e.MAESTRO_AUTH_FAILURES_PER_MINUTE),
    quotaIntervalMs: e.MAESTRO_QUOTA_INTERVAL === undefined ? DEFAULT_QUOTA_INTERVAL_MS : quotaIntervalMs(e.MAESTRO_QUOTA_INTERVAL)!,
    eventRetentionDays: e.MAESTRO_EVENT_RETENTION_DAYS === undefined ? 90 : Number(e.MAESTRO_EVENT_RETENTION_DAYS),
    workflowCacheSize: e.MAESTRO_WORKFLOW_CACHE_SIZE === undefined ? DEFAULT_WORKFLOW_CACHE_SIZE : Number(e.MAESTRO_WORKFLOW_CACHE_SIZE),
    apiProcesses:
      e.MAESTRO_API_PROCESSES === undefined
        ? 1
        : e.MAESTRO_API_PROCESSES === 'auto'
          ? Math.min(os.availableParallelism(), MAX_API_PROCESSES)
          : Number(e.MAESTRO_API_PROCESSES),
    cli: { url: e.MAESTRO_URL, apiKey: e.MAESTRO_API_KEY },
    adminUi: e.MAESTRO_ADMIN_UI === undefined || e.MAESTRO_ADMIN_UI === 'true' || e.MAESTRO_ADMIN_UI === '1',
    // Development without TEMPORAL_ADDRESS runs the embedded dev server, whose Web UI is on devUiPort.
    temporalUiUrl:
      e.MAESTRO_TEMPORAL_UI_URL?.replace(/\/+$/, '') ??
      (mode === 'development' && !temporal.address
        ? `http://localhost:${e.MAESTRO_DEV_UI_PORT === undefined ? 8233 : Number(e.MAESTRO_DEV_UI_PORT)}`
        : undefined),
  };
}

/**
 * MAESTRO_TRUST_PROXY as Express reads `trust proxy`: true/false, a number of hops, or a list of
 * addresses, subnets and the names loopback, linklocal, uniquelocal. Checked here so a typo is a
 * start-up error, not a limiter that buckets every client together.
 */
export function parseTrustProxy(value: string | undefined): boolean | number | string[] {
  const v = value?.trim();
  if (!v || v === 'false' || v === '0') return false;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  const entries = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const ok = (entry: string) => ['loopback', 'linklocal', 'uniquelocal'].includes(entry) || /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(entry);
  const bad = entries.find((entry) => !ok(entry));
  if (bad !== undefined) {
    throw new ConfigError(
      `MAESTRO_TRUST_PROXY: "${bad.slice(0, 60)}" is not true, false, a hop count, an address, a subnet, loopback, linklocal or uniquelocal`,
    );
  }
  return entries;
}

/** MAESTRO_METRICS_PORT (a port number by envSchema): on the API's own port it would move nothing off it. */
function metricsPortFrom(value: string | undefined, apiPort: number): number | undefined {
  if (value === undefined) return undefined;
  if (Number(value) === apiPort) throw new ConfigError(`MAESTRO_METRICS_PORT must differ from PORT (${apiPort})`);
  return Number(value);
}

/** MAESTRO_CODEC_CORS_ORIGINS: comma-separated `scheme://host[:port]` origins. */
function parseOrigins(value: string | undefined): string[] {
  const origins = (value ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of origins) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (!url || url.origin !== origin)
      throw new ConfigError(`MAESTRO_CODEC_CORS_ORIGINS: "${origin.slice(0, 80)}" is not an origin like https://temporal-ui.example.com`);
  }
  return origins;
}
