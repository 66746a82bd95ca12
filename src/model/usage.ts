// What usage is counted by and asked for (GET /v1/usage), apart from how it is stored (src/db/usage.ts).

export interface UsageCounts {
  requests: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** Calls whose final counts never arrived (a stream cut short): their tokens are what was reported before the cut. */
  incomplete: number;
}

export type UsageDimension = 'key' | 'credential' | 'provider' | 'model' | 'pool';

export interface UsageQuery {
  from: Date;
  to: Date;
  groupBy: UsageDimension[];
  bucket: 'hour' | 'day' | 'none';
  /** Only this key's rows (a client key reading its own usage). */
  keyId?: string;
}

/** One row of a usage report: the counts of one group (and bucket). */
export type UsageReportRow = Partial<Record<Exclude<UsageDimension, 'pool'>, string>> & {
  pool?: string | null;
  bucketStart?: string;
} & UsageCounts;

/** What the usage route reads (src/db/usage.ts UsageStore serves it). */
export interface UsageReports {
  query(q: UsageQuery): Promise<UsageReportRow[]>;
}
