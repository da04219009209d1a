import type { Database, Logger } from "@berth/kit";
import type { SchedulerConfig } from "../../config.js";
import { findApp } from "../../store/apps.js";
import type { AppRecord } from "../../store/apps.js";
import { listAutoscaleRules, listFormation } from "../../store/formation.js";
import type { ReleaseRecord } from "../../store/releases.js";
import type { RolloutRecord } from "../../store/rollouts.js";
import type { ConvergeOutcome, Engine, EngineHooks, ReleaseTaskRunner } from "../engine.js";
import { createLogHub } from "../log-hub.js";
import type { KubernetesDeployer } from "./kubernetes-deployer.js";
import type { AppManifestInput, AppScope } from "./manifests.js";
import { manifestSettingsFrom, namespaceOf, releaseJobName } from "./manifests.js";

/** What the kubernetes engine is built from. */
export interface KubernetesEngineDeps {
  db: Database;
  deployer: KubernetesDeployer;
  config: SchedulerConfig;
  logger: Logger;
}

/**
 * The kubernetes engine: each pass server-side applies the objects of the
 * release an app should run (a no-op when nothing changed). The release
 * phase is a Job (found again, never duplicated, after a restart); the
 * Deployments roll themselves (RollingUpdate, probes) while the engine
 * watches them against the progress deadline in the background; a rollback
 * is the controller applying the last stable release. The autoscaler is the
 * cluster's HorizontalPodAutoscaler.
 */
export function createKubernetesEngine(deps: KubernetesEngineDeps): Engine {
  const { db, deployer, config, logger } = deps;
  const watching = new Map<string, { controller: AbortController; done: Promise<void> }>();
  // By app: how the watch of its rollout (in a given state) ended, until a pass reports it.
  const outcomes = new Map<string, { key: string; outcome: ConvergeOutcome }>();
  const watchKey = (rollout: RolloutRecord) => `${rollout.id}:${rollout.state}`;
  const scopeOf = (app: AppRecord): AppScope => ({ app: app.name, namespace: namespaceOf(app.team, manifestSettingsFrom(config)) });
  let hooks: EngineHooks | undefined;

  async function manifestInput(app: AppRecord, release: ReleaseRecord): Promise<AppManifestInput> {
    return { team: app.team, release, formation: await listFormation(db, app.name), autoscaleRules: await listAutoscaleRules(db, app.name) };
  }

  const runJob = async (release: ReleaseRecord, deadline?: Date) => {
    const app = await findApp(db, release.app);
    if (app === undefined) throw new Error(`app "${release.app}" is gone`);
    const result = deployer.runReleaseJob(await manifestInput(app, release), deadline ? { deadline } : {});
    return {
      runtimeId: releaseJobName(release.app, release.version),
      result: result.then((outcome) => ({ ...outcome, exitCode: outcome.succeeded ? 0 : outcome.exitCode === 0 ? null : outcome.exitCode })),
    };
  };
  // Applying the Job is idempotent: resuming finds the Job a previous run created.
  const releaseTasks: ReleaseTaskRunner = { start: (release) => runJob(release), resume: (release, _runtimeId, deadline) => runJob(release, deadline) };

  /** Watches the app's Deployments for the rollout in the background; its outcome enqueues the app again. */
  function watchRollout(app: AppRecord, rollout: RolloutRecord): void {
    const key = watchKey(rollout);
    if (watching.has(key)) return;
    const controller = new AbortController();
    const remaining = Math.max(1000, (rollout.progressDeadlineAt?.getTime() ?? Date.now() + config.progressDeadlineMs) - Date.now());
    const done = deployer
      .waitForRollout({ app: app.name, namespace: scopeOf(app).namespace, progressDeadlineMs: remaining, signal: controller.signal })
      .then((outcome) => {
        if (controller.signal.aborted) return;
        outcomes.set(app.name, {
          key,
          outcome: outcome.ok
            ? { state: "converged" }
            : { state: "stalled", stall: { message: `${outcome.message} (${outcome.pending.join(", ")})`, logTail: [] } },
        });
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) logger.error("watching the rollout failed", { app: app.name, rollout: rollout.id, error });
      })
      .finally(() => {
        if (watching.get(key)?.controller === controller) watching.delete(key);
        hooks?.enqueue(app.name);
      });
    watching.set(key, { controller, done });
  }

  return {
    releaseTasks,
    // Pod logs stay with the cluster (kubectl logs); the scheduler keeps none of its own.
    logs: createLogHub({ linesPerReplica: 1, finishedReplicasKept: 0 }),
    async start(engineHooks) {
      hooks = engineHooks;
    },
    async converge({ app, target, rollout }) {
      if (app.deleting) {
        await deployer.deleteApp(scopeOf(app));
        return { state: "converged" };
      }
      if (target !== undefined) await deployer.applyApp(await manifestInput(app, target));
      else if (rollout === undefined) await deployer.deleteApp(scopeOf(app));
      if (rollout === undefined || target === undefined) return { state: "converged" };
      const ended = outcomes.get(app.name);
      if (ended?.key === watchKey(rollout)) {
        outcomes.delete(app.name);
        return ended.outcome;
      }
      watchRollout(app, rollout);
      return { state: "progressing" };
    },
    async forgetApp(app) {
      outcomes.delete(app);
    },
    async close() {
      for (const { controller } of watching.values()) controller.abort();
      await Promise.all([...watching.values()].map(({ done }) => done));
    },
  };
}
