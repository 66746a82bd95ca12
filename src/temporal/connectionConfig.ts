// Where and how to reach Temporal, read the Temporal way (@temporalio/envconfig): TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_* (client cert/key, server CA, server name),
// TEMPORAL_PROFILE and the config file (TEMPORAL_CONFIG_FILE, or the CLI's default path when
// TEMPORAL_PROFILE is set), so a profile that works with the `temporal` CLI works here. Every problem is one line naming what to fix.
import { existsSync, readFileSync } from 'node:fs';
import { loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/client';

/** What both the client and the worker connect with. */
export interface TemporalConnectionSettings {
  /** Unset: nothing configured (development starts an embedded dev server). */
  address?: string;
  namespace?: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
}

const PEM_FILES = {
  TEMPORAL_TLS_CLIENT_CERT_PATH: 'CERTIFICATE',
  TEMPORAL_TLS_CLIENT_KEY_PATH: 'PRIVATE KEY',
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: 'CERTIFICATE',
} as const;

/** Reads the settings from `env` (and the config file it points at); throws Error(message) for a ConfigError. */
export function loadTemporalConnection(env: Record<string, string | undefined>): TemporalConnectionSettings {
  for (const [variable, kind] of Object.entries(PEM_FILES)) {
    const file = env[variable];
    if (!file) continue;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`${variable}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`, { cause: error });
    }
    if (!text.includes(`-----BEGIN `) || !text.includes(kind)) throw new Error(`${variable}: ${file} is not a PEM ${kind.toLowerCase()}`);
  }
  const defined = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  let profile;
  try {
    // The config file only when asked for: a developer's CLI default profile (Temporal Cloud,
    // say) must not silently replace `npm run dev`'s embedded server.
    const fromFile = defined.TEMPORAL_CONFIG_FILE !== undefined || defined.TEMPORAL_PROFILE !== undefined;
    if (defined.TEMPORAL_CONFIG_FILE !== undefined && !existsSync(defined.TEMPORAL_CONFIG_FILE)) {
      throw new Error('no such file');
    }
    profile = loadClientConfigProfile({ overrideEnvVars: defined, disableFile: !fromFile });
  } catch (error) {
    const where = defined.TEMPORAL_CONFIG_FILE ? `TEMPORAL_CONFIG_FILE=${defined.TEMPORAL_CONFIG_FILE}` : 'the Temporal config file';
    throw new Error(
      `${where}${defined.TEMPORAL_PROFILE ? ` (TEMPORAL_PROFILE=${defined.TEMPORAL_PROFILE})` : ''}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (
    profile.address !== undefined &&
    !/^[^\s:/]+:\d{1,5}$/.test(profile.address) &&
    !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(profile.address)
  ) {
    throw new Error('TEMPORAL_ADDRESS must be host:port, for example localhost:7233');
  }
  let options;
  try {
    options = toClientOptions(profile);
  } catch (error) {
    throw new Error(`Temporal TLS settings (TEMPORAL_TLS_*): ${(error as Error).message}`, { cause: error });
  }
  const { address, tls, apiKey } = options.connectionOptions;
  return { address, namespace: options.namespace, tls: tls ?? undefined, apiKey, metadata: profile.grpcMeta };
}
