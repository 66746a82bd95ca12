// Golden orders for each strategy, and the spread that keeps simultaneous picks off one member.
import { describe, expect, it } from 'vitest';
import { orderCandidates, type CandidateView } from '../../src/pools/strategies.js';
import { prng } from '../support/prng.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const member = (credentialId: string, over: Partial<CandidateView> = {}): CandidateView => ({
  credentialId,
  priority: 0,
  weight: 1,
  inFlight: 0,
  windows: [],
  ...over,
});

describe('affinity-least-loaded', () => {
  const order = (members: CandidateView[], boundTo?: string, seed = 1) =>
    orderCandidates('affinity-least-loaded', members, { now: NOW, boundTo, random: prng(seed) });

  it('the bound member first, even when busier; then least loaded', () => {
    const members = [member('a', { inFlight: 5 }), member('b', { inFlight: 1 }), member('c', { inFlight: 0 })];
    expect(order(members, 'a')).toEqual(['a', 'c', 'b']);
    expect(order(members)).toEqual(['c', 'b', 'a']);
  });

  it('a bound member that is not routable (not passed) is ignored', () => {
    expect(order([member('b', { inFlight: 1 }), member('c')], 'gone')).toEqual(['c', 'b']);
  });

  it('load is in flight per unit of weight', () => {
    // a: 4/4 = 1, b: 2/1 = 2, c: 3/2 = 1.5
    const members = [member('a', { inFlight: 4, weight: 4 }), member('b', { inFlight: 2 }), member('c', { inFlight: 3, weight: 2 })];
    expect(order(members)).toEqual(['a', 'c', 'b']);
  });

  it('a pick in the last 2 s counts as extra load, fading', () => {
    const members = [
      member('a', { lastPickedAt: NOW - 100 }),
      member('b', { lastPickedAt: NOW - 1_500 }),
      member('c', { lastPickedAt: NOW - 5_000 }),
    ];
    expect(order(members)).toEqual(['c', 'b', 'a']);
  });

  it('a member just back from a bench is ramped onto, not flooded', () => {
    const members = [member('fresh', { recoveredAt: NOW - 1_000 }), member('busy', { inFlight: 1 })];
    expect(order(members)).toEqual(['busy', 'fresh']);
    // Ten seconds later the ramp is over.
    expect(orderCandidates('affinity-least-loaded', members, { now: NOW + 10_000, random: prng(1) })).toEqual(['fresh', 'busy']);
  });

  it('equal load: lower priority number first', () => {
    expect(order([member('p1', { priority: 1 }), member('p0', { priority: 0 }), member('p2', { priority: 2 })])).toEqual([
      'p0',
      'p1',
      'p2',
    ]);
  });

  it('equal load and priority: a weighted random draw, heavier members first more often', () => {
    const first: Record<string, number> = { heavy: 0, light: 0 };
    const random = prng(7);
    for (let i = 0; i < 1000; i++) {
      const ordered = orderCandidates('affinity-least-loaded', [member('heavy', { weight: 3 }), member('light')], { now: NOW, random });
      first[ordered[0]!]!++;
    }
    // P(heavy first) = 3/4.
    expect(first.heavy).toBeGreaterThan(650);
    expect(first.heavy).toBeLessThan(850);
  });

  it('returns every member exactly once', () => {
    const members = Array.from({ length: 7 }, (_, i) => member(`m${i}`, { inFlight: i % 3, priority: i % 2 }));
    const ordered = order(members, 'm4');
    expect(ordered[0]).toBe('m4');
    expect([...ordered].sort()).toEqual(members.map((m) => m.credentialId).sort());
  });

  it('100 simultaneous picks over 3 equal members spread (no member over 50 %), seen only through lastPickedAt', () => {
    // Another process's in-flight calls are not seen yet; only the shared lastPickedAt is.
    const members = [member('a'), member('b'), member('c')];
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    const random = prng(2026);
    for (let i = 0; i < 100; i++) {
      const [pick] = orderCandidates('affinity-least-loaded', members, { now: NOW, random });
      counts[pick!]!++;
      members.find((m) => m.credentialId === pick)!.lastPickedAt = NOW;
    }
    expect(Object.values(counts).reduce((s, n) => s + n, 0)).toBe(100);
    for (const n of Object.values(counts)) expect(n).toBeLessThanOrEqual(50);
    for (const n of Object.values(counts)) expect(n).toBeGreaterThan(0);
  });

  it('100 simultaneous picks that each count in flight split evenly', () => {
    const members = [member('a'), member('b'), member('c')];
    const random = prng(9);
    for (let i = 0; i < 100; i++) {
      const [pick] = orderCandidates('affinity-least-loaded', members, { now: NOW, random });
      const m = members.find((x) => x.credentialId === pick)!;
      m.inFlight++;
      m.lastPickedAt = NOW;
    }
    expect(members.map((m) => m.inFlight).sort()).toEqual([33, 33, 34]);
  });
});

describe('drain-soonest', () => {
  const order = (members: CandidateView[], boundTo?: string) =>
    orderCandidates('drain-soonest', members, { now: NOW, boundTo, random: prng(3) });

  it('the member whose binding window resets soonest first', () => {
    const members = [
      member('late', { windows: [{ name: 'five_hour', utilization: 0.2, reset: NOW + 4 * HOUR }] }),
      member('soon', { windows: [{ name: 'five_hour', utilization: 0.5, reset: NOW + 30 * MIN }] }),
      member('mid', { windows: [{ name: 'five_hour', utilization: 0.1, reset: NOW + 2 * HOUR }] }),
    ];
    expect(order(members)).toEqual(['soon', 'mid', 'late']);
  });

  it('the binding window is the most used one, not simply the earliest reset', () => {
    const members = [
      // 5h resets soon, but the 7d window (97 % used) binds and resets in 3 days.
      member('weekly-bound', {
        windows: [
          { name: 'five_hour', utilization: 0.1, reset: NOW + 10 * MIN },
          { name: 'seven_day', utilization: 0.97, reset: NOW + 72 * HOUR },
        ],
      }),
      member('five-hour-bound', {
        windows: [
          { name: 'five_hour', utilization: 0.6, reset: NOW + 3 * HOUR },
          { name: 'seven_day', utilization: 0.3, reset: NOW + 100 * HOUR },
        ],
      }),
    ];
    expect(order(members)).toEqual(['five-hour-bound', 'weekly-bound']);
  });

  it('lowest priority group first; members without a known reset last in their group; passed resets ignored', () => {
    const members = [
      member('p1-soon', { priority: 1, windows: [{ name: 'five_hour', utilization: 0.5, reset: NOW + MIN }] }),
      member('p0-unknown', { windows: [] }),
      member('p0-stale', { windows: [{ name: 'five_hour', utilization: 0.9, reset: NOW - MIN }] }),
      member('p0-late', { windows: [{ name: 'five_hour', utilization: 0.5, reset: NOW + 4 * HOUR }] }),
    ];
    const ordered = order(members);
    expect(ordered[0]).toBe('p0-late');
    expect(ordered.slice(1, 3).sort()).toEqual(['p0-stale', 'p0-unknown']);
    expect(ordered[3]).toBe('p1-soon');
  });

  it('the bound member first', () => {
    const members = [
      member('soon', { windows: [{ name: 'five_hour', utilization: 0.5, reset: NOW + 30 * MIN }] }),
      member('late', { windows: [{ name: 'five_hour', utilization: 0.5, reset: NOW + 4 * HOUR }] }),
    ];
    expect(order(members, 'late')).toEqual(['late', 'soon']);
  });

  it('same reset: least loaded first', () => {
    const windows = [{ name: 'five_hour', utilization: 0.5, reset: NOW + HOUR }];
    expect(order([member('busy', { inFlight: 3, windows }), member('idle', { windows })])).toEqual(['idle', 'busy']);
  });
});

describe('priority-fill', () => {
  const order = (members: CandidateView[], boundTo?: string) =>
    orderCandidates('priority-fill', members, { now: NOW, boundTo, random: prng(4) });

  it('strict priority order, the pool order within a priority, load ignored', () => {
    const members = [
      member('b1', { priority: 1 }),
      member('a0', { priority: 0, inFlight: 50 }),
      member('c0', { priority: 0 }),
      member('d2', { priority: 2 }),
    ];
    expect(order(members)).toEqual(['a0', 'c0', 'b1', 'd2']);
  });

  it('the bound member first only within its own priority', () => {
    const members = [
      member('a0', { priority: 0 }),
      member('b1', { priority: 1 }),
      member('c1', { priority: 1 }),
      member('d2', { priority: 2 }),
    ];
    expect(order(members, 'c1')).toEqual(['a0', 'c1', 'b1', 'd2']);
    expect(order(members, 'a0')).toEqual(['a0', 'b1', 'c1', 'd2']);
    expect(order(members, 'd2')).toEqual(['a0', 'b1', 'c1', 'd2']);
  });

  it('when the first is gone (not routable), the next fills', () => {
    expect(order([member('b1', { priority: 1 }), member('c1', { priority: 1 })])).toEqual(['b1', 'c1']);
  });
});

describe('every strategy', () => {
  it('no members → an empty order', () => {
    for (const s of ['affinity-least-loaded', 'drain-soonest', 'priority-fill'] as const)
      expect(orderCandidates(s, [], { now: NOW })).toEqual([]);
  });
});
