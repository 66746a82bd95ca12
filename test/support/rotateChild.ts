// Runs key rotation in its own process so a test can SIGKILL it mid-run (no cleanup, no rollback
// handlers: exactly what a crash or `kill -9` does). Prints `batch <n>` after each committed batch;
// with ROTATE_PAUSE_AT set, it hangs once that many rows are done, waiting to be killed.
import { parseEncryptionKeys } from '../../src/config.js';
import { KeyRing } from '../../src/crypto/keyRing.js';
import { rotateKeys } from '../../src/db/rotate.js';
import { createDb } from '../../src/db/pool.js';

const url = process.env.ROTATE_DATABASE_URL;
const keySpec = process.env.ROTATE_KEYS;
if (!url || !keySpec) throw new Error('ROTATE_DATABASE_URL and ROTATE_KEYS are required');
const pauseAt = Number(process.env.ROTATE_PAUSE_AT ?? Infinity);

const db = createDb(url, 2);
const result = await rotateKeys(db, new KeyRing(parseEncryptionKeys(keySpec)), {
  batchSize: Number(process.env.ROTATE_BATCH_SIZE ?? 50),
  onBatch: async (done) => {
    process.stdout.write(`batch ${done}\n`);
    if (done >= pauseAt) {
      process.stdout.write('paused\n');
      await new Promise(() => setInterval(() => {}, 60_000));
    }
  },
});
process.stdout.write(`done ${JSON.stringify(result)}\n`);
await db.destroy();
