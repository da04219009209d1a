import type { HeldLease } from "@berth/kit";
import { holdLease } from "@berth/kit";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { setCurrentRelease } from "../store/apps.js";
import type { AppRecord } from "../store/apps.js";
import { appKey, rolloutKey } from "../change-feed.js";
import type { StallReport } from "../engine/engine.js";
import { setReleaseFailure, setReleaseStatus } from "../store/releases.js";
import { findActiveRollout, setProgressDeadline, setRolloutState } from "../store/rollouts.js";
import type { RolloutEventFields, RolloutRecord } from "../store/rollouts.js";
import type { ControllerContext } from "./context.js";
import { recordRolloutEvent } from "./rollout-events.js";

/** How a rollout ended. */
export type RolloutOutcome = "succeeded" | "rolled_back" | "failed";

/** What both engines' controllers do alike with rollouts: the lease, the steps, the endings. */
export interface RolloutBookkeeping {
  /** Holds the app's rollout lease (renewed in the background); false when another scheduler holds it. */
  ensureLease(app: string): Promise<boolean>;
  releaseLease(app: string): Promise<void>;
  releaseAllLeases(): Promise<void>;
  /** Records a step of `rollout`, if there is one. */
  event(rollout: RolloutRecord | undefined, kind: RolloutEventKind, fields: RolloutEventFields): Promise<void>;
  /** The release phase is done: the rollout rolls, against a fresh progress deadline. Returns the rollout as it now stands. */
  startRolling(rollout: RolloutRecord): Promise<RolloutRecord | undefined>;
  /** Everything the rollout covers runs its target: it succeeded, or its rollback did. */
  converged(app: AppRecord, rollout: RolloutRecord): Promise<void>;
  /** Ends a rollout; a success makes its release the one that serves. */
  finish(app: AppRecord, rollout: RolloutRecord, outcome: RolloutOutcome, fields: { reason?: string; message: string }): Promise<void>;
  /**
   * The rollout made no progress before its deadline: it rolls back to the
   * last stable release, or fails when there is none (a first deploy, a
   * restart) or when the rollback itself made no progress.
   */
  missedDeadline(app: AppRecord, rollout: RolloutRecord, failure: StallReport): Promise<void>;
}

const DEADLINE_REASON = "PROGRESS_DEADLINE_EXCEEDED";

/** Creates the rollout bookkeeping of one controller. */
export function createRolloutBookkeeping(
  ctx: Pick<ControllerContext, "db" | "feed" | "coordination" | "config" | "logger" | "instanceId" | "queue" | "retention">,
): RolloutBookkeeping {
  const { db, feed, config, logger } = ctx;
  const leases = new Map<string, HeldLease>();
  const leaseName = (app: string) => `scheduler:${config.schema}:rollout:${app}`;

  const bookkeeping: RolloutBookkeeping = {
    async ensureLease(app) {
      const held = leases.get(app);
      if (held !== undefined && !held.signal.aborted) return true;
      const lease = await holdLease({ leases: ctx.coordination.leases, name: leaseName(app), holder: ctx.instanceId, ttlMs: config.leaseTtlMs, logger });
      if (lease === undefined) return false;
      leases.set(app, lease);
      lease.signal.addEventListener("abort", () => {
        if (leases.get(app) === lease) leases.delete(app);
        ctx.queue.enqueue(app);
      });
      return true;
    },

    async releaseLease(app) {
      const held = leases.get(app);
      leases.delete(app);
      await held?.release();
    },

    async releaseAllLeases() {
      await Promise.all([...leases.keys()].map((app) => bookkeeping.releaseLease(app)));
    },

    async event(rollout, kind, fields) {
      if (rollout !== undefined) await recordRolloutEvent(db, feed, rollout.id, kind, fields);
    },

    async startRolling(rollout) {
      await db.transaction(async (tx) => {
        await setRolloutState(tx, rollout.id, "rolling");
        await setReleaseStatus(tx, rollout.app, rollout.releaseVersion, "rolling_out");
        await setProgressDeadline(tx, rollout.id, new Date(Date.now() + config.progressDeadlineMs));
      });
      feed.notify(rolloutKey(rollout.id));
      return findActiveRollout(db, rollout.app);
    },

    async converged(app, rollout) {
      if (rollout.state === "rolling") await bookkeeping.finish(app, rollout, "succeeded", { message: `v${rollout.releaseVersion} serves` });
      else await bookkeeping.finish(app, rollout, "rolled_back", { reason: rollout.reason, message: `rolled back: v${rollout.previousReleaseVersion} serves` });
    },

    async finish(app, rollout, outcome, fields) {
      const kind = {
        succeeded: RolloutEventKind.ROLLOUT_SUCCEEDED,
        rolled_back: RolloutEventKind.ROLLOUT_ROLLED_BACK,
        failed: RolloutEventKind.ROLLOUT_FAILED,
      }[outcome];
      await db.transaction(async (tx) => {
        await setRolloutState(tx, rollout.id, outcome, { ...fields, finished: true });
        if (outcome === "succeeded") {
          await setReleaseStatus(tx, app.name, rollout.releaseVersion, "succeeded");
          await setCurrentRelease(tx, app.name, rollout.releaseVersion);
        }
        await recordRolloutEvent(tx, undefined, rollout.id, kind, { reason: fields.reason ?? "", message: fields.message });
      });
      logger.info("rollout finished", { app: app.name, rollout: rollout.id, outcome, reason: fields.reason });
      feed.notify(rolloutKey(rollout.id));
      feed.notify(appKey(app.name));
      await bookkeeping.releaseLease(app.name);
      // What the finished rollout left behind the rollback window goes; a failure only costs disk.
      await ctx.retention?.pruneApp(app.name).catch((error: unknown) => logger.warn("could not prune old sources", { app: app.name, error }));
    },

    async missedDeadline(app, rollout, failure) {
      const reason = DEADLINE_REASON;
      const seconds = Math.round(config.progressDeadlineMs / 1000);
      if (rollout.state === "rolling_back") {
        await bookkeeping.finish(app, rollout, "failed", {
          reason,
          message: `the rollback to v${rollout.previousReleaseVersion} made no progress for ${seconds} s`,
        });
        return;
      }
      const isRestart = rollout.processTypes.length > 0;
      if (isRestart || rollout.previousReleaseVersion === 0) {
        if (!isRestart)
          await setReleaseFailure(db, app.name, rollout.releaseVersion, { status: "failed", reason, message: failure.message, log: failure.logTail });
        await bookkeeping.finish(app, rollout, "failed", { reason, message: failure.message });
        return;
      }
      const message = `${failure.message}; rolling back to v${rollout.previousReleaseVersion}`;
      await db.transaction(async (tx) => {
        await setReleaseFailure(tx, app.name, rollout.releaseVersion, { status: "rolled_back", reason, message: failure.message, log: failure.logTail });
        await setRolloutState(tx, rollout.id, "rolling_back", { reason, message });
        await setProgressDeadline(tx, rollout.id, new Date(Date.now() + config.progressDeadlineMs));
        await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.REPLICA_UNHEALTHY, {
          processType: failure.processType ?? "",
          replica: failure.replica ?? "",
          reason,
          message,
          logTail: failure.logTail,
        });
      });
      logger.warn("rollout missed its progress deadline: rolling back", { app: app.name, rollout: rollout.id, to: rollout.previousReleaseVersion });
      feed.notify(rolloutKey(rollout.id));
      ctx.queue.enqueue(app.name);
    },
  };
  return bookkeeping;
}
