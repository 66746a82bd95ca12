import { afterAll, expect, it, inject } from 'vitest';
import { killAllChildren, spawnMaestro, startDevServer, workerReady, type DevServer } from '../support/processes.js';
import { createTestDatabase } from '../support/db.js';
import { TEST_ENCRYPTION_KEYS, TEST_API_KEY } from '../support/temporal.js';

let dev: DevServer;
afterAll(async () => { await killAllChildren(); await dev?.close(); });
it('starts', async () => {
  let t = Date.now();
  dev = await startDevServer(inject('temporalCliPath'));
  console.log('dev server', Date.now() - t);
  const db = await createTestDatabase();
  t = Date.now();
  const w = spawnMaestro('worker', { MAESTRO_ENV: 'production', DATABASE_URL: db.url, TEMPORAL_ADDRESS: dev.address, MAESTRO_TASK_QUEUE: 'q1', MAESTRO_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS, MAESTRO_API_KEYS: TEST_API_KEY, LOG_LEVEL: 'info' });
  await workerReady(w);
  console.log('worker', Date.now() - t, w.lines.join('\n'));
  t = Date.now();
  await dev.stop('SIGTERM');
  console.log('stop', Date.now() - t);
  t = Date.now();
  await dev.start();
  console.log('restart', Date.now() - t);
  await new Promise(r => setTimeout(r, 5000));
  console.log(w.running, w.lines.slice(-5).join('\n'));
  await db.close();
});
