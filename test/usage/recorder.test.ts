// The usage recorder's bounds, without a database (the rows PostgreSQL refuses are tested against
// a real one in test/api/usageBilling.test.ts): what a client sends is cleaned before it becomes a
// key, counts are clamped, and what waits in memory for an absent database is bounded.
import { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { UsageRow } from '../../src/db/usage.js';
import {
  cleanModel,
  clampTokens,
  MAX_CALL_TOKENS,
  MAX_PENDING_ROWS,
  OTHER_MODEL,
  UsageRecorder,
  usageRow,
} from '../../src/usage/recorder.js';

/** A store whose database is away: every write fails as a connection error would (no SQLSTATE). */
function awayStore() {
  let writes = 0;
  return {
    get writes() {
      return writes;
    },
    add: async (_rows: UsageRow[]) => {
      writes++;
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    },
    tokensSince: async () => new Map<string, number>(),
  };
}

let counters = 0;
const counter = () => new Counter({ name: `test_counter_${counters++}`, help: 'test', labelNames: ['reason'] as const, registers: [] });
const valueOf = async (c: Counter<'reason'>, reason: string) => (await c.get()).values.find((v) => v.labels.reason === reason)?.value;

describe('what becomes a key', () => {
  it('keeps model names as providers spell them and folds anything else into one', () => {
    for (const name of ['claude-sonnet-4-5', 'gpt-4o-2024-08-06', 'models/gemini-2.5-pro', 'ft:gpt-4o:org:abc', 'claude-3.5@20240620']) {
      expect(cleanModel(name)).toBe(name);
    }
    for (const name of ['x\u0000', 'é', 'a b', '', 'x'.repeat(129), '-leading', 'a\nb', '<script>']) {
      expect(cleanModel(name)).toBe(name === '' ? '' : OTHER_MODEL);
    }
  });

  it('clamps counts to whole numbers in [0, 1e12]', () => {
    expect([1e19, -5, Number.NaN, Infinity, 12.7, undefined].map(clampTokens)).toEqual([MAX_CALL_TOKENS, 0, 0, 0, 12, 0]);
    const row = usageRow({
      keyId: 'k',
      credentialId: 'c',
      provider: 'openai',
      model: 'm',
      usage: { inputTokens: 1e30, outputTokens: -1, cacheReadTokens: 3, cacheWriteTokens: Number.NaN },
      error: false,
    });
    expect(row).toMatchObject({ inputTokens: MAX_CALL_TOKENS, outputTokens: 0, cacheReadTokens: 3, cacheWriteTokens: 0, incomplete: 0 });
  });
});

describe('memory while the database is away', () => {
  it('a client varying its model cannot grow the batch: past 100 models a key shares one row', async () => {
    const store = awayStore();
    const recorder = new UsageRecorder(store, { flushMs: 3_600_000 });
    for (let i = 0; i < 5_000; i++) {
      recorder.record({ keyId: 'k', credentialId: 'c', provider: 'anthropic', model: `m-${i}`, error: true });
    }
    expect(recorder.pendingRows).toBe(101); // 100 named, then (other)
    await recorder.flush(); // fails: everything is kept for the next batch, still bounded
    expect(store.writes).toBe(1);
    expect(recorder.pendingRows).toBe(101);
    await recorder.close().catch(() => {});
  });

  it('past MAX_PENDING_ROWS new rows are dropped (counted), while the calls already held keep adding up', async () => {
    const store = awayStore();
    const dropped = counter();
    const failures = counter();
    const recorder = new UsageRecorder(store, { flushMs: 3_600_000, metrics: { dropped, writeFailures: failures } });
    for (let i = 0; i < MAX_PENDING_ROWS + 50; i++) {
      recorder.record({ keyId: `k${i}`, credentialId: 'c', provider: 'anthropic', model: 'm', error: false });
    }
    expect(recorder.pendingRows).toBe(MAX_PENDING_ROWS);
    expect(await valueOf(dropped, 'memory')).toBe(50);
    recorder.record({ keyId: 'k0', credentialId: 'c', provider: 'anthropic', model: 'm', error: false }); // an existing row: kept
    expect(await valueOf(dropped, 'memory')).toBe(50);
    await recorder.flush();
    expect(await valueOf(failures, 'unavailable')).toBe(1);
    expect(recorder.pendingRows).toBe(MAX_PENDING_ROWS);
    await recorder.close().catch(() => {});
  });
});

describe('budgets while a batch is being written', () => {
  it("a key's recent tokens stay counted until the totals read after the batch include them", async () => {
    const reads: Array<(totals: Map<string, number>) => void> = [];
    const written: UsageRow[] = [];
    const store = {
      add: async (rows: UsageRow[]) => void written.push(...rows),
      // The day's totals come back when the test says (a slow database).
      tokensSince: () => new Promise<Map<string, number>>((resolve) => reads.push(resolve)),
    };
    const readWaiting = async () => {
      for (let i = 0; i < 100 && reads.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
      return reads.length > 0;
    };
    const usage = { inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0 };
    const call = { keyId: 'k', credentialId: 'c', provider: 'anthropic', model: 'm', usage, error: false };
    const recorder = new UsageRecorder(store, { flushMs: 3_600_000 });
    const key = { keyId: 'k', role: 'client', limits: { tokensPerDay: 20 } } as unknown as Parameters<UsageRecorder['admit']>[0];
    recorder.admit(key); // budgeted from now on (starts a read of the day)
    expect(await readWaiting()).toBe(true);
    reads.shift()!(new Map());
    await recorder.flush();

    recorder.record(call);
    const flushing = recorder.flush();
    expect(await readWaiting()).toBe(true); // the batch is written; the totals are not read yet
    expect(written).toHaveLength(1);
    expect(recorder.usedToday('k')).toBe(15); // was 0 here: a call admitted meanwhile slipped past the budget
    recorder.record(call);
    expect(() => recorder.admit(key)).toThrow(/used 30 of its 20 tokens/);
    reads.shift()!(new Map([['k', 15]]));
    await flushing;
    expect(recorder.usedToday('k')).toBe(30); // 15 in the table, 15 since
    const closing = recorder.close();
    if (await readWaiting()) reads.shift()!(new Map([['k', 30]]));
    await closing;
  });
});
