// The attempt loop of the provider-call pipeline, alone: candidates, sends and refreshes are
// plain functions here, so each rule is checked without a server.
import { describe, expect, it } from 'vitest';
import { attempt, type AttemptPlan } from '../../src/upstream/attempt.js';

interface Cred {
  id: string;
  version: number;
  status: 'active' | 'reauth_required';
  expiring?: boolean;
}
interface Answer {
  status: number;
  by: number;
}

/** A plan whose provider answers `statuses` in order; records every step. */
function plan(statuses: number[], opts: { candidate?: Partial<Cred>; refreshed?: Partial<Cred>; replayable?: boolean } = {}) {
  const steps: string[] = [];
  const answers = [...statuses];
  const p: AttemptPlan<Cred, Answer> = {
    candidate: { id: 'c1', version: 1, status: 'active', ...opts.candidate },
    usable(c) {
      steps.push(`usable v${c.version}`);
      if (c.status !== 'active') throw new Error(`credential ${c.id} needs a new login`);
    },
    refreshFirst: (c) => c.expiring === true,
    async refresh(c) {
      steps.push(`refresh v${c.version}`);
      return { ...c, version: c.version + 1, expiring: false, ...opts.refreshed };
    },
    async send(c) {
      steps.push(`send v${c.version}`);
      return { status: answers.shift() ?? 200, by: c.version };
    },
    refused: (a, c) => a.status === 401 && c.status === 'active' && (opts.replayable ?? true),
    async discard(a) {
      steps.push(`discard ${a.status}`);
    },
  };
  return { p, steps };
}

describe('attempt', () => {
  it('sends once when the provider answers', async () => {
    const { p, steps } = plan([200]);
    const done = await attempt(p);
    expect(done).toEqual({ answer: { status: 200, by: 1 }, credential: { id: 'c1', version: 1, status: 'active' } });
    expect(steps).toEqual(['usable v1', 'send v1']);
  });

  it('refreshes first a token about to expire, and checks the refreshed credential', async () => {
    const { p, steps } = plan([200], { candidate: { expiring: true } });
    expect((await attempt(p)).answer.by).toBe(2);
    expect(steps).toEqual(['usable v1', 'refresh v1', 'usable v2', 'send v2']);
  });

  it('on a refused token: discards the answer, refreshes once, sends once more', async () => {
    const { p, steps } = plan([401, 200]);
    const done = await attempt(p);
    expect(done.answer).toEqual({ status: 200, by: 2 });
    expect(done.credential.version).toBe(2);
    expect(steps).toEqual(['usable v1', 'send v1', 'discard 401', 'refresh v1', 'usable v2', 'send v2']);
  });

  it('a second refusal is the answer: no second refresh, no third send', async () => {
    const { p, steps } = plan([401, 401]);
    expect((await attempt(p)).answer).toEqual({ status: 401, by: 2 });
    expect(steps.filter((s) => s.startsWith('send'))).toHaveLength(2);
    expect(steps.filter((s) => s.startsWith('refresh'))).toHaveLength(1);
  });

  it('a body that cannot be sent again: the refusal is the answer', async () => {
    const { p, steps } = plan([401, 200], { replayable: false });
    expect((await attempt(p)).answer.status).toBe(401);
    expect(steps).toEqual(['usable v1', 'send v1']);
  });

  it('nothing is sent with a credential that cannot be used, before or after a refresh', async () => {
    const dead = plan([200], { candidate: { status: 'reauth_required' } });
    await expect(attempt(dead.p)).rejects.toThrow(/needs a new login/);
    expect(dead.steps).toEqual(['usable v1']);
    const diesOnRefresh = plan([401, 200], { refreshed: { status: 'reauth_required' } });
    await expect(attempt(diesOnRefresh.p)).rejects.toThrow(/needs a new login/);
    expect(diesOnRefresh.steps).toEqual(['usable v1', 'send v1', 'discard 401', 'refresh v1', 'usable v2']);
  });

  it('a failed send or refresh is the caller’s error, as it came', async () => {
    const { p } = plan([200]);
    await expect(attempt({ ...p, send: async () => Promise.reject(new Error('ECONNREFUSED')) })).rejects.toThrow('ECONNREFUSED');
    const refusing = plan([401]);
    await expect(attempt({ ...refusing.p, refresh: async () => Promise.reject(new Error('still retrying')) })).rejects.toThrow(
      'still retrying',
    );
  });

  it('goes on from an answer the caller already has (a pool’s fast path): a refusal is refreshed and sent once more', async () => {
    const { p, steps } = plan([200]);
    const done = await attempt({ ...p, answered: { status: 401, by: 1 } });
    expect(done.answer).toEqual({ status: 200, by: 2 });
    expect(steps).toEqual(['discard 401', 'refresh v1', 'usable v2', 'send v2']);

    const ok = plan([]);
    expect(await attempt({ ...ok.p, answered: { status: 429, by: 1 } })).toMatchObject({ answer: { status: 429, by: 1 } });
    expect(ok.steps).toEqual([]); // nothing sent again: the answer in hand is the attempt's
  });
});
