// limits.concurrentCalls: how many calls (proxied or durable) a key has in flight at once, counted
// in this process's memory. Every proxied call shares one upstream pool per provider origin
// (src/api/proxy.ts, 256 sockets): without a per-key cap one key's slow calls fill it and every
// other key waits. A client key without the limit gets DEFAULT_CLIENT_CONCURRENT_CALLS, well under
// the pool; admin keys are unlimited unless their limits say otherwise (the operator's own keys).
// With several API processes behind one port each counts its own calls (up to N × the limit).
import { Counter, Gauge, type Registry } from 'prom-client';
import { LimitExceededError } from '../errors.js';
import type { Principal } from './registry.js';

export const DEFAULT_CLIENT_CONCURRENT_CALLS = 32;

/** Gives the slot back; calling it again does nothing. */
export type ReleaseCall = () => void;

export class ConcurrentCalls {
  private readonly held = new Map<string, number>();
  private total = 0;
  private readonly refused: Counter | undefined;

  constructor(registry?: Registry) {
    if (!registry) return;
    this.refused = new Counter({
      name: 'maestro_proxy_concurrency_refused_total',
      help: 'Calls refused (429) because their key already had limits.concurrentCalls calls in flight in this process',
      registers: [registry],
    });
    const inFlight = () => this.total;
    new Gauge({
      name: 'maestro_proxy_calls_in_flight',
      help: 'Proxied and durable calls holding a limits.concurrentCalls slot in this process now',
      registers: [registry],
      collect() {
        this.set(inFlight()); // read at scrape time: nothing on the hot path
      },
    });
  }

  /** Takes a slot for one call of `p`, or throws 429 `rate_limited` when its calls are at the limit. */
  acquire(p: Principal): ReleaseCall {
    const limit = p.limits.concurrentCalls ?? (p.role === 'client' ? DEFAULT_CLIENT_CONCURRENT_CALLS : undefined);
    const held = this.held.get(p.keyId) ?? 0;
    if (limit !== undefined && held >= limit) {
      this.refused?.inc();
      const which =
        p.limits.concurrentCalls === undefined ? 'the default limits.concurrentCalls of a client key' : 'its limits.concurrentCalls';
      throw new LimitExceededError(
        'rate_limited',
        `Maestro key ${p.keyId} already has ${limit} calls in flight, ${which}; wait for one to finish and try again, ` +
          'or ask an admin for a key with a higher limits.concurrentCalls',
        1,
      );
    }
    this.held.set(p.keyId, held + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.held.get(p.keyId) ?? 1) - 1;
      if (left > 0) this.held.set(p.keyId, left);
      else this.held.delete(p.keyId); // idle keys leave no entry behind
    };
  }
}
