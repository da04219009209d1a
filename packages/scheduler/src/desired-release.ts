import type { AppRecord } from "./store/apps.js";
import { canaryActive } from "./store/canary.js";
import type { RolloutRecord } from "./store/rollouts.js";

/**
 * The release an app should run now (0: none): the rollout's, the
 * rollback's, or the current one. During a canary the current one still
 * does: the canary's replicas run beside it.
 */
export function desiredReleaseVersion(app: AppRecord, rollout: RolloutRecord | undefined): number {
  if (app.deleting) return 0;
  if (rollout?.state === "rolling" && canaryActive(rollout.canary)) return rollout.previousReleaseVersion;
  if (rollout?.state === "rolling") return rollout.releaseVersion;
  if (rollout?.state === "rolling_back") return rollout.previousReleaseVersion;
  return app.currentReleaseVersion;
}
