// Request bodies, parameters and response bodies as zod schemas: requests are validated with
// them, responses shaped by them (unknown fields dropped), and /openapi.json generated from them.
import { nextCursorSchema, pageQuery } from './pagination.js';
import { isStorableDate, STORABLE_DATE_RANGE } from '../dates.js';
import { z } from 'zod';
import { buildUrl } from '../auth/clientBuilder.js';
import { PROVIDER_IDS } from '../config.js';
import { MEMBER_STATES, POOL_EVENT_TYPES, POOL_STRATEGIES } from '../model/pools.js';

const MAX_TOKEN = 16_384;
const TEN_YEARS_SECONDS = 10 * 365 * 24 * 3600;

export const providerSchema = z
  .enum(PROVIDER_IDS, { error: `provider must be one of ${PROVIDER_IDS.join(', ')}` })
  .meta({ id: 'Provider' });
export const nameSchema = z
  .string()
  .trim()
  .min(1, 'name must not be empty')
  .max(100, 'name must be at most 100 characters')
  .regex(/^[A-Za-z0-9._@-]+$/, 'name may contain letters, digits and . _ @ - only');
const secretString = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(8, `${what} is too short`)
    .max(MAX_TOKEN, `${what} is too long`)
    .regex(/^[\x21-\x7e]+$/, `${what} must be printable ASCII without spaces`);

const expiry = {
  expiresAt: z.iso
    .datetime({ offset: true, error: 'expiresAt must be an ISO 8601 date-time' })
    .refine((v) => isStorableDate(new Date(v)), `expiresAt must be ${STORABLE_DATE_RANGE}`)
    .optional(),
  expiresIn: z
    .number({ error: 'expiresIn must be a number of seconds' })
    .int('expiresIn must be a whole number of seconds')
    .positive('expiresIn must be positive')
    .max(TEN_YEARS_SECONDS, 'expiresIn is too large')
    .optional(),
};
const oauthTokens = {
  accessToken: secretString('accessToken'),
  refreshToken: secretString('refreshToken').optional(),
  idToken: z.string().max(MAX_TOKEN).optional(),
  accountId: z.string().max(200).optional(),
  ...expiry,
};
const oneExpiry = (v: { expiresAt?: string; expiresIn?: number }) => !(v.expiresAt !== undefined && v.expiresIn !== undefined);
const oneExpiryMessage = { message: 'give expiresAt or expiresIn, not both', path: ['expiresIn'] };

export const createCredentialSchema = z.discriminatedUnion(
  'authType',
  [
    z.strictObject({
      provider: providerSchema,
      authType: z.literal('api_key'),
      name: nameSchema.optional(),
      apiKey: secretString('apiKey'),
    }),
    z
      .strictObject({
        provider: providerSchema,
        authType: z.literal('oauth'),
        name: nameSchema.optional(),
        ...oauthTokens,
        project: z
          .string()
          .trim()
          .min(1)
          .max(200)
          .regex(/^[A-Za-z0-9._:-]+$/, 'project must be a Google Cloud project id')
          .optional()
          .meta({ description: 'gemini only: the Code Assist project; unset, Maestro discovers it (loadCodeAssist / onboardUser)' }),
      })
      .refine(oneExpiry, oneExpiryMessage)
      .refine((v) => v.project === undefined || v.provider === 'gemini', {
        message: 'project is for gemini credentials only',
        path: ['project'],
      }),
  ],
  { error: 'authType must be "oauth" or "api_key"' },
);
export type CreateCredentialBody = z.infer<typeof createCredentialSchema>;

export const replaceCredentialSchema = z.union(
  [z.strictObject({ apiKey: secretString('apiKey') }), z.strictObject(oauthTokens).refine(oneExpiry, oneExpiryMessage)],
  { error: 'send {apiKey} for an API-key credential or {accessToken, refreshToken?, expiresAt?|expiresIn?} for an OAuth one' },
);
export type ReplaceCredentialBody = z.infer<typeof replaceCredentialSchema>;

export const listQuerySchema = z.strictObject({
  provider: providerSchema.optional(),
  status: z.enum(['active', 'reauth_required', 'disabled']).optional(),
  authType: z.enum(['oauth', 'api_key']).optional(),
  ...pageQuery,
});
export const keyListQuerySchema = z.strictObject(pageQuery);

export const idParamSchema = z.uuid({ error: 'credential id must be a UUID' }).meta({ description: 'credential id' });

export const oauthStartSchema = z.strictObject({ name: nameSchema.optional() });
export const oauthCompleteSchema = z.strictObject({
  sessionId: z.uuid({ error: 'sessionId must be the UUID returned by /start' }),
  code: z.string({ error: 'code must be a string' }).trim().min(1, 'code must not be empty').max(4096, 'code is too long'),
});

function staysUnderProvider(path: string): boolean {
  try {
    buildUrl({ baseUrl: 'https://provider.invalid', dropQueryParams: [] }, path, '');
    return true;
  } catch {
    return false;
  }
}

export const messageSchema = z.strictObject({
  path: z
    .string()
    .regex(/^\/[A-Za-z0-9._~\-/:]*$/, 'path must be an absolute provider API path like /v1/messages')
    // The client builder's own check, so a path it would refuse is a 400 here, not a failed workflow.
    .refine(staysUnderProvider, 'path must stay under the provider API (no . or .. segments, no //)')
    .default('/v1/messages'),
  method: z.enum(['POST', 'GET']).default('POST'),
  headers: z
    .record(
      z.string().regex(/^[a-z0-9-]+$/, 'header names must be lowercase tokens'),
      z
        .string()
        .max(4096)
        .regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'header values must be printable text (no line breaks or control characters)'),
    )
    .optional(),
  body: z.unknown().optional(),
});

const positiveLimit = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be a whole number`)
    .positive(`${what} must be positive`)
    .max(1_000_000_000, `${what} is too large`);
export const keyLimitsSchema = z
  .strictObject({
    requestsPerMinute: positiveLimit('limits.requestsPerMinute').optional(),
    tokensPerDay: positiveLimit('limits.tokensPerDay').optional(),
    concurrentCalls: positiveLimit('limits.concurrentCalls')
      .max(100_000, 'limits.concurrentCalls must be at most 100000')
      .optional()
      .meta({ description: 'calls in flight at once (429 rate_limited past it); unset: 32 for a client key, unlimited for an admin key' }),
  })
  .meta({ id: 'KeyLimits' });

export const createKeySchema = z.strictObject({
  name: z
    .string({ error: 'name must be a string' })
    .trim()
    .min(1, 'name must not be empty')
    .max(100, 'name must be at most 100 characters')
    .regex(/^[^\x00-\x1f\x7f]+$/, 'name must be printable text'),
  role: z.enum(['admin', 'client'], { error: 'role must be "admin" or "client"' }),
  credentials: z
    .array(z.string().trim().min(1).max(100), { error: 'credentials must be a list of credential ids or names' })
    .max(100, 'at most 100 credentials')
    .optional(),
  providers: z.array(providerSchema, { error: 'providers must be a list of providers' }).optional(),
  pools: z
    .array(z.string().trim().min(1).max(100), { error: 'pools must be a list of pool ids or names' })
    .max(100, 'at most 100 pools')
    .optional(),
  expiresAt: z.iso
    .datetime({ offset: true, error: 'expiresAt must be an ISO 8601 date-time' })
    .refine((v) => isStorableDate(new Date(v)), `expiresAt must be ${STORABLE_DATE_RANGE}`)
    .optional(),
  limits: keyLimitsSchema.optional(),
});

export const keyIdParamSchema = z
  .string()
  .regex(/^[0-9a-f]{16}$/, 'key id must be 16 hex characters (the part after msk_)')
  .meta({ description: 'key id' });

// --- responses -------------------------------------------------------------------------------

const dateTime = z.iso.datetime({ offset: true });
const authTypeSchema = z.enum(['oauth', 'api_key']);
const statusSchema = z.enum(['active', 'reauth_required', 'disabled']);

export const errorSchema = z
  .object({
    error: z.object({
      type: z.string().meta({ description: 'stable machine-readable kind, e.g. not_found, reauth_required' }),
      message: z.string(),
    }),
  })
  .meta({ id: 'Error' });

export const lastResultSchema = z.object({
  outcome: z.enum(['refreshed', 'already_current', 'reauth_required', 'failed']),
  at: dateTime,
  attempts: z.number().int(),
  error: z.string().optional(),
});

export const refreshStatusSchema = z
  .object({
    credentialId: z.uuid(),
    phase: z.enum(['starting', 'sleeping', 'refreshing', 'parked', 'stopped']),
    nextRefreshAt: dateTime.nullable(),
    refreshes: z.number().int(),
    lastRefreshAt: dateTime.nullable(),
    lastResult: lastResultSchema.nullable(),
    credentialStatus: z.string().nullable(),
  })
  .meta({ id: 'RefreshStatus', description: 'the refresh workflow as it reports itself' });

/** Credential metadata: everything about a credential except its secret. */
export const credentialSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    provider: providerSchema,
    authType: authTypeSchema,
    status: statusSchema,
    expiresAt: dateTime.nullable(),
    tokenObtainedAt: dateTime.nullable(),
    version: z.number().int().meta({ description: 'bumped by every token write' }),
    refreshCount: z.number().int(),
    lastRefreshedAt: dateTime.nullable(),
    lastError: z.string().nullable(),
    providerMetadata: z
      .object({ project: z.string().optional().meta({ description: 'Gemini sign-in: the Code Assist project its calls bill to' }) })
      .nullable()
      .meta({ description: 'non-secret provider facts the calls need; null when none' }),
    createdAt: dateTime,
    updatedAt: dateTime,
  })
  .meta({ id: 'Credential', description: 'credential metadata (never a secret)' });

const rateLimitWindowSchema = z.object({
  limit: z.number().optional(),
  remaining: z.number().optional(),
  reset: dateTime.optional(),
  utilization: z.number().optional().meta({ description: "a fraction, 0.37 = 37 % (a quota endpoint's percent is divided by 100)" }),
  status: z.string().optional(),
  windowMinutes: z.number().optional(),
  source: z.enum(['header', 'endpoint']).optional().meta({ description: "where it was learnt: an answer's headers or the quota endpoint" }),
  observedAt: dateTime.optional().meta({ description: 'when it was learnt' }),
});
export const rateLimitSchema = z
  .object({
    observedAt: dateTime,
    status: z.string().optional(),
    retryAfter: z.number().optional().meta({ description: 'seconds, from the last retry-after' }),
    windows: z
      .record(z.string(), rateLimitWindowSchema)
      .meta({ description: 'e.g. requests, tokens; five_hour, seven_day (Anthropic subscriptions)' }),
    representativeClaim: z.string().optional(),
    overage: z
      .object({
        status: z.string().optional(),
        reset: dateTime.optional(),
        disabledReason: z.string().optional(),
        utilization: z.number().optional(),
      })
      .optional(),
    credits: z
      .object({ hasCredits: z.boolean().optional(), unlimited: z.boolean().optional(), balance: z.string().optional() })
      .optional()
      .meta({ description: "ChatGPT sign-in: credits the account can spend past its plan's windows (from the quota read)" }),
    stale: z
      .literal(true)
      .optional()
      .meta({ description: 'the last quota read was refused (expired or revoked token); windows are as old as their observedAt' }),
  })
  .meta({ id: 'RateLimit', description: "the provider's last reported rate-limit state for this credential" });

export const credentialWithWorkflowSchema = credentialSchema
  .extend({
    workflow: refreshStatusSchema.nullable().meta({ description: 'null for API keys or when Temporal cannot say' }),
    rateLimit: rateLimitSchema.nullable().meta({ description: 'null until an answer carried rate-limit headers' }),
  })
  .meta({ id: 'CredentialWithWorkflow' });

export const credentialListSchema = z.object({ credentials: z.array(credentialSchema), nextCursor: nextCursorSchema });

export const credentialEventSchema = z
  .object({ id: z.string(), credentialId: z.uuid(), type: z.string(), details: z.record(z.string(), z.unknown()), createdAt: dateTime })
  .meta({ id: 'CredentialEvent' });
export const credentialEventListSchema = z.object({ events: z.array(credentialEventSchema) });

export const loginStartedSchema = z.object({
  sessionId: z.uuid(),
  authorizeUrl: z.url().meta({ description: 'open this in a browser, sign in, paste the code back to /complete' }),
  expiresAt: dateTime,
});

export const keySchema = z
  .object({
    id: z.string().meta({ description: 'the key id: msk_<id>_<secret>' }),
    name: z.string(),
    role: z.enum(['admin', 'client']),
    credentials: z.array(z.uuid()).meta({ description: 'credential ids a client key may use' }),
    providers: z.array(providerSchema).meta({ description: 'providers whose every credential a client key may use' }),
    pools: z.array(z.uuid()).meta({ description: 'pool ids a client key may use' }),
    expiresAt: dateTime.nullable(),
    limits: keyLimitsSchema,
    createdAt: dateTime,
    createdBy: z.string().nullable().meta({ description: 'id of the key that created it (env:<n> for MAESTRO_API_KEYS)' }),
    revokedAt: dateTime.nullable(),
    lastUsedAt: dateTime.nullable().meta({ description: 'written in batches: up to a few seconds behind' }),
  })
  .meta({ id: 'Key', description: 'a Maestro client key (never the key or its hash)' });
export const createdKeySchema = keySchema
  .extend({ key: z.string().meta({ description: 'the whole key, msk_<id>_<secret>: shown this once, store it now' }) })
  .meta({ id: 'CreatedKey' });
export const keyListSchema = z.object({ keys: z.array(keySchema), nextCursor: nextCursorSchema });

const usageDimensions = ['key', 'credential', 'provider', 'model', 'pool'] as const;
export const usageQuerySchema = z.strictObject({
  from: z.iso
    .datetime({ offset: true, error: 'from must be an ISO 8601 date-time' })
    .refine((v) => isStorableDate(new Date(v)), `from must be ${STORABLE_DATE_RANGE}`)
    .optional(),
  to: z.iso
    .datetime({ offset: true, error: 'to must be an ISO 8601 date-time' })
    .refine((v) => isStorableDate(new Date(v)), `to must be ${STORABLE_DATE_RANGE}`)
    .optional(),
  groupBy: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const parts = (v ?? '')
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      const bad = parts.filter((p) => !(usageDimensions as readonly string[]).includes(p));
      if (bad.length)
        ctx.addIssue({
          code: 'custom',
          message: `groupBy: unknown ${bad.join(', ')}; use a comma-separated subset of ${usageDimensions.join(',')}`,
        });
      return [...new Set(parts)] as Array<(typeof usageDimensions)[number]>;
    })
    .meta({ description: 'comma-separated subset of key,credential,provider,model,pool' }),
  bucket: z.enum(['hour', 'day', 'none'], { error: 'bucket must be hour, day or none' }).default('none'),
});
export const usageRowSchema = z
  .object({
    key: z.string().optional(),
    credential: z.string().optional(),
    provider: z.string().optional(),
    model: z.string().optional(),
    pool: z.string().nullable().optional().meta({ description: 'the pool that routed the calls (an id); null for calls outside any pool' }),
    bucketStart: dateTime.optional(),
    requests: z.number().int(),
    errors: z.number().int(),
    inputTokens: z.number().int(),
    outputTokens: z.number().int(),
    cacheReadTokens: z.number().int(),
    cacheWriteTokens: z.number().int(),
    incomplete: z.number().int().meta({
      description:
        'calls whose final token counts never arrived (a stream cut short): their tokens are those reported before the cut; budgets charged them at their stated upper bound',
    }),
  })
  .meta({ id: 'UsageRow' });
export const usageAnswerSchema = z.object({ from: dateTime, to: dateTime, usage: z.array(usageRowSchema) });

export const healthSchema = z.object({ status: z.literal('ok') });
export const readySchema = z.object({ status: z.literal('ready') });

/** A response body shaped by its schema: typed against it at compile time, unknown fields dropped at run time. */
export function shaped<S extends z.ZodType>(schema: S, value: z.input<S>): z.output<S> {
  const result = schema.safeParse(value);
  // A response that does not fit its schema is Maestro's bug (a 500, logged), never the caller's 400.
  if (!result.success) throw new Error(`response does not match its schema: ${describeIssues(result.error)}`);
  return result.data;
}

/** A readable one-line summary of zod's issues: "field: problem; field: problem". */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const where = issue.path.length ? issue.path.join('.') : 'body';
      if (issue.code === 'unrecognized_keys') return `${where}: unknown field(s) ${issue.keys.join(', ')}`;
      return `${where}: ${issue.message}`;
    })
    .join('; ');
}

// --- pools (DESIGN.md "Pools") ------------------------------------------------------------------

const poolName = z
  .string({ error: 'name must be a string' })
  .trim()
  .min(1, 'name must not be empty')
  .max(100, 'name must be at most 100 characters')
  .regex(/^[A-Za-z0-9._-]+$/, 'name may hold letters, digits, ".", "_" and "-"')
  .refine((v) => !/^[0-9a-f]{8}-[0-9a-f]{4}-/i.test(v), 'name must not look like an id');
const poolMemberSchema = z.strictObject({
  credential: z.string({ error: 'members[].credential must be a credential id or name' }).trim().min(1).max(100),
  priority: z
    .number()
    .int('priority must be a whole number')
    .min(0)
    .max(1000)
    .optional()
    .meta({ description: 'lower is used first (default 0)' }),
  weight: z.number().int('weight must be a whole number').min(1, 'weight must be 1–100').max(100, 'weight must be 1–100').optional(),
  maxUtilization: z.number().min(0, 'maxUtilization must be 0–1').max(1, 'maxUtilization must be 0–1 (a fraction: 0.98 = 98 %)').optional(),
});
const poolPolicyFields = {
  members: z
    .array(poolMemberSchema, { error: 'members must be a list of {credential, priority?, weight?, maxUtilization?}' })
    .min(1, 'a pool needs at least one member')
    .max(50, 'at most 50 members'),
  strategy: z.enum(POOL_STRATEGIES, { error: `strategy must be one of ${POOL_STRATEGIES.join(', ')}` }).optional(),
  onExhausted: z
    .strictObject({
      mode: z.enum(['hold', 'reject'], { error: 'onExhausted.mode must be "hold" or "reject"' }),
      holdSeconds: z.number().int().min(1, 'holdSeconds must be 1–600').max(600, 'holdSeconds must be 1–600').optional(),
    })
    .optional(),
  planLimitsOnly: z.boolean().optional(),
  sessionTtlSeconds: z
    .number()
    .int()
    .min(60, 'sessionTtlSeconds must be 60–86400')
    .max(86_400, 'sessionTtlSeconds must be 60–86400')
    .optional(),
};
export const createPoolSchema = z.strictObject({ name: poolName, provider: providerSchema, ...poolPolicyFields });
export const updatePoolSchema = z.strictObject({
  name: poolName.optional(),
  ...poolPolicyFields,
  members: poolPolicyFields.members.optional(),
});
export const poolParamSchema = z.string().trim().min(1).max(100).meta({ description: 'a pool id or name' });
export const poolMemberActionSchema = z.strictObject({
  credential: z.string().trim().min(1).max(100).meta({ description: 'the member (a credential id)' }),
  action: z.enum(['pause', 'resume', 'clear-cooldown'], { error: 'action must be pause, resume or clear-cooldown' }),
});
const memberWindowSchema = z.object({
  utilization: z.number().optional(),
  reset: z.string().optional(),
  status: z.string().optional(),
  source: z.enum(['header', 'endpoint']).optional(),
  observedAt: z.string().optional(),
});
export const poolSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    provider: providerSchema,
    strategy: z.enum(POOL_STRATEGIES),
    onExhausted: z.object({ mode: z.enum(['hold', 'reject']), holdSeconds: z.number().int() }),
    planLimitsOnly: z.boolean(),
    sessionTtlSeconds: z.number().int(),
    routable: z.number().int().meta({ description: 'members that take new work now' }),
    nextAvailableAt: dateTime.nullable().meta({ description: 'the earliest time a member that is not routable is expected back' }),
    members: z.array(
      z.object({
        credentialId: z.uuid(),
        credentialName: z.string(),
        priority: z.number().int(),
        weight: z.number().int(),
        maxUtilization: z.number(),
        paused: z.boolean(),
        state: z.enum(MEMBER_STATES),
        reason: z.string().nullable(),
        until: dateTime.nullable(),
        scope: z.array(z.object({ scope: z.string(), until: dateTime.nullable(), reason: z.string() })),
        windows: z.record(z.string(), memberWindowSchema),
        sessions: z.number().int(),
        inFlight: z.number().int(),
      }),
    ),
    createdAt: dateTime,
    updatedAt: dateTime,
  })
  .meta({ id: 'Pool', description: 'a pool and the state of each member as the router sees it' });
export const poolListSchema = z.object({ pools: z.array(poolSchema) });
export const poolEventsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1, 'limit must be 1–500').max(500, 'limit must be 1–500').default(100),
});
export const poolEventListSchema = z.object({
  events: z.array(
    z.object({
      at: dateTime,
      type: z.enum(POOL_EVENT_TYPES),
      credentialId: z.uuid().optional(),
      sessionKey: z.string().optional(),
      reason: z.string().optional(),
      until: dateTime.optional(),
      details: z.record(z.string(), z.unknown()),
    }),
  ),
});
