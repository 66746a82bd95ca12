// The real API (startApi, as `npm start` runs it) on a random port, over a Harness: real
// PostgreSQL, real Temporal, a fake provider. Every log line is captured for secret checks.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startApi, type ApiOptions, type RunningApi } from '../../src/app/services.js';
import type { Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { callApi, type ApiAnswer } from './http.js';
import { startHarness, type Harness } from './temporal.js';

export interface ApiHarness extends Harness {
  api: RunningApi;
  url: string;
  logLines: string[];
  /** fetch against the API with the Maestro key (unless headers say otherwise). */
  call(method: string, path: string, opts?: { body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<ApiAnswer>;
}

export async function startApiHarness(
  env: TestWorkflowEnvironment,
  opts: Parameters<typeof startHarness>[1] & { apiKeyFallback?: boolean; config?: Partial<Config>; api?: ApiOptions } = {},
): Promise<ApiHarness> {
  const h = await startHarness(env, opts);
  const logLines: string[] = [];
  const log = createLogger('debug', { write: (line: string) => void logLines.push(line) });
  const config = { ...h.config, port: 0, host: '127.0.0.1', apiKeyFallback: opts.apiKeyFallback ?? false, ...opts.config };
  const api = await startApi(config, log, h.db.db, h.db.url, env.client, h.core, opts.api);
  const url = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
  return {
    ...h,
    api,
    url,
    logLines,
    call: (method, path, opts) => callApi(url, method, path, opts),
    close: async () => {
      await api.close();
      await h.close();
    },
  };
}
