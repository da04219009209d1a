import type { Database } from "@berth/kit";
import { routingClassOf } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { appKey, rolloutKey } from "../change-feed.js";
import type { ChangeFeed } from "../change-feed.js";
import type { SchedulerConfig } from "../config.js";
import { saveCanary } from "../store/canary.js";
import type { CanaryRecord } from "../store/canary.js";
import { setReleaseFailure } from "../store/releases.js";
import { setProgressDeadline, setRolloutState } from "../store/rollouts.js";
import type { RolloutRecord } from "../store/rollouts.js";
import { trafficBetween } from "../store/traffic.js";
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

/** The web types' requests per release since the canary took its first request: what its record keeps. */
async function canaryTraffic(deps: CanaryTransitionDeps, rollout: RolloutRecord, canary: CanaryRecord): Promise<CanaryRecord["traffic"]> {
  if (canary.runningSince === 0) return [];
  const figures = await trafficBetween(deps.db, rollout.app, new Date(canary.runningSince), new Date());
  return figures.filter((entry) => routingClassOf(entry.processType) === RoutingClass.WEB);
}

/**
 * The canary gets every request: its rollout goes on as an ordinary one
 * towards its release (the old replicas drain, the other types roll), with
 * a fresh progress deadline. False when the canary had already moved on.
 */
export async function promoteCanary(deps: CanaryTransitionDeps, rollout: RolloutRecord, canary: CanaryRecord, ending: CanaryEnding): Promise<boolean> {
  const traffic = await canaryTraffic(deps, rollout, canary);
  const promoted = await deps.db.transaction(async (tx) => {
    if (!(await saveCanary(tx, rollout.id, canary.state, { ...canary, state: "promoted", currentPercent: 100, ...ending, traffic }))) return false;
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
  const traffic = await canaryTraffic(deps, rollout, canary);
  const message = `canary aborted: ${ending.message}; v${rollout.previousReleaseVersion} serves`;
  const aborted = await deps.db.transaction(async (tx) => {
    if (!(await saveCanary(tx, rollout.id, canary.state, { ...canary, state: "aborted", ...ending, traffic }))) return false;
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
