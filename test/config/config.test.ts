// Settings whose typo would silently weaken Maestro are start-up errors that name the variable.
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const base = { MAESTRO_ENV: 'test' };

describe('MAESTRO_TRUST_PROXY', () => {
  it('reads Express trust-proxy values: off by default, true, hop counts, addresses, subnets, names', () => {
    expect(loadConfig(base).trustProxy).toBe(false);
    expect(loadConfig({ ...base, MAESTRO_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ ...base, MAESTRO_TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ ...base, MAESTRO_TRUST_PROXY: 'loopback, 10.0.0.0/8,fd00::1' }).trustProxy).toEqual([
      'loopback',
      '10.0.0.0/8',
      'fd00::1',
    ]);
  });

  it('refuses anything else, naming the variable and the bad entry', () => {
    expect(() => loadConfig({ ...base, MAESTRO_TRUST_PROXY: 'loopback,my-load-balancer' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, MAESTRO_TRUST_PROXY: 'yes' })).toThrow(/MAESTRO_TRUST_PROXY: "yes" is not/);
  });
});

describe('limits and retention', () => {
  it('has generous defaults and refuses nonsense', () => {
    expect(loadConfig(base)).toMatchObject({ authFailuresPerMinute: 30, eventRetentionDays: 90 });
    expect(loadConfig({ ...base, MAESTRO_EVENT_RETENTION_DAYS: '0' }).eventRetentionDays).toBe(0);
    expect(() => loadConfig({ ...base, MAESTRO_EVENT_RETENTION_DAYS: 'ninety' })).toThrow(/MAESTRO_EVENT_RETENTION_DAYS must be/);
    expect(() => loadConfig({ ...base, MAESTRO_AUTH_FAILURES_PER_MINUTE: '0' })).toThrow(/MAESTRO_AUTH_FAILURES_PER_MINUTE must be/);
  });
});

describe('MAESTRO_METRICS_PORT', () => {
  it('is unset by default (/metrics on the API port) and takes a port other than PORT', () => {
    expect(loadConfig(base).metricsPort).toBeUndefined();
    expect(loadConfig({ ...base, MAESTRO_METRICS_PORT: '9464' }).metricsPort).toBe(9464);
    expect(loadConfig({ ...base, MAESTRO_METRICS_PORT: ' ' }).metricsPort).toBeUndefined();
    for (const bad of ['0', '65536', 'metrics', '-1', '9464.5']) {
      expect(() => loadConfig({ ...base, MAESTRO_METRICS_PORT: bad })).toThrow(/^MAESTRO_METRICS_PORT must be a port number \(1-65535\)$/);
    }
    expect(() => loadConfig({ ...base, MAESTRO_METRICS_PORT: '3000' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, PORT: '8080', MAESTRO_METRICS_PORT: '8080' })).toThrow(
      /MAESTRO_METRICS_PORT must differ from PORT \(8080\)/,
    );
    expect(loadConfig({ ...base, PORT: '8080', MAESTRO_METRICS_PORT: '3000' }).metricsPort).toBe(3000);
  });
});

describe('MAESTRO_API_PROCESSES', () => {
  it('is 1 by default, takes 1-256 or auto (one per core), and says what to put otherwise', () => {
    expect(loadConfig(base).apiProcesses).toBe(1);
    expect(loadConfig({ ...base, MAESTRO_API_PROCESSES: '4' }).apiProcesses).toBe(4);
    expect(loadConfig({ ...base, MAESTRO_API_PROCESSES: '256' }).apiProcesses).toBe(256);
    expect(loadConfig({ ...base, MAESTRO_API_PROCESSES: ' ' }).apiProcesses).toBe(1);
    expect(loadConfig({ ...base, MAESTRO_API_PROCESSES: 'auto' }).apiProcesses).toBe(Math.min(os.availableParallelism(), 256));
    for (const bad of ['0', '257', '-2', '2.5', 'all', 'AUTO', '0x4']) {
      expect(() => loadConfig({ ...base, MAESTRO_API_PROCESSES: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ ...base, MAESTRO_API_PROCESSES: bad })).toThrow(
        /^MAESTRO_API_PROCESSES must be a whole number of API processes from 1 to 256, or auto \(one per CPU core\)$/,
      );
    }
  });
});

describe('MAESTRO_WORKFLOW_CACHE_SIZE', () => {
  it('bounds the worker sticky cache at 1000 by default, takes a whole number (0 turns it off), and says what to put otherwise', () => {
    expect(loadConfig(base).workflowCacheSize).toBe(1000);
    expect(loadConfig({ ...base, MAESTRO_WORKFLOW_CACHE_SIZE: '250' }).workflowCacheSize).toBe(250);
    expect(loadConfig({ ...base, MAESTRO_WORKFLOW_CACHE_SIZE: '0' }).workflowCacheSize).toBe(0);
    for (const bad of ['-1', '2.5', 'lots', '1000001']) {
      expect(() => loadConfig({ ...base, MAESTRO_WORKFLOW_CACHE_SIZE: bad })).toThrow(
        /^MAESTRO_WORKFLOW_CACHE_SIZE must be a whole number of workflows \(0 turns the cache off\)$/,
      );
    }
  });
});

describe('the admin page', () => {
  it('is on by default, off with MAESTRO_ADMIN_UI=false, and refuses anything else', () => {
    expect(loadConfig(base).adminUi).toBe(true);
    expect(loadConfig({ ...base, MAESTRO_ADMIN_UI: 'false' }).adminUi).toBe(false);
    expect(loadConfig({ ...base, MAESTRO_ADMIN_UI: '0' }).adminUi).toBe(false);
    expect(loadConfig({ ...base, MAESTRO_ADMIN_UI: 'true' }).adminUi).toBe(true);
    expect(() => loadConfig({ ...base, MAESTRO_ADMIN_UI: 'off' })).toThrow(/^MAESTRO_ADMIN_UI must be true or false$/);
  });

  it('links workflows to MAESTRO_TEMPORAL_UI_URL; in development, to the embedded server UI; else nowhere', () => {
    expect(loadConfig(base).temporalUiUrl).toBeUndefined();
    expect(loadConfig({ ...base, MAESTRO_TEMPORAL_UI_URL: 'https://temporal.example.com/' }).temporalUiUrl).toBe(
      'https://temporal.example.com',
    );
    expect(loadConfig({ MAESTRO_ENV: 'development' }).temporalUiUrl).toBe('http://localhost:8233');
    expect(loadConfig({ MAESTRO_ENV: 'development', MAESTRO_DEV_UI_PORT: '9233' }).temporalUiUrl).toBe('http://localhost:9233');
    expect(loadConfig({ MAESTRO_ENV: 'development', TEMPORAL_ADDRESS: 'temporal:7233' }).temporalUiUrl).toBeUndefined();
    expect(() => loadConfig({ ...base, MAESTRO_TEMPORAL_UI_URL: 'javascript:alert(1)' })).toThrow(
      /^MAESTRO_TEMPORAL_UI_URL must be an absolute http\(s\) URL$/,
    );
  });
});
