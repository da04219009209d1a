import type { Database } from "@berth/kit";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { appKey, rolloutKey } from "../change-feed.js";
import type { ChangeFeed } from "../change-feed.js";
import type { SchedulerConfig } from "../config.js";
import { canaryTraffic, saveCanary } from "../store/canary.js";
import type { CanaryRecord } from "../store/canary.js";
import { setReleaseFailure } from "../store/releases.js";
import { setProgressDeadline, setRolloutState } from "../store/rollouts.js";
import type { RolloutRecord } from "../store/rollouts.js";
import { recordRolloutEvent } from "./rollout-events.js";

/** What moving a canary on needs. */
export interface CanaryTransitionDeps {
  db: Database;
  feed: ChangeFeed;
  config: Pick<SchedulerConfig, "progressDeadlineMs">;
}

/** How a canary ends: by its analysis or by hand, why, and in words. */
export interface CanaryEnding {
  byHand: boolean;
  reason: string;
  message: string;
}

/**
 * The canary as it ends: its outcome, and the figures the routers reported
 * for its window so far. Their reports covering its end come later; the
 * traffic ledger completes the figures then (a canary that never took a
 * request has none to wait for).
 */
async function endedCanary(
  deps: CanaryTransitionDeps,
  rollout: RolloutRecord,
  canary: CanaryRecord,
  state: "promoted" | "aborted",
  ending: CanaryEnding,
): Promise<CanaryRecord> {
  const endedAt = Date.now();
  const ended = { ...canary, state, ...ending, endedAt };
  if (canary.runningSince === 0) return { ...ended, traffic: [], trafficState: "complete" };
  return { ...ended, traffic: await canaryTraffic(deps.db, rollout.app, canary.runningSince, endedAt), trafficState: "counting" };
}

/**
 * The canary gets every request: its rollout goes on as an ordinary one
 * towards its release (the old replicas drain, the other types roll), with
 * a fresh progress deadline. False when the canary had already moved on.
 */
export async function promoteCanary(deps: CanaryTransitionDeps, rollout: RolloutRecord, canary: CanaryRecord, ending: CanaryEnding): Promise<boolean> {
  const ended = await endedCanary(deps, rollout, canary, "promoted", ending);
  const promoted = await deps.db.transaction(async (tx) => {
    if (!(await saveCanary(tx, rollout.id, canary.state, { ...ended, currentPercent: 100 }))) return false;
    await setProgressDeadline(tx, rollout.id, new Date(Date.now() + deps.config.progressDeadlineMs));
    await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.CANARY_PROMOTED, { reason: ending.reason, message: ending.message });
    return true;
  });
  if (promoted) deps.feed.notify(rolloutKey(rollout.id));
  return promoted;
}

/**
 * The canary rolls back: its rollout turns to rolling back, so that its
 * replicas leave the endpoints (every request goes to the serving release
 * again) and then stop. False when the canary had already moved on.
 */
export async function abortCanary(deps: CanaryTransitionDeps, rollout: RolloutRecord, canary: CanaryRecord, ending: CanaryEnding): Promise<boolean> {
  const ended = await endedCanary(deps, rollout, canary, "aborted", ending);
  const message = `canary aborted: ${ending.message}; v${rollout.previousReleaseVersion} serves`;
  const aborted = await deps.db.transaction(async (tx) => {
    if (!(await saveCanary(tx, rollout.id, canary.state, ended))) return false;
    await setReleaseFailure(tx, rollout.app, rollout.releaseVersion, { status: "rolled_back", reason: ending.reason, message: ending.message, log: [] });
    await setRolloutState(tx, rollout.id, "rolling_back", { reason: ending.reason, message });
    await setProgressDeadline(tx, rollout.id, new Date(Date.now() + deps.config.progressDeadlineMs));
    await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.CANARY_ABORTED, { reason: ending.reason, message });
    return true;
  });
  if (aborted) {
    deps.feed.notify(rolloutKey(rollout.id));
    deps.feed.notify(appKey(rollout.app));
  }
  return aborted;
}
