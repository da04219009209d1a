import type { RouteTableChange, Target, Upstream } from "../route-table.js";
import { UpstreamPool } from "./upstream-pool.js";

/** Options of createUpstreamPools. */
export interface UpstreamPoolsOptions {
  /** Idle keep-alive connections to replicas are closed after this long (below the replicas' own timeout). */
  idleTimeoutMs: number;
  /** A removed replica's open WebSockets are closed after this long (until the scheduler says otherwise). */
  drainTimeoutMs: number;
  /** Called when removed replicas have no request in flight left (open WebSockets aside). */
  onDrained(replicas: string[]): void;
}

/** The connection pools of every replica, with drain tracking. */
export interface UpstreamPools {
  /** The pool of a replica (created on first use). */
  get(upstream: Upstream): UpstreamPool;
  /**
   * Picks a replica of `target`: the less busy of two at random, skipping the
   * ones in `exclude` and, while others are left, the ones that just refused.
   */
  pick(target: Target, exclude?: ReadonlySet<string>): UpstreamPool | undefined;
  /** Starts draining removed replicas and revives returning ones. */
  apply(change: RouteTableChange): void;
  /** Replicas still draining. */
  draining(): string[];
  /** The drain timeout of replicas removed from now on (the scheduler's). */
  setDrainTimeout(ms: number): void;
  close(): void;
}

/** Creates the pools. */
export function createUpstreamPools(options: UpstreamPoolsOptions): UpstreamPools {
  const pools = new Map<string, UpstreamPool>();
  const drainTimers = new Map<string, NodeJS.Timeout>();
  let drainTimeoutMs = options.drainTimeoutMs;
  const sweeper = setInterval(
    () => {
      for (const pool of pools.values()) pool.sweep();
    },
    Math.max(250, options.idleTimeoutMs / 2),
  );
  sweeper.unref();

  function get(upstream: Upstream): UpstreamPool {
    let pool = pools.get(upstream.id);
    if (!pool) {
      pool = new UpstreamPool(upstream, options.idleTimeoutMs);
      pools.set(upstream.id, pool);
    }
    return pool;
  }

  function usable(upstream: Upstream, exclude: ReadonlySet<string> | undefined, now: number): boolean {
    if (exclude?.has(upstream.id)) return false;
    const pool = pools.get(upstream.id);
    return !pool || pool.refusedUntil <= now;
  }

  return {
    get,

    pick(target, exclude) {
      const upstreams = target.upstreams;
      if (upstreams.length === 1) {
        const only = upstreams[0]!;
        return exclude?.has(only.id) ? undefined : get(only);
      }
      const now = Date.now();
      let candidates: readonly Upstream[] = upstreams;
      if (exclude || upstreams.some((upstream) => !usable(upstream, undefined, now))) {
        candidates = upstreams.filter((upstream) => usable(upstream, exclude, now));
        // Every replica refused a moment ago: try them anyway rather than fail.
        if (candidates.length === 0) candidates = exclude ? upstreams.filter((upstream) => !exclude.has(upstream.id)) : upstreams;
      }
      if (candidates.length === 0) return undefined;
      if (candidates.length === 1) return get(candidates[0]!);
      const first = Math.floor(Math.random() * candidates.length);
      let second = Math.floor(Math.random() * (candidates.length - 1));
      if (second >= first) second++;
      const a = get(candidates[first]!);
      const b = get(candidates[second]!);
      return b.busy < a.busy ? b : a;
    },

    apply(change) {
      for (const upstream of change.addedUpstreams) {
        const pool = pools.get(upstream.id);
        if (pool?.retiring) {
          pool.revive();
          clearTimeout(drainTimers.get(upstream.id));
          drainTimers.delete(upstream.id);
        }
      }
      for (const upstream of change.removedUpstreams) {
        const pool = pools.get(upstream.id);
        if (!pool) {
          options.onDrained([upstream.replica]);
          continue;
        }
        const timer = setTimeout(() => pool.abortAll(), drainTimeoutMs);
        timer.unref();
        drainTimers.set(upstream.id, timer);
        pool.retire(
          // The scheduler may now tell the replica to stop: its WebSockets stay open so that it can close them itself.
          () => options.onDrained([upstream.replica]),
          () => {
            clearTimeout(drainTimers.get(upstream.id));
            drainTimers.delete(upstream.id);
            if (pools.get(upstream.id) === pool) pools.delete(upstream.id);
          },
        );
      }
    },

    setDrainTimeout(ms) {
      drainTimeoutMs = ms;
    },

    draining() {
      return [...pools.values()].filter((pool) => pool.retiring).map((pool) => pool.upstream.replica);
    },

    close() {
      clearInterval(sweeper);
      for (const timer of drainTimers.values()) clearTimeout(timer);
      drainTimers.clear();
      for (const pool of pools.values()) pool.close();
      pools.clear();
    },
  };
}
