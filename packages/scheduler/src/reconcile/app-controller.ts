import { findApp, deleteApp, listApps } from "../store/apps.js";
import { findRelease } from "../store/releases.js";
import type { ReleaseRecord } from "../store/releases.js";
import { findActiveRollout } from "../store/rollouts.js";
import { canaryActive } from "../store/canary.js";
import { appKey } from "../change-feed.js";
import { desiredReleaseVersion } from "../desired-release.js";
import type { ConvergeOutcome } from "../engine/engine.js";
import type { ControllerContext, ControllerDeps } from "./context.js";
import { createBuildPhase } from "../build/build-phase.js";
import { createReleasePhase } from "./release-phase.js";
import { createRolloutBookkeeping } from "./rollout-bookkeeping.js";
import { createCanaryController } from "./canary-controller.js";
import { createWorkQueue } from "./work-queue.js";

/** Drives every app towards its desired release and formation. */
export interface AppController {
  /** Lets the engine take over what a previous run left, then reconciles every app. */
  start(): Promise<void>;
  enqueue(app: string): void;
  /** Stops reconciling; what the engine runs keeps running until it is stopped. */
  close(): Promise<void>;
}

const earliest = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));

/**
 * The rollout controller, one for every engine: level-triggered and
 * event-driven. Engine changes, API calls, acknowledgements and timers only
 * enqueue an app; each pass re-reads the app's state from the database,
 * holds the app's rollout lease while a rollout is under way, builds the
 * source, runs the release phase, moves the rollout to rolling, lets the engine converge
 * towards the release it should run, and ends the rollout when the engine
 * reports it converged (or rolls back when it stalled).
 */
export function createAppController(deps: ControllerDeps): AppController {
  const { db, engine, feed, config, logger } = deps;
  const queue = createWorkQueue(reconcile, logger, { maxBackoffMs: 30_000 });
  const ctx: ControllerContext = { ...deps, queue };
  const buildPhase = createBuildPhase(ctx, engine.buildTasks, engine.logs);
  const releasePhase = createReleasePhase(ctx, engine.releaseTasks);
  const bookkeeping = createRolloutBookkeeping(ctx);
  const canaries = createCanaryController(ctx);

  async function reconcile(name: string): Promise<number | undefined> {
    const app = await findApp(db, name);
    if (app === undefined) {
      await bookkeeping.releaseLease(name);
      return undefined;
    }
    let wakeAt: number | undefined;
    let rollout = await findActiveRollout(db, name);
    if (rollout !== undefined && app.deleting) {
      await bookkeeping.finish(app, rollout, "failed", { reason: "APP_DELETED", message: "the app is being deleted" });
      rollout = undefined;
    }
    if (rollout !== undefined) {
      if (!(await bookkeeping.ensureLease(name))) return Date.now() + config.leaseTtlMs / 3;
      wakeAt = Date.now() + config.leaseTtlMs / 3;
    } else {
      await bookkeeping.releaseLease(name);
    }

    if (rollout !== undefined && (rollout.state === "pending" || rollout.state === "release_phase")) {
      const release = await findRelease(db, name, rollout.releaseVersion);
      if (release === undefined || !(await buildPhase.advance(rollout, release)) || !(await releasePhase.advance(rollout, release))) return wakeAt;
      rollout = await bookkeeping.startRolling(rollout);
    }

    const version = desiredReleaseVersion(app, rollout);
    const target: ReleaseRecord | undefined = version > 0 ? await findRelease(db, name, version) : undefined;
    if (rollout !== undefined && version > 0 && target === undefined) {
      await bookkeeping.missedDeadline(app, rollout, { message: `release v${version} is missing`, logTail: [] });
      return wakeAt;
    }
    const current = rollout;
    const canary = rollout?.state === "rolling" && canaryActive(rollout.canary) ? rollout.canary : undefined;
    const canaryRelease = canary && (await findRelease(db, name, rollout!.releaseVersion));
    const outcome: ConvergeOutcome = await engine.converge({
      app,
      target,
      rollout,
      event: (kind, fields) => bookkeeping.event(current, kind, fields),
      canary: canaryRelease && { release: canaryRelease, percent: canary!.state === "running" ? canary!.currentPercent : 0 },
    });

    if (app.deleting) {
      if (outcome.state !== "converged") return earliest(wakeAt, outcome.wakeAt);
      // Files first: were the scheduler to stop in between, the next pass removes them again.
      await deps.retention?.removeApp(name);
      await deleteApp(db, name);
      await engine.forgetApp(name);
      await buildPhase.forget(name);
      await bookkeeping.releaseLease(name);
      feed.notify(appKey(name));
      logger.info("app deleted", { app: name });
      return undefined;
    }
    if (rollout !== undefined && canary !== undefined) return earliest(earliest(wakeAt, outcome.wakeAt), await canaries.advance(rollout, canary, outcome));
    if (rollout !== undefined && (rollout.state === "rolling" || rollout.state === "rolling_back")) {
      if (outcome.state === "converged") await bookkeeping.converged(app, rollout);
      else if (outcome.state === "stalled") await bookkeeping.missedDeadline(app, rollout, outcome.stall ?? { message: "no progress", logTail: [] });
    }
    return earliest(wakeAt, outcome.wakeAt);
  }

  return {
    async start() {
      await engine.start({
        enqueue: (app) => queue.enqueue(app),
        appChanged: (app) => feed.notify(appKey(app)),
        recordAppEvent: async (app, kind, fields) => bookkeeping.event(await findActiveRollout(db, app), kind, fields),
      });
      for (const app of await listApps(db)) queue.enqueue(app.name);
    },
    enqueue(app) {
      queue.enqueue(app);
    },
    async close() {
      await engine.close();
      await queue.close();
      await buildPhase.settled();
      await releasePhase.settled();
      await bookkeeping.releaseAllLeases();
    },
  };
}
