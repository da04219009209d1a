import { performance } from "node:perf_hooks";
import type { Leases } from "./coordination.js";
import { checkLeaseArguments, requireNonEmpty } from "./coordination-arguments.js";

/** Leases in this process's memory, plus a sweep that forgets expired ones. */
export interface InProcessLeases {
  leases: Leases;
  sweep(): void;
}

interface Lease {
  holder: string;
  expiresAt: number;
}

/** Leases that expire on the monotonic clock, so wall-clock jumps neither extend nor cut them. */
export function createInProcessLeases(): InProcessLeases {
  const held = new Map<string, Lease>();
  const current = (name: string): Lease | undefined => {
    const lease = held.get(name);
    if (lease && lease.expiresAt <= performance.now()) {
      held.delete(name);
      return undefined;
    }
    return lease;
  };
  const leases: Leases = {
    async acquire(name, holder, ttlMs) {
      checkLeaseArguments(name, holder, ttlMs);
      const lease = current(name);
      if (lease && lease.holder !== holder) return false;
      held.set(name, { holder, expiresAt: performance.now() + ttlMs });
      return true;
    },
    async renew(name, holder, ttlMs) {
      checkLeaseArguments(name, holder, ttlMs);
      const lease = current(name);
      if (lease?.holder !== holder) return false;
      lease.expiresAt = performance.now() + ttlMs;
      return true;
    },
    async release(name, holder) {
      checkLeaseArguments(name, holder);
      if (current(name)?.holder !== holder) return false;
      held.delete(name);
      return true;
    },
    async holder(name) {
      requireNonEmpty("name", name);
      return current(name)?.holder;
    },
  };
  const sweep = () => {
    for (const name of held.keys()) current(name);
  };
  return { leases, sweep };
}
