// The durable_call_claims table (migration 0004): a signed durable call belongs to the first
// workflow run that presents it.
import type { Db } from './pool.js';

export class DurableCallClaims {
  constructor(private readonly db: Db) {}

  /** True when `runId` holds (or just took) the claim on `workflowId`; false when another run has it. */
  async claim(workflowId: string, runId: string): Promise<boolean> {
    await this.db
      .insertInto('durable_call_claims')
      .values({ workflow_id: workflowId, run_id: runId })
      .onConflict((oc) => oc.doNothing())
      .execute();
    const row = await this.db.selectFrom('durable_call_claims').select('run_id').where('workflow_id', '=', workflowId).executeTakeFirst();
    return row?.run_id === runId;
  }

  /** Housekeeping: claims older than `cutoff` (their signatures have expired) go; returns how many. */
  async deleteBefore(cutoff: Date): Promise<number> {
    const result = await this.db.deleteFrom('durable_call_claims').where('claimed_at', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
