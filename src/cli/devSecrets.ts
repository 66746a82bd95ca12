// Development convenience: generate the API key and the encryption key once under the data dir.
// Outside development Maestro refuses to start without them (there is no plaintext mode).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseEncryptionKeys, type Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';

function readOrCreate(file: string, create: () => string): { value: string; created: boolean } {
  if (existsSync(file)) return { value: readFileSync(file, 'utf8').trim(), created: false };
  mkdirSync(path.dirname(file), { recursive: true });
  const value = create();
  // 'wx' fails if another process created it first, so two starts never disagree on a key.
  try {
    writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
    return { value, created: true };
  } catch {
    return { value: readFileSync(file, 'utf8').trim(), created: false };
  }
}

/** Fills in apiKeys and encryptionKeys from `.maestro/` in development; throws elsewhere when missing. */
export function ensureDevSecrets(config: Config, log: Logger): Config {
  const isDev = config.mode !== 'production';
  let { apiKeys, encryptionKeys } = config;
  if (encryptionKeys.length === 0) {
    if (!isDev) throw new ConfigError('MAESTRO_ENCRYPTION_KEYS is required in production (id:base64 of 32 random bytes)');
    const file = path.join(config.dataDir, 'encryption-key');
    const { value, created } = readOrCreate(file, () => `dev1:${randomBytes(32).toString('base64')}`);
    encryptionKeys = parseEncryptionKeys(value, file);
    log.warn({ file, created }, 'using a development encryption key; set MAESTRO_ENCRYPTION_KEYS in production');
  }
  if (apiKeys.length === 0) {
    if (!isDev) throw new ConfigError('MAESTRO_API_KEYS is required in production (comma-separated client keys)');
    const file = path.join(config.dataDir, 'api-key');
    apiKeys = [readOrCreate(file, () => `msk_dev_${randomBytes(24).toString('base64url')}`).value];
  }
  return { ...config, apiKeys, encryptionKeys };
}
