// A small in-memory PoolsReader for the admin page's tests: one pool whose members can be paused,
// resumed and cleared, every action recorded with its actor (the real one is src/pools/service.ts).
import type { MemberAction, PoolEvent, PoolMemberView, PoolsReader, PoolView } from '../../src/model/pools.js';
import { NotFoundError } from '../../src/errors.js';

export class MemoryPools implements PoolsReader {
  readonly actions: Array<{ pool: string; credential: string; action: MemberAction; actor: string }> = [];
  private readonly pools: PoolView[] = [];
  private readonly timeline = new Map<string, PoolEvent[]>();

  add(pool: Omit<PoolView, 'routable' | 'nextAvailableAt'>, events: PoolEvent[] = []): PoolView {
    const view = { ...pool, routable: 0, nextAvailableAt: null };
    this.pools.push(view);
    this.timeline.set(view.id, events);
    this.recount(view);
    return view;
  }

  async list(): Promise<PoolView[]> {
    return structuredClone(this.pools);
  }

  async get(idOrName: string): Promise<PoolView> {
    return structuredClone(this.find(idOrName));
  }

  async events(idOrName: string, limit = 100): Promise<PoolEvent[]> {
    return (this.timeline.get(this.find(idOrName).id) ?? []).slice(0, limit);
  }

  async memberAction(idOrName: string, credential: string, action: MemberAction, actor: string): Promise<PoolView> {
    const pool = this.find(idOrName);
    const member = pool.members.find((m) => m.credentialId === credential || m.credentialName === credential);
    if (!member) throw new NotFoundError(`no member ${credential} in pool ${pool.name}`);
    this.actions.push({ pool: pool.id, credential: member.credentialId, action, actor });
    if (action === 'pause') member.paused = true;
    if (action === 'resume') member.paused = false;
    if (action === 'clear-cooldown')
      Object.assign(member, { state: 'routable', reason: null, until: null, scope: [] } satisfies Partial<PoolMemberView>);
    const type = action === 'pause' ? 'member_paused' : action === 'resume' ? 'member_resumed' : 'cooldown_cleared';
    this.timeline.get(pool.id)!.unshift({ at: new Date().toISOString(), type, credentialId: member.credentialId, details: { actor } });
    this.recount(pool);
    return structuredClone(pool);
  }

  private find(idOrName: string): PoolView {
    const pool = this.pools.find((p) => p.id === idOrName || p.name === idOrName);
    if (!pool) throw new NotFoundError(`no pool ${idOrName}`);
    return pool;
  }

  private recount(pool: PoolView): void {
    pool.routable = pool.members.filter((m) => m.state === 'routable' && !m.paused).length;
    const backs = pool.members.map((m) => m.until).filter((u): u is string => !!u);
    pool.nextAvailableAt = backs.sort()[0] ?? null;
  }
}
