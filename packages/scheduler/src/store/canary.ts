import { routingClassOf } from "@berth/kit";
import type { CanaryPolicyValues, Queryable } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { trafficBetween } from "./traffic.js";
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
  /** When it was promoted or aborted (epoch ms); 0 while it runs. */
  endedAt: number;
  /** The web types' requests per release from runningSince until endedAt. */
  traffic: TrafficFiguresRecord[];
  /**
   * Whether traffic covers the whole window: "counting" until every router
   * that served during it reported past endedAt, "partial" when one had not
   * by the settle timeout.
   */
  trafficState: CanaryTrafficStateName;
}

/** How final a canary's figures are. */
export type CanaryTrafficStateName = "counting" | "complete" | "partial";

/** A new canary, waiting for its replicas. */
export function startingCanary(policy: CanaryPolicyRecord): CanaryRecord {
  return {
    policy,
    state: "starting",
    currentPercent: 0,
    stepStartedAt: 0,
    runningSince: 0,
    byHand: false,
    reason: "",
    message: "",
    endedAt: 0,
    traffic: [],
    trafficState: "counting",
  };
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

/** A canary that ended and whose figures wait for the routers' reports past its end. */
export interface UncountedCanary {
  id: string;
  app: string;
  canary: CanaryRecord;
  /** Every router that served during its window reported past its end. */
  reported: boolean;
  /** It ended more than the settle timeout ago. */
  timedOut: boolean;
}

/**
 * Ended canaries whose figures are still counting. A router is waited for
 * when it reported during the canary's window, or within `liveMs` (its
 * report covering the window may be on its way), and has not reported past
 * the end; once `settleTimeoutMs` passed, none is.
 */
export async function uncountedCanaries(q: Queryable, liveMs: number, settleTimeoutMs: number): Promise<UncountedCanary[]> {
  const { rows } = await q.query(
    `SELECT r.id, r.app, r.canary,
       NOT EXISTS (SELECT 1 FROM traffic_consumers c
                   WHERE c.reported_until < w.ended_at
                     AND (c.reported_until > w.running_since
                          OR c.last_report_at > now() - make_interval(secs => $1::double precision / 1000))) AS reported,
       w.ended_at < now() - make_interval(secs => $2::double precision / 1000) AS timed_out
     FROM rollouts r,
       LATERAL (SELECT to_timestamp((r.canary->>'endedAt')::double precision / 1000) AS ended_at,
                       to_timestamp((r.canary->>'runningSince')::double precision / 1000) AS running_since) w
     WHERE r.canary->>'trafficState' = 'counting' AND r.canary->>'state' IN ('promoted', 'aborted')`,
    [liveMs, settleTimeoutMs],
  );
  return rows.map((row) => ({ id: row.id, app: row.app, canary: row.canary as CanaryRecord, reported: row.reported, timedOut: row.timed_out }));
}

/** Makes an ended canary's figures final; false when another scheduler did it first. */
export async function setCanaryTraffic(
  q: Queryable,
  id: string,
  traffic: TrafficFiguresRecord[],
  state: Exclude<CanaryTrafficStateName, "counting">,
): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE rollouts SET canary = canary || jsonb_build_object('traffic', $2::jsonb, 'trafficState', $3::text)
     WHERE id = $1 AND canary->>'trafficState' = 'counting'`,
    [id, JSON.stringify(traffic), state],
  );
  return rowCount === 1;
}

/** What the routers reported for `app`'s web types per release between two instants (epoch ms): a canary's figures. */
export async function canaryTraffic(q: Queryable, app: string, from: number, to: number): Promise<TrafficFiguresRecord[]> {
  const figures = await trafficBetween(q, app, new Date(from), new Date(to));
  return figures.filter((entry) => routingClassOf(entry.processType) === RoutingClass.WEB);
}
