import type { CanaryPolicyValues, Queryable } from "@berth/kit";
import type { TrafficFiguresRecord } from "./traffic.js";

/** Where a canary stands: its replicas start, it takes a share, it got every request, or it was rolled back. */
export type CanaryStateName = "starting" | "running" | "promoted" | "aborted";

/** How a canary raises its share, as asked for at the deploy (defaults filled in). */
export type CanaryPolicyRecord = CanaryPolicyValues;

/** A canary as stored with its rollout (rollouts.canary): what the controller needs to resume it after a restart. */
export interface CanaryRecord {
  policy: CanaryPolicyRecord;
  state: CanaryStateName;
  currentPercent: number;
  /** When the current share began to be measured (epoch ms); 0 while starting. */
  stepStartedAt: number;
  /** When the canary first took requests (epoch ms), the start of its figures; 0 while starting. */
  runningSince: number;
  byHand: boolean;
  reason: string;
  message: string;
  /** The web types' requests per release from runningSince until it ended. */
  traffic: TrafficFiguresRecord[];
}

/** A new canary, waiting for its replicas. */
export function startingCanary(policy: CanaryPolicyRecord): CanaryRecord {
  return { policy, state: "starting", currentPercent: 0, stepStartedAt: 0, runningSince: 0, byHand: false, reason: "", message: "", traffic: [] };
}

/** Whether the canary still splits traffic (or waits to): the rollout has not moved on to its release or back. */
export function canaryActive(canary: CanaryRecord | null | undefined): canary is CanaryRecord {
  return canary?.state === "starting" || canary?.state === "running";
}

/**
 * Replaces the canary of rollout `id`, only while it is still `expected`
 * (starting or running): the controller and `canary:promote`/`canary:abort`
 * may race, and the first to move it wins. False when it had moved already.
 */
export async function saveCanary(q: Queryable, id: string, expected: CanaryStateName, canary: CanaryRecord): Promise<boolean> {
  const { rowCount } = await q.query("UPDATE rollouts SET canary = $3 WHERE id = $1 AND canary->>'state' = $2", [id, expected, JSON.stringify(canary)]);
  return rowCount === 1;
}

/** The canary of the latest rollout that brought each release of `app` in (or tried to), for releases that came as one. */
export async function releaseCanaries(q: Queryable, app: string): Promise<Map<number, CanaryRecord>> {
  const { rows } = await q.query(
    `SELECT DISTINCT ON (release_version) release_version, canary FROM rollouts
     WHERE app = $1 AND canary IS NOT NULL ORDER BY release_version, started_at DESC`,
    [app],
  );
  return new Map(rows.map((row) => [row.release_version as number, row.canary as CanaryRecord]));
}

/** The app's latest rollout that began as a canary (under way or not). */
export async function findLatestCanaryRollout(q: Queryable, app: string): Promise<string | undefined> {
  const { rows } = await q.query("SELECT id FROM rollouts WHERE app = $1 AND canary IS NOT NULL ORDER BY started_at DESC, id LIMIT 1", [app]);
  return rows[0]?.id;
}
