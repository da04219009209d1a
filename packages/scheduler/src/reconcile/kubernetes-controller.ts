import type { Coordination, Database, Logger } from "@berth/kit";
import type { ChangeFeed } from "../change-feed.js";
import type { SchedulerConfig } from "../config.js";
import type { KubernetesDeployer } from "../engine/kubernetes/kubernetes-deployer.js";
import type { AppManifestInput } from "../engine/kubernetes/manifests.js";
import { releaseJobName } from "../engine/kubernetes/manifests.js";
import { deleteApp, findApp, listApps } from "../store/apps.js";
import type { AppRecord } from "../store/apps.js";
import { listAutoscaleRules, listFormation } from "../store/formation.js";
import { findRelease, setReleaseStatus } from "../store/releases.js";
import type { ReleaseRecord } from "../store/releases.js";
import { findActiveRollout, setProgressDeadline, setRolloutState } from "../store/rollouts.js";
import type { RolloutRecord } from "../store/rollouts.js";
import type { AppController } from "./app-controller.js";
import { appKey, rolloutKey } from "./context.js";
import { createReleasePhase } from "./release-phase.js";
import type { ReleaseTaskRunner } from "./release-phase.js";
import { createRolloutBookkeeping } from "./rollout-bookkeeping.js";
import { createWorkQueue } from "./work-queue.js";

/** What the Kubernetes controller is built from. */
export interface KubernetesControllerDeps {
  db: Database;
  deployer: KubernetesDeployer;
  coordination: Coordination;
  feed: ChangeFeed;
  config: SchedulerConfig;
  logger: Logger;
  instanceId: string;
}

/**
 * The rollout controller of the kubernetes engine, level-triggered like the
 * local one: each pass re-reads an app and server-side applies the objects
 * of the release it should run (a no-op when nothing changed). The release
 * phase is a Job that must succeed first (found again, never duplicated,
 * after a restart); the Deployments roll themselves (RollingUpdate, probes)
 * while the controller watches them against the progress deadline, and
 * rolls back by applying the last stable release. The autoscaler is the
 * cluster's HorizontalPodAutoscaler.
 */
export function createKubernetesController(deps: KubernetesControllerDeps): AppController {
  const { db, deployer, feed, config, logger } = deps;
  const queue = createWorkQueue(reconcile, logger, { maxBackoffMs: 30_000 });
  const ctx = { ...deps, queue };
  const bookkeeping = createRolloutBookkeeping(ctx);
  const watching = new Map<string, { controller: AbortController; done: Promise<void> }>();

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
  const runner: ReleaseTaskRunner = { start: (release) => runJob(release), resume: (release, _runtimeId, deadline) => runJob(release, deadline) };
  const releasePhase = createReleasePhase(ctx, runner);

  /** Watches the app's Deployments for the rollout in the background; its outcome enqueues the app again. */
  function watchRollout(app: AppRecord, rollout: RolloutRecord): void {
    if (watching.has(rollout.id)) return;
    const controller = new AbortController();
    const remaining = Math.max(1000, (rollout.progressDeadlineAt?.getTime() ?? Date.now() + config.progressDeadlineMs) - Date.now());
    const done = deployer
      .waitForRollout({ app: app.name, progressDeadlineMs: remaining, signal: controller.signal })
      .then(async (outcome) => {
        if (controller.signal.aborted) return;
        const current = await findActiveRollout(db, app.name);
        if (current?.id !== rollout.id || current.state !== rollout.state) return;
        if (outcome.ok) {
          if (current.state === "rolling") await bookkeeping.finish(app, current, "succeeded", { message: `v${current.releaseVersion} serves` });
          else await bookkeeping.finish(app, current, "rolled_back", { reason: current.reason, message: `rolled back: v${current.previousReleaseVersion} serves` });
        } else {
          await bookkeeping.missedDeadline(app, current, { message: `${outcome.message} (${outcome.pending.join(", ")})`, logTail: [] });
        }
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) logger.error("watching the rollout failed", { app: app.name, rollout: rollout.id, error });
      })
      .finally(() => {
        if (watching.get(rollout.id)?.controller === controller) watching.delete(rollout.id);
        queue.enqueue(app.name);
      });
    watching.set(rollout.id, { controller, done });
  }

  async function reconcile(name: string): Promise<number | undefined> {
    const app = await findApp(db, name);
    if (app === undefined) {
      await bookkeeping.releaseLease(name);
      return undefined;
    }
    let rollout = await findActiveRollout(db, name);
    if (app.deleting) {
      if (rollout !== undefined) await bookkeeping.finish(app, rollout, "failed", { reason: "APP_DELETED", message: "the app is being deleted" });
      await deployer.deleteApp(name);
      await deleteApp(db, name);
      feed.notify(appKey(name));
      logger.info("app deleted", { app: name });
      return undefined;
    }
    if (rollout === undefined) await bookkeeping.releaseLease(name);
    else if (!(await bookkeeping.ensureLease(name))) return Date.now() + config.leaseTtlMs / 3;

    if (rollout !== undefined && (rollout.state === "pending" || rollout.state === "release_phase")) {
      const release = await findRelease(db, name, rollout.releaseVersion);
      if (release === undefined || !(await releasePhase.advance(rollout, release))) return undefined;
      await db.transaction(async (tx) => {
        await setRolloutState(tx, rollout!.id, "rolling");
        await setReleaseStatus(tx, name, rollout!.releaseVersion, "rolling_out");
        await setProgressDeadline(tx, rollout!.id, new Date(Date.now() + config.progressDeadlineMs));
      });
      feed.notify(rolloutKey(rollout.id));
      rollout = await findActiveRollout(db, name);
    }

    let version = app.currentReleaseVersion;
    if (rollout?.state === "rolling") version = rollout.releaseVersion;
    if (rollout?.state === "rolling_back") version = rollout.previousReleaseVersion;
    const target = version > 0 ? await findRelease(db, name, version) : undefined;
    if (target !== undefined) await deployer.applyApp(await manifestInput(app, target));
    else if (rollout === undefined) await deployer.deleteApp(name);
    if (rollout !== undefined && (rollout.state === "rolling" || rollout.state === "rolling_back")) {
      if (target === undefined) await bookkeeping.missedDeadline(app, rollout, { message: `release v${version} is missing`, logTail: [] });
      else watchRollout(app, rollout);
    }
    return undefined;
  }

  return {
    async start() {
      for (const app of await listApps(db)) queue.enqueue(app.name);
    },
    enqueue(app) {
      queue.enqueue(app);
    },
    async recordAppEvent(app, kind, fields) {
      await bookkeeping.event(await findActiveRollout(db, app), kind, fields);
    },
    async close() {
      for (const { controller } of watching.values()) controller.abort();
      await Promise.all([...watching.values()].map(({ done }) => done));
      await queue.close();
      await releasePhase.settled();
      await bookkeeping.releaseAllLeases();
    },
  };
}
