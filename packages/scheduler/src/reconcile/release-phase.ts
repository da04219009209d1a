import { RolloutEventKind } from "@berth/proto/type/v1/release";
import type { ReleaseTaskResult, RunningReleaseTask } from "../engine/engine.js";
import { setReleaseFailure, setReleasePhase, setReleaseStatus } from "../store/releases.js";
import type { ReleaseRecord } from "../store/releases.js";
import { setRolloutState } from "../store/rollouts.js";
import type { RolloutRecord } from "../store/rollouts.js";
import { appKey, rolloutKey } from "./context.js";
import type { ControllerContext } from "./context.js";
import { releaseTaskSpecFor } from "./replica-specs.js";
import { recordRolloutEvent } from "./rollout-events.js";

/** Runs the `release` command of each deploy exactly once. */
export interface ReleasePhase {
  /**
   * Moves the release phase of `rollout` on: starts the task, or finds it
   * again after a restart. True once the rollout may roll its replicas.
   */
  advance(rollout: RolloutRecord, release: ReleaseRecord): Promise<boolean>;
  /** Resolves once no task result is being recorded. */
  settled(): Promise<void>;
}

function failureOf(result: ReleaseTaskResult, timeoutMs: number, interrupted: boolean): { reason: string; message: string } {
  if (interrupted) return { reason: "RELEASE_PHASE_INTERRUPTED", message: "the scheduler stopped while starting the release command; it was not run again" };
  if (result.timedOut) return { reason: "RELEASE_PHASE_TIMEOUT", message: `the release command did not finish within ${timeoutMs} ms` };
  if (result.exitCode === null) return { reason: "RELEASE_PHASE_FAILED", message: "the release command was killed" };
  return { reason: "RELEASE_PHASE_FAILED", message: `the release command exited with code ${result.exitCode}` };
}

/**
 * The release phase. Its progress is written before each step (phase
 * "running" before the task starts, the task's handle right after), so that
 * a scheduler that crashed mid-task waits for the same task or, if it cannot
 * know whether the task started, fails the deploy rather than run it twice.
 */
export function createReleasePhase(ctx: ControllerContext): ReleasePhase {
  const inFlight = new Map<string, Promise<void>>();

  async function finish(rollout: RolloutRecord, release: ReleaseRecord, result: ReleaseTaskResult, interrupted = false): Promise<void> {
    const { db, feed } = ctx;
    if (result.exitCode === 0 && !interrupted) {
      await db.transaction(async (tx) => {
        await setReleasePhase(tx, release.app, release.version, "succeeded");
        await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.RELEASE_PHASE_SUCCEEDED, {
          processType: "release",
          message: "the release command succeeded",
          logTail: result.logTail,
        });
      });
    } else {
      const { reason, message } = failureOf(result, ctx.config.releaseTimeoutMs, interrupted);
      await db.transaction(async (tx) => {
        await setReleasePhase(tx, release.app, release.version, "failed");
        await setReleaseFailure(tx, release.app, release.version, { status: "failed", reason, message, log: result.logTail });
        await setRolloutState(tx, rollout.id, "failed", { reason, message, finished: true });
        await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.RELEASE_PHASE_FAILED, {
          processType: "release",
          reason,
          message,
          logTail: result.logTail,
        });
        await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.ROLLOUT_FAILED, {
          reason,
          message: `${message}; v${rollout.previousReleaseVersion || "-"} keeps serving`,
        });
      });
      ctx.logger.warn("release phase failed", { app: release.app, release: release.version, reason });
    }
    feed.notify(rolloutKey(rollout.id));
    feed.notify(appKey(release.app));
  }

  function follow(rollout: RolloutRecord, release: ReleaseRecord, running: RunningReleaseTask): void {
    const done = running.result
      .then((result) => finish(rollout, release, result))
      .catch((error: unknown) => ctx.logger.error("could not record the release phase", { app: release.app, error }))
      .finally(() => {
        inFlight.delete(rollout.id);
        ctx.queue.enqueue(release.app);
      });
    inFlight.set(rollout.id, done);
  }

  return {
    async advance(rollout, release) {
      const { db, engine, feed, config } = ctx;
      switch (release.releasePhase) {
        case "none":
        case "succeeded":
          return true;
        case "failed":
          return false;
        case "pending": {
          const spec = releaseTaskSpecFor(config, release);
          await db.transaction(async (tx) => {
            await setReleasePhase(tx, release.app, release.version, "running");
            await setReleaseStatus(tx, release.app, release.version, "release_phase");
            await setRolloutState(tx, rollout.id, "release_phase");
            await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.RELEASE_PHASE_STARTED, {
              processType: "release",
              message: `running "${spec.command}"`,
            });
          });
          feed.notify(rolloutKey(rollout.id));
          let running: RunningReleaseTask;
          try {
            running = await engine.startReleaseTask(spec);
          } catch (error) {
            await finish(rollout, release, { exitCode: null, timedOut: false, logTail: [`could not start the release command: ${String(error)}`] });
            return false;
          }
          await setReleasePhase(db, release.app, release.version, "running", {
            id: running.runtimeId,
            deadline: new Date(Date.now() + spec.timeoutMs),
          });
          follow(rollout, release, running);
          return false;
        }
        case "running": {
          if (inFlight.has(rollout.id)) return false;
          if (release.releaseTaskId === "") {
            await finish(rollout, release, { exitCode: null, timedOut: false, logTail: [] }, true);
            return false;
          }
          const spec = releaseTaskSpecFor(config, release);
          follow(rollout, release, engine.resumeReleaseTask(spec, release.releaseTaskId, release.releaseTaskDeadline ?? new Date()));
          return false;
        }
      }
    },
    async settled() {
      await Promise.all(inFlight.values());
    },
  };
}
