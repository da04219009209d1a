import { RolloutEventKind } from "@berth/proto/type/v1/release";
import type { ReleaseTaskResult, ReleaseTaskRunner, RunningReleaseTask } from "../engine/engine.js";
import { setReleaseFailure, setReleasePhase, setReleaseStatus } from "../store/releases.js";
import type { ReleaseRecord } from "../store/releases.js";
import { setRolloutState } from "../store/rollouts.js";
import type { RolloutRecord } from "../store/rollouts.js";
import { appKey, rolloutKey } from "../change-feed.js";
import type { ControllerContext } from "./context.js";
import { commandOf } from "../release-commands.js";
import { recordRolloutEvent } from "./rollout-events.js";

/** What the release phase works with. */
export type ReleasePhaseContext = Pick<ControllerContext, "db" | "feed" | "config" | "logger" | "queue">;

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

function failureOf(result: ReleaseTaskResult, timeoutMs: number): { reason: string; message: string } {
  if (result.message !== undefined) return { reason: result.timedOut ? "RELEASE_PHASE_TIMEOUT" : "RELEASE_PHASE_FAILED", message: result.message };
  if (result.timedOut) return { reason: "RELEASE_PHASE_TIMEOUT", message: `the release command did not finish within ${timeoutMs} ms` };
  if (result.exitCode === null) return { reason: "RELEASE_PHASE_FAILED", message: "the release command was killed" };
  return { reason: "RELEASE_PHASE_FAILED", message: `the release command exited with code ${result.exitCode}` };
}

/**
 * The release phase. The phase is marked "running" before the task starts
 * and the task's handle recorded right after; a scheduler that crashed
 * mid-task asks the engine for the same task by name and waits for it, and
 * starts it only when the engine knows it never started.
 */
export function createReleasePhase(ctx: ReleasePhaseContext, runner: ReleaseTaskRunner): ReleasePhase {
  const inFlight = new Map<string, Promise<void>>();

  async function finish(rollout: RolloutRecord, release: ReleaseRecord, result: ReleaseTaskResult): Promise<void> {
    const { db, feed } = ctx;
    if (result.exitCode === 0) {
      await db.transaction(async (tx) => {
        await setReleasePhase(tx, release.app, release.version, "succeeded");
        await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.RELEASE_PHASE_SUCCEEDED, {
          processType: "release",
          message: "the release command succeeded",
          logTail: result.logTail,
        });
      });
    } else {
      const { reason, message } = failureOf(result, ctx.config.releaseTimeoutMs);
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

  /** Starts the task; the phase is already "running" in the database, so a crash from here on never runs it twice. */
  async function start(rollout: RolloutRecord, release: ReleaseRecord): Promise<void> {
    let running: RunningReleaseTask;
    try {
      running = await runner.start(release);
    } catch (error) {
      await finish(rollout, release, { exitCode: null, timedOut: false, logTail: [`could not start the release command: ${String(error)}`] });
      return;
    }
    await setReleasePhase(ctx.db, release.app, release.version, "running", {
      id: running.runtimeId,
      deadline: new Date(Date.now() + ctx.config.releaseTimeoutMs),
    });
    follow(rollout, release, running);
  }

  return {
    async advance(rollout, release) {
      const { db, feed, config } = ctx;
      switch (release.releasePhase) {
        case "none":
        case "succeeded":
          return true;
        case "failed":
          return false;
        case "pending": {
          await db.transaction(async (tx) => {
            await setReleasePhase(tx, release.app, release.version, "running");
            await setReleaseStatus(tx, release.app, release.version, "release_phase");
            await setRolloutState(tx, rollout.id, "release_phase");
            await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.RELEASE_PHASE_STARTED, {
              processType: "release",
              message: `running "${commandOf(release, "release") ?? ""}"`,
            });
          });
          feed.notify(rolloutKey(rollout.id));
          await start(rollout, release);
          return false;
        }
        case "running": {
          if (inFlight.has(rollout.id)) return false;
          const deadline = release.releaseTaskDeadline ?? new Date(Date.now() + config.releaseTimeoutMs);
          const resumed = await runner.resume(release, release.releaseTaskId, deadline);
          if (resumed === undefined) await start(rollout, release);
          else follow(rollout, release, resumed);
          return false;
        }
      }
    },
    async settled() {
      await Promise.all(inFlight.values());
    },
  };
}
