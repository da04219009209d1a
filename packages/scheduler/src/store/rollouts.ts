import type { Queryable } from "@berth/kit";
import type { CanaryRecord } from "./canary.js";
import type { TrafficFiguresRecord } from "./traffic.js";

/** Where a rollout stands; rolling_back is shown as ROLLING with the reason set. */
export type RolloutStateName = "pending" | "release_phase" | "rolling" | "rolling_back" | "succeeded" | "failed" | "rolled_back";

/** A rollout as stored. */
export interface RolloutRecord {
  id: string;
  app: string;
  releaseVersion: number;
  previousReleaseVersion: number;
  state: RolloutStateName;
  reason: string;
  message: string;
  startedAt: Date;
  finishedAt: Date | null;
  processTypes: string[];
  progressDeadlineAt: Date | null;
  lastSequence: number;
  /** Whether the figures are final; `traffic` holds them (null for rollouts from before the routers counted). */
  trafficCounted: boolean;
  traffic: TrafficFiguresRecord[] | null;
  /** Set when the rollout began as a canary. */
  canary: CanaryRecord | null;
}

/** One step of a rollout as stored. */
export interface RolloutEventRecord {
  rolloutId: string;
  sequence: number;
  time: Date;
  /** A RolloutEventKind name, e.g. REPLICA_HEALTHY. */
  kind: string;
  processType: string;
  replica: string;
  message: string;
  reason: string;
  logTail: string[];
}

/** The optional details of a rollout step. */
export type RolloutEventFields = Partial<Pick<RolloutEventRecord, "processType" | "replica" | "message" | "reason" | "logTail">>;

function toRollout(row: Record<string, any>): RolloutRecord {
  return {
    id: row.id,
    app: row.app,
    releaseVersion: row.release_version,
    previousReleaseVersion: row.previous_release_version,
    state: row.state,
    reason: row.reason,
    message: row.message,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    processTypes: row.process_types,
    progressDeadlineAt: row.progress_deadline_at,
    lastSequence: row.last_sequence,
    trafficCounted: row.traffic_counted,
    traffic: row.traffic,
    canary: row.canary ?? null,
  };
}

function toEvent(row: Record<string, any>): RolloutEventRecord {
  return {
    rolloutId: row.rollout_id,
    sequence: row.sequence,
    time: row.time,
    kind: row.kind,
    processType: row.process_type,
    replica: row.replica,
    message: row.message,
    reason: row.reason,
    logTail: row.log_tail,
  };
}

/** Starts a rollout; undefined when the app already has one under way. */
export async function insertRollout(
  q: Queryable,
  rollout: Pick<RolloutRecord, "id" | "app" | "releaseVersion" | "previousReleaseVersion" | "state" | "processTypes"> & {
    finished?: boolean;
    message?: string;
    canary?: CanaryRecord;
  },
): Promise<RolloutRecord | undefined> {
  const { rows } = await q.query(
    `INSERT INTO rollouts (id, app, release_version, previous_release_version, state, process_types, finished_at, message, canary)
     VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END, $8, $9)
     ON CONFLICT DO NOTHING RETURNING *`,
    [
      rollout.id,
      rollout.app,
      rollout.releaseVersion,
      rollout.previousReleaseVersion,
      rollout.state,
      JSON.stringify(rollout.processTypes),
      rollout.finished ?? false,
      rollout.message ?? "",
      rollout.canary === undefined ? null : JSON.stringify(rollout.canary),
    ],
  );
  return rows[0] && toRollout(rows[0]);
}

/** One rollout. */
export async function findRollout(q: Queryable, id: string): Promise<RolloutRecord | undefined> {
  const { rows } = await q.query("SELECT * FROM rollouts WHERE id = $1", [id]);
  return rows[0] && toRollout(rows[0]);
}

/** The app's rollout under way, if any. */
export async function findActiveRollout(q: Queryable, app: string): Promise<RolloutRecord | undefined> {
  const { rows } = await q.query("SELECT * FROM rollouts WHERE app = $1 AND finished_at IS NULL", [app]);
  return rows[0] && toRollout(rows[0]);
}

/** The app's rollouts, newest first. */
export async function listRollouts(q: Queryable, app: string, limit: number): Promise<RolloutRecord[]> {
  const { rows } = await q.query("SELECT * FROM rollouts WHERE app = $1 ORDER BY started_at DESC, id LIMIT $2", [app, limit]);
  return rows.map(toRollout);
}

/** Moves a rollout to `state`; a final state also sets finished_at. */
export async function setRolloutState(
  q: Queryable,
  id: string,
  state: RolloutStateName,
  fields: { reason?: string; message?: string; finished?: boolean } = {},
): Promise<void> {
  await q.query(
    `UPDATE rollouts SET state = $2, reason = COALESCE($3, reason), message = COALESCE($4, message),
       finished_at = CASE WHEN $5 THEN now() ELSE finished_at END
     WHERE id = $1`,
    [id, state, fields.reason ?? null, fields.message ?? null, fields.finished ?? false],
  );
}

/** Sets when the rollout fails unless a replica becomes healthy first. */
export async function setProgressDeadline(q: Queryable, id: string, deadline: Date | null): Promise<void> {
  await q.query("UPDATE rollouts SET progress_deadline_at = $2 WHERE id = $1", [id, deadline]);
}

/** Appends a step to a rollout and returns it with its sequence number. */
export async function appendRolloutEvent(
  q: Queryable,
  event: Pick<RolloutEventRecord, "rolloutId" | "kind"> & RolloutEventFields,
): Promise<RolloutEventRecord> {
  const { rows } = await q.query(
    `WITH next AS (UPDATE rollouts SET last_sequence = last_sequence + 1 WHERE id = $1 RETURNING last_sequence)
     INSERT INTO rollout_events (rollout_id, sequence, kind, process_type, replica, message, reason, log_tail)
     SELECT $1, last_sequence, $2, $3, $4, $5, $6, $7 FROM next RETURNING *`,
    [event.rolloutId, event.kind, event.processType ?? "", event.replica ?? "", event.message ?? "", event.reason ?? "", JSON.stringify(event.logTail ?? [])],
  );
  return toEvent(rows[0]);
}

/** The rollout's steps after `afterSequence`, in order. */
export async function listRolloutEvents(q: Queryable, rolloutId: string, afterSequence: number): Promise<RolloutEventRecord[]> {
  const { rows } = await q.query("SELECT * FROM rollout_events WHERE rollout_id = $1 AND sequence > $2 ORDER BY sequence", [rolloutId, afterSequence]);
  return rows.map(toEvent);
}
