// MAESTRO_METRICS_PORT: /metrics moves to its own listener (same host), the API's port answers 404
// for it, and a worker-only process serves its own metrics there too.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerMetrics } from '../../src/app/services.js';
import { createLogger } from '../../src/logger.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { createDevServerEnv } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let h: ApiHarness;
beforeAll(async () => {
  env = await createDevServerEnv();
  h = await startApiHarness(env, { config: { metricsPort: 0 } });
});
afterAll(async () => {
  await h?.close();
  await env?.teardown();
});

describe('MAESTRO_METRICS_PORT', () => {
  it('serves Prometheus text on the metrics port; the API port answers 404 for /metrics', async () => {
    const created = await h.call('POST', '/v1/credentials', {
      body: { provider: 'anthropic', authType: 'api_key', name: 'metrics', apiKey: 'sk-ant-api03-metrics-0123456789' },
    });
    expect(created.status).toBe(201);
    expect(h.api.metricsUrl).toBeDefined();
    const metricsUrl = h.api.metricsUrl!.replace('localhost', '127.0.0.1');
    expect(metricsUrl).not.toBe(h.url);

    const scrape = await fetch(`${metricsUrl}/metrics`);
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await scrape.text();
    expect(text).toMatch(/^maestro_credentials\{provider="anthropic",auth_type="api_key",status="active"\} 1$/m);
    expect(text).toMatch(/^maestro_refreshes\{outcome="refreshed"\} 0$/m);
    expect(text).toMatch(/^# HELP maestro_refreshes .*never lowered by event retention/m);
    expect(text).toMatch(/^maestro_process_process_cpu_seconds_total/m);

    const onApi = await h.call('GET', '/metrics', { headers: { authorization: '' } });
    expect(onApi.status).toBe(404);
    expect(onApi.json.error).toMatchObject({ type: 'not_found' });
    // The metrics port serves nothing else.
    for (const [method, path] of [
      ['GET', '/v1/credentials'],
      ['POST', '/metrics'],
    ]) {
      const other = await fetch(`${metricsUrl}${path}`, { method });
      expect(other.status).toBe(404);
      expect(((await other.json()) as { error: { type: string } }).error.type).toBe('not_found');
    }
  });

  it('a worker-only process serves its own process metrics and the stored counts', async () => {
    const log = createLogger('silent');
    const metrics = await startWorkerMetrics({ ...h.config, host: '127.0.0.1', metricsPort: 0 }, log, h.db.db);
    try {
      const text = await (await fetch(`${metrics!.url.replace('localhost', '127.0.0.1')}/metrics`)).text();
      expect(text).toMatch(/^maestro_process_process_cpu_seconds_total/m);
      expect(text).toMatch(/^maestro_credentials\{provider="anthropic",auth_type="api_key",status="active"\} 1$/m);
    } finally {
      await metrics!.close();
    }
    expect(await startWorkerMetrics({ ...h.config, metricsPort: undefined }, log, h.db.db)).toBeUndefined();
  });
});
