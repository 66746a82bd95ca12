// The pool loop (src/upstream/poolAttempt.ts) alone, with a router that records what it is told:
// how a call that began on the fast path (a member picked, started and sent to by the caller)
// goes on in the loop without a second send and without a second `started`.
import { describe, expect, it } from 'vitest';
import type { Classified } from '../../src/pools/classify.js';
import type { PoolRouter, RouteRequest } from '../../src/pools/router.js';
import { attemptPool, type PoolPlan } from '../../src/upstream/poolAttempt.js';

interface Answer {
  status: number;
  from: string;
}
const ok: Classified = { scope: 'ok', evidence: '200', failover: false };
const limited: Classified = { scope: 'window', evidence: '429 five_hour rejected', until: Date.now() + 3600_000, failover: true };

function setup(members: string[]) {
  const steps: string[] = [];
  const router = {
    pick: (_req: RouteRequest, tried: ReadonlySet<string>) => {
      steps.push('pick');
      const id = members.find((m) => !tried.has(m));
      return id ? { credentialId: id, probe: false } : undefined;
    },
    started: (id: string) => void steps.push(`started ${id}`),
    finished: (id: string) => void steps.push(`finished ${id}`),
    succeeded: (_req: RouteRequest, id: string) => void steps.push(`succeeded ${id}`),
    failed: (_req: RouteRequest, id: string, c: Classified) => void steps.push(`failed ${id} ${c.scope}`),
    exhausted: () => ({ nextAvailableAt: null, members: [] }),
    acquireProbe: async () => true,
  } as unknown as PoolRouter;
  const request = {
    pool: { id: 'p', name: 'team', members: members.map((credentialId) => ({ credentialId })), onExhausted: { mode: 'reject' } },
  } as unknown as RouteRequest;
  const plan: PoolPlan<Answer> = {
    router,
    request,
    replayable: true,
    deadline: Date.now() + 60_000,
    client: { aborted: false, signal: new AbortController().signal },
    changed: async () => {},
    async send(id, answered) {
      steps.push(answered ? `judged ${id} ${answered.status}` : `sent ${id}`);
      const answer = answered ?? { status: 200, from: id };
      return { answer, credentialId: id, classified: answer.status === 200 ? ok : limited };
    },
    async discard(a) {
      steps.push(`discarded ${a.from}`);
    },
  };
  return { plan, steps };
}

describe('attemptPool from a fast path’s answer', () => {
  it('a failed first answer fails over: the member is not started or sent to again', async () => {
    const { plan, steps } = setup(['a', 'b']);
    const served = await attemptPool({ ...plan, first: { credentialId: 'a', answered: { status: 429, from: 'a' } } });
    expect(served).toMatchObject({ credentialId: 'b', answer: { status: 200, from: 'b' } });
    expect(steps).toEqual(['judged a 429', 'failed a window', 'discarded a', 'finished a', 'pick', 'started b', 'sent b', 'succeeded b']);
  });

  it('a first answer that stands is the answer, with nothing else sent', async () => {
    const { plan, steps } = setup(['a', 'b']);
    const served = await attemptPool({ ...plan, first: { credentialId: 'a', answered: { status: 200, from: 'a' } } });
    expect(served.credentialId).toBe('a');
    expect(steps).toEqual(['judged a 200', 'succeeded a']);
  });

  it('without a first answer the loop picks, starts and sends as before', async () => {
    const { plan, steps } = setup(['a']);
    await attemptPool(plan);
    expect(steps).toEqual(['pick', 'started a', 'sent a', 'succeeded a']);
  });

  it("begins with the caller's pick (a cold member): no second pick, and later switches pick as usual", async () => {
    const { plan, steps } = setup(['a', 'b']);
    const served = await attemptPool({
      ...plan,
      picked: { credentialId: 'a', probe: false },
      send: async (id) => {
        steps.push(`sent ${id}`);
        return { answer: { status: id === 'a' ? 429 : 200, from: id }, credentialId: id, classified: id === 'a' ? limited : ok };
      },
    });
    expect(served.credentialId).toBe('b');
    expect(steps).toEqual([
      'started a',
      'sent a',
      'failed a window',
      'discarded a',
      'finished a',
      'pick',
      'started b',
      'sent b',
      'succeeded b',
    ]);
  });
});
