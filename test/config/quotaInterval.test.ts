// MAESTRO_QUOTA_INTERVAL (issue 30): 15 minutes by default, a duration or bare seconds, 0 = only
// while benched or asked, and a message naming the variable for anything else.
import { describe, expect, it } from 'vitest';
import { DEFAULT_QUOTA_INTERVAL_MS, loadConfig } from '../../src/config.js';

const base = {
  MAESTRO_ENV: 'test',
  MAESTRO_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
  MAESTRO_API_KEYS: 'msk_test_0123456789abcdef',
};

describe('MAESTRO_QUOTA_INTERVAL', () => {
  it('is 15 minutes by default and takes durations, bare seconds and 0', () => {
    expect(loadConfig(base).quotaIntervalMs).toBe(DEFAULT_QUOTA_INTERVAL_MS);
    expect(DEFAULT_QUOTA_INTERVAL_MS).toBe(900_000);
    expect(loadConfig({ ...base, MAESTRO_QUOTA_INTERVAL: '5m' }).quotaIntervalMs).toBe(300_000);
    expect(loadConfig({ ...base, MAESTRO_QUOTA_INTERVAL: '1h' }).quotaIntervalMs).toBe(3_600_000);
    expect(loadConfig({ ...base, MAESTRO_QUOTA_INTERVAL: '90' }).quotaIntervalMs).toBe(90_000);
    expect(loadConfig({ ...base, MAESTRO_QUOTA_INTERVAL: '0' }).quotaIntervalMs).toBe(0);
  });

  it('refuses nonsense and values outside 10 s–24 h, naming the variable', () => {
    for (const bad of ['soon', '-5', '5s', '25h', '1.5m']) {
      expect(() => loadConfig({ ...base, MAESTRO_QUOTA_INTERVAL: bad })).toThrow(/MAESTRO_QUOTA_INTERVAL must be/);
    }
  });
});
