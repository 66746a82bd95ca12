// Pools as the routes, the CLI (through the routes) and the admin page use them: create, change,
// delete, describe (each member's state as the router sees it), the events timeline, and an
// operator's action on a member (pause, resume, clear a cooldown — written to the timeline with
// who did it). The shapes are DESIGN.md's (src/model/pools.ts).
import type { CredentialStore } from '../db/credentials.js';
import type { NewMember, PoolPolicy, PoolRecord, PoolStore } from '../db/pools.js';
import type { RoutingStore } from '../db/routing.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { UUID } from '../ids.js';
import {
  POOL_DEFAULTS,
  type MemberAction,
  type OnExhausted,
  type PoolEvent,
  type PoolMemberView,
  type PoolStrategy,
  type PoolView,
  type PoolsReader,
} from '../model/pools.js';
import type { ProviderId } from '../model/providers.js';
import type { RateLimitState } from '../usage/rateLimits.js';
import type { PoolRouter } from './router.js';
import type { RoutingState } from './routingState.js';

export interface MemberInput {
  credential: string;
  priority?: number;
  weight?: number;
  maxUtilization?: number;
}

export interface PoolInput {
  name: string;
  provider: ProviderId;
  members: MemberInput[];
  strategy?: PoolStrategy;
  onExhausted?: { mode: OnExhausted['mode']; holdSeconds?: number };
  planLimitsOnly?: boolean;
  sessionTtlSeconds?: number;
}

export type PoolPatch = Partial<Omit<PoolInput, 'provider'>>;

export interface PoolServiceDeps {
  pools: PoolStore;
  routing: RoutingStore;
  credentials: CredentialStore;
  state: RoutingState;
  router: PoolRouter;
  rateLimit: (credentialId: string) => RateLimitState | undefined;
}

export class PoolService implements PoolsReader {
  constructor(private readonly deps: PoolServiceDeps) {}

  async create(input: PoolInput): Promise<PoolView> {
    const members = await this.resolveMembers(input.provider, input.members);
    const created = await this.deps.pools.create(
      {
        name: input.name,
        provider: input.provider,
        strategy: input.strategy ?? POOL_DEFAULTS.strategy,
        onExhausted: onExhaustedOf(input.onExhausted),
        planLimitsOnly: input.planLimitsOnly ?? POOL_DEFAULTS.planLimitsOnly,
        sessionTtlSeconds: input.sessionTtlSeconds ?? POOL_DEFAULTS.sessionTtlSeconds,
      },
      members,
    );
    await this.deps.state.reloadPools(); // this process routes with it before the answer leaves
    return this.describe(created);
  }

  async update(idOrName: string, patch: PoolPatch): Promise<PoolView> {
    const pool = await this.find(idOrName);
    const members = patch.members ? await this.resolveMembers(pool.provider, patch.members) : undefined;
    const policy: Partial<PoolPolicy> = {
      name: patch.name,
      strategy: patch.strategy,
      onExhausted: patch.onExhausted ? onExhaustedOf(patch.onExhausted) : undefined,
      planLimitsOnly: patch.planLimitsOnly,
      sessionTtlSeconds: patch.sessionTtlSeconds,
    };
    const updated = await this.deps.pools.update(pool.id, policy, members);
    await this.deps.state.reloadPools();
    return this.describe(updated);
  }

  async delete(idOrName: string): Promise<void> {
    const pool = await this.find(idOrName);
    await this.deps.pools.delete(pool.id);
    await this.deps.state.reloadPools();
  }

  async list(): Promise<PoolView[]> {
    const pools = await this.deps.pools.list();
    return Promise.all(pools.map((p) => this.describe(p)));
  }

  async get(idOrName: string): Promise<PoolView> {
    return this.describe(await this.find(idOrName));
  }

  async events(idOrName: string, limit = 100): Promise<PoolEvent[]> {
    const pool = await this.find(idOrName);
    return this.deps.routing.events(
      pool.id,
      pool.members.map((m) => m.credentialId),
      Math.min(Math.max(limit, 1), 500),
    );
  }

  async memberAction(idOrName: string, credential: string, action: MemberAction, actor: string): Promise<PoolView> {
    const pool = await this.find(idOrName);
    const member = pool.members.find((m) => m.credentialId === credential.toLowerCase());
    if (!member) throw new NotFoundError(`credential ${credential.slice(0, 40)} is not a member of pool "${pool.name}"`);
    const { state } = this.deps;
    const id = member.credentialId;
    if (action === 'clear-cooldown') {
      const cleared = state.clear(id, Date.now());
      state.event({
        poolId: pool.id,
        credentialId: id,
        type: 'cooldown_cleared',
        reason: 'cleared by an operator',
        details: { by: actor, scopes: cleared },
      });
    } else {
      const paused = action === 'pause';
      await this.deps.pools.setPaused(pool.id, id, paused);
      state.event({ poolId: pool.id, credentialId: id, type: paused ? 'member_paused' : 'member_resumed', details: { by: actor } });
    }
    await state.reloadPools();
    return this.get(pool.id);
  }

  /** The pool by id or name, as stored now. */
  async find(idOrName: string): Promise<PoolRecord> {
    const found = UUID.test(idOrName)
      ? await this.deps.pools.get(idOrName.toLowerCase()).catch(() => undefined)
      : await this.deps.pools.findByName(idOrName);
    if (!found) throw new NotFoundError(`no pool with id or name "${idOrName.slice(0, 100)}" (GET /v1/pools lists them)`);
    return found;
  }

  async describe(pool: PoolRecord): Promise<PoolView> {
    const now = Date.now();
    const credentials = new Map((await this.deps.credentials.list({ provider: pool.provider })).map((c) => [c.id, c]));
    const members: PoolMemberView[] = pool.members.map((m) => {
      const s = this.deps.router.status(pool, m.credentialId, undefined, now);
      const credential = credentials.get(m.credentialId);
      // The stored status is the truth here (the router's copy may not have loaded this credential), before any bench.
      const stored = credential && credential.status !== 'active' && !m.paused ? credential.status : undefined;
      const state = stored === 'reauth_required' ? 'reauth_required' : stored ? 'disabled' : s.state;
      const windows: PoolMemberView['windows'] = {};
      for (const [name, w] of Object.entries(this.deps.rateLimit(m.credentialId)?.windows ?? {})) {
        windows[name] = { utilization: w.utilization, reset: w.reset, status: w.status };
      }
      return {
        credentialId: m.credentialId,
        credentialName: credential?.name ?? '(deleted)',
        priority: m.priority,
        weight: m.weight,
        maxUtilization: m.maxUtilization,
        paused: m.paused,
        state,
        reason: stored ? `the credential is ${stored}` : s.reason,
        until: s.until !== null ? new Date(s.until).toISOString() : null,
        scope: [
          ...(s.state === 'cooling' && s.until !== null
            ? [{ scope: 'credential', until: new Date(s.until).toISOString(), reason: s.reason ?? '' }]
            : []),
          ...s.families.map((f) => ({ scope: f.scope, until: new Date(f.until).toISOString(), reason: f.reason })),
        ],
        windows,
        sessions: this.deps.state.sessionsOf(pool.id, m.credentialId, now),
        inFlight: this.deps.state.inflight(m.credentialId).count,
      };
    });
    const backs = members.filter((m) => m.state !== 'routable' && m.until).map((m) => Date.parse(m.until!));
    return {
      id: pool.id,
      name: pool.name,
      provider: pool.provider,
      strategy: pool.strategy,
      onExhausted: pool.onExhausted,
      planLimitsOnly: pool.planLimitsOnly,
      sessionTtlSeconds: pool.sessionTtlSeconds,
      routable: members.filter((m) => m.state === 'routable').length,
      nextAvailableAt: backs.length > 0 ? new Date(Math.min(...backs)).toISOString() : null,
      members,
      createdAt: pool.createdAt.toISOString(),
      updatedAt: pool.updatedAt.toISOString(),
    };
  }

  /** Members by credential id or name: each of the pool's provider, each once. */
  private async resolveMembers(provider: ProviderId, given: MemberInput[]): Promise<NewMember[]> {
    const all = await this.deps.credentials.list();
    const seen = new Set<string>();
    return given.map((m) => {
      const ref = m.credential;
      const matches = UUID.test(ref)
        ? all.filter((c) => c.id === ref.toLowerCase())
        : all.filter((c) => c.name === ref && c.provider === provider);
      if (matches.length === 0) throw new ValidationError(`members: no ${provider} credential with id or name "${ref.slice(0, 100)}"`);
      if (matches.length > 1) {
        throw new ValidationError(
          `members: "${ref.slice(0, 100)}" names ${matches.length} ${provider} credentials: list one by id: ${matches.map((c) => `${c.id} (${c.authType})`).join(', ')}`,
        );
      }
      const c = matches[0]!;
      if (c.provider !== provider)
        throw new ValidationError(`members: credential "${c.name}" is a ${c.provider} credential; this pool is ${provider}`);
      if (seen.has(c.id)) throw new ValidationError(`members: credential "${c.name}" is listed twice`);
      seen.add(c.id);
      return {
        credentialId: c.id,
        priority: m.priority ?? POOL_DEFAULTS.priority,
        weight: m.weight ?? POOL_DEFAULTS.weight,
        maxUtilization: m.maxUtilization ?? POOL_DEFAULTS.maxUtilization,
      };
    });
  }
}

function onExhaustedOf(given: { mode: OnExhausted['mode']; holdSeconds?: number } | undefined): OnExhausted {
  return { mode: given?.mode ?? POOL_DEFAULTS.onExhausted.mode, holdSeconds: given?.holdSeconds ?? POOL_DEFAULTS.onExhausted.holdSeconds };
}
