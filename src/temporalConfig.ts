// Where and how to reach Temporal, read the Temporal way (@temporalio/envconfig): TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_* (client cert/key, server CA, server name),
// TEMPORAL_PROFILE and the config file (TEMPORAL_CONFIG_FILE, or the CLI's default path when
// TEMPORAL_PROFILE is set), so a profile that works with the `temporal` CLI works here. Every problem is one line naming what to fix.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile } from '@temporalio/envconfig';
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

/** The certificate settings, each as a file (`_PATH`) or inline (`_DATA`), and what each must hold. */
const PEMS = {
  TEMPORAL_TLS_CLIENT_CERT: 'certificate',
  TEMPORAL_TLS_CLIENT_KEY: 'private key',
  TEMPORAL_TLS_SERVER_CA_CERT: 'certificate',
} as const;

/** Reads the settings from `env` (and the config file it points at); throws Error(message) for a ConfigError. */
export function loadTemporalConnection(env: Record<string, string | undefined>): TemporalConnectionSettings {
  checkPems(env);
  // Read here, before envconfig, which takes anything but exactly `true` or `1` for false: `True`
  // beside an API key would quietly mean plaintext, the key sent in clear.
  const tlsFlag = parseFlag('TEMPORAL_TLS', env.TEMPORAL_TLS);
  const allowPlaintext = parseFlag('MAESTRO_TEMPORAL_ALLOW_PLAINTEXT', env.MAESTRO_TEMPORAL_ALLOW_PLAINTEXT) === true;
  const defined = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  if (tlsFlag === undefined) delete defined.TEMPORAL_TLS;
  else defined.TEMPORAL_TLS = String(tlsFlag);
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
  if (!allowPlaintext) refuseSecretsInClear(profile, tlsFlag === false ? 'TEMPORAL_TLS=false' : 'tls.disabled in the Temporal config file');
  let options;
  try {
    options = toClientOptions(profile);
  } catch (error) {
    throw new Error(`Temporal TLS settings (TEMPORAL_TLS_*): ${(error as Error).message}`, { cause: error });
  }
  const { address, tls, apiKey } = options.connectionOptions;
  return { address, namespace: options.namespace, tls: tls ?? undefined, apiKey, metadata: profile.grpcMeta };
}

/** `true`/`false`/`1`/`0` in any case; empty is unset; anything else is refused, naming the variable. */
function parseFlag(variable: string, value: string | undefined): boolean | undefined {
  const v = value?.trim().toLowerCase();
  if (!v) return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new Error(`${variable} must be true or false (or 1/0), not "${value!.trim().slice(0, 40)}"`);
}

/** TLS switched off beside an API key or a client certificate is a mistake unless said out loud. */
function refuseSecretsInClear(profile: ClientConfigProfile, where: string): void {
  if (profile.tls?.disabled !== true) return;
  const secret = profile.apiKey ? 'API key' : profile.tls.clientCert || profile.tls.clientKey ? 'client certificate' : undefined;
  if (!secret) return;
  throw new Error(
    `${where} would send the Temporal ${secret} in clear; turn TLS on, or set MAESTRO_TEMPORAL_ALLOW_PLAINTEXT=true if the network to Temporal is private`,
  );
}

/** Each certificate setting, as a file or inline, must hold what it names: checked at start, not at the first connect. */
function checkPems(env: Record<string, string | undefined>): void {
  for (const [setting, kind] of Object.entries(PEMS)) {
    const file = env[`${setting}_PATH`];
    if (file) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new Error(`${setting}_PATH: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`, {
          cause: error,
        });
      }
      if (!isPem(text, kind)) throw new Error(`${setting}_PATH: ${file} is not a PEM ${kind}`);
    }
    // Never echoed: the inline key is a secret.
    const data = env[`${setting}_DATA`];
    if (data && !isPem(data, kind)) throw new Error(`${setting}_DATA is not a PEM ${kind}`);
  }
}

function isPem(text: string, kind: (typeof PEMS)[keyof typeof PEMS]): boolean {
  if (!text.includes('-----BEGIN ') || !text.includes(kind.toUpperCase())) return false;
  try {
    if (kind === 'certificate') new X509Certificate(text);
    else createPrivateKey(text);
    return true;
  } catch {
    return false;
  }
}
