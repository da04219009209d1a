import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "@berth/kit";
import type { KubernetesPolicySettings } from "./compile/kubernetes-policies.js";
import { compileTeamPolicies } from "./compile/kubernetes-policies.js";
import type { PolicyEngine, TeamPlan } from "./engine/kubernetes-policy-engine.js";
import { changedTeams } from "./model-changes.js";
import { teamsOf } from "./policy-model.js";
import type { PolicyModel } from "./policy-model.js";
import type { PolicyState } from "./policy-state.js";

/** Options of startPolicyReconciler. */
export interface PolicyReconcilerOptions {
  state: PolicyState;
  engine: PolicyEngine;
  settings: KubernetesPolicySettings;
  logger: Logger;
  /** Every team is reconciled this often, repairing drift nobody announced. */
  resyncMs: number;
  /** First retry of a failed team, doubling up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
}

/** The running reconciler. */
export interface PolicyReconciler {
  /** Resolves once every team queued so far has been applied (or has failed and is waiting for a retry). */
  settled(): Promise<void>;
  /** What the last reconcile of `team` did. */
  lastPlan(team: string): TeamPlan | undefined;
  close(): Promise<void>;
}

/**
 * Level-triggered: a change only queues the teams it may affect; the worker
 * compiles each queued team from the current model and lets the engine apply
 * the difference. A failed team is retried with backoff; all teams are
 * queued at start and on every resync.
 */
export function startPolicyReconciler(options: PolicyReconcilerOptions): PolicyReconciler {
  const queue = new Set<string>();
  const failures = new Map<string, number>();
  const plans = new Map<string, TeamPlan>();
  const shutdown = new AbortController();
  const retryMs = options.retryMs ?? 500;
  const maxRetryMs = options.maxRetryMs ?? 60_000;
  let wake: (() => void) | undefined;
  let idle: (() => void)[] = [];
  // Teams whose apps all went still need their policies pruned: remember every team ever seen.
  const known = new Set<string>(teamsOf(options.state.current().model));

  const enqueue = (teams: Iterable<string>) => {
    for (const team of teams) {
      known.add(team);
      queue.add(team);
    }
    wake?.();
  };

  let previous: PolicyModel = options.state.current().model;
  const unsubscribe = options.state.subscribe((snapshot) => {
    enqueue(changedTeams(previous, snapshot.model));
    previous = snapshot.model;
  });

  async function reconcile(team: string): Promise<void> {
    try {
      const plan = await options.engine.plan(team, compileTeamPolicies(options.state.current().model, team, options.settings), false);
      plans.set(team, plan);
      failures.delete(team);
      if (plan.touched > 0) options.logger.info("network policies applied", { team, touched: plan.touched });
    } catch (error) {
      const attempt = (failures.get(team) ?? 0) + 1;
      failures.set(team, attempt);
      const delay = Math.min(maxRetryMs, retryMs * 2 ** (attempt - 1));
      options.logger.warn("applying network policies failed; retrying", { team, error, inMs: delay });
      void sleep(delay, undefined, { signal: shutdown.signal }).then(
        () => enqueue([team]),
        () => {},
      );
    }
  }

  const worker = (async () => {
    while (!shutdown.signal.aborted) {
      const team = queue.values().next().value as string | undefined;
      if (team === undefined) {
        for (const resolve of idle) resolve();
        idle = [];
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      queue.delete(team);
      await reconcile(team);
    }
  })();

  enqueue(known);
  const resync = setInterval(() => enqueue(new Set([...known, ...teamsOf(options.state.current().model)])), options.resyncMs);
  resync.unref();

  return {
    settled() {
      if (queue.size === 0 && wake !== undefined) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
    lastPlan: (team) => plans.get(team),
    async close() {
      clearInterval(resync);
      unsubscribe();
      shutdown.abort();
      wake?.();
      await worker;
      for (const resolve of idle) resolve();
    },
  };
}
