import type { Queryable } from "@berth/kit";
import { ReplicaState } from "@berth/proto/type/v1/process";

/** How far a replica's retirement got: it leaves the endpoints, drains, then stops. */
export type RetirePhase = "" | "unrouted" | "draining" | "stopping";

/** A replica as stored. */
export interface ReplicaRecord {
  name: string;
  app: string;
  processType: string;
  index: number;
  releaseVersion: number;
  restartGeneration: number;
  state: ReplicaState;
  ready: boolean;
  restarts: number;
  startedAt: Date | null;
  zone: string;
  host: string;
  port: number;
  runtimeId: string;
  /** `container` (runc), `none` (plain processes) or empty (kubernetes). */
  isolation: string;
  /** Why its last run ended when the runtime knows more than the exit code (`OOMKilled`). */
  lastExitReason: string;
  retirePhase: RetirePhase;
  retireReason: string;
  /** The endpoint generation without this replica; consumers must ack it before the replica is signalled. */
  retireGeneration: number;
  retirePhaseSince: Date | null;
  /** `*-rtc` only: the route token its BERTH_RTC_HOSTNAME was made with; empty for other types. */
  rtcRouteToken: string;
  createdAt: Date;
}

function toReplica(row: Record<string, any>): ReplicaRecord {
  return {
    name: row.name,
    app: row.app,
    processType: row.process_type,
    index: row.replica_index,
    releaseVersion: row.release_version,
    restartGeneration: row.restart_generation,
    state: ReplicaState[row.state as keyof typeof ReplicaState] ?? ReplicaState.UNSPECIFIED,
    ready: row.ready,
    restarts: row.restarts,
    startedAt: row.started_at,
    zone: row.zone,
    host: row.host,
    port: row.port,
    runtimeId: row.runtime_id,
    isolation: row.isolation,
    lastExitReason: row.last_exit_reason,
    retirePhase: row.retire_phase,
    retireReason: row.retire_reason,
    retireGeneration: Number(row.retire_generation),
    retirePhaseSince: row.retire_phase_since,
    rtcRouteToken: row.rtc_route_token,
    createdAt: row.created_at,
  };
}

/** Records a replica about to be started. */
export async function insertReplica(
  q: Queryable,
  replica: Pick<ReplicaRecord, "name" | "app" | "processType" | "index" | "releaseVersion" | "restartGeneration" | "zone">,
): Promise<void> {
  await q.query(
    `INSERT INTO replicas (name, app, process_type, replica_index, release_version, restart_generation, zone, state)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'STARTING')`,
    [replica.name, replica.app, replica.processType, replica.index, replica.releaseVersion, replica.restartGeneration, replica.zone],
  );
}

/** The app's replicas (every app's when `app` is empty), by type and index. */
export async function listReplicas(q: Queryable, app = ""): Promise<ReplicaRecord[]> {
  const { rows } = await q.query("SELECT * FROM replicas WHERE $1 = '' OR app = $1 ORDER BY app, process_type, replica_index, created_at", [app]);
  return rows.map(toReplica);
}

/** One replica. */
export async function findReplica(q: Queryable, name: string): Promise<ReplicaRecord | undefined> {
  const { rows } = await q.query("SELECT * FROM replicas WHERE name = $1", [name]);
  return rows[0] && toReplica(rows[0]);
}

/** Records what the engine reports about a replica. */
export async function saveReplicaStatus(
  q: Queryable,
  status: Pick<ReplicaRecord, "name" | "state" | "ready" | "restarts" | "startedAt" | "host" | "port" | "runtimeId"> &
    Partial<Pick<ReplicaRecord, "isolation" | "lastExitReason">>,
): Promise<void> {
  await q.query(
    `UPDATE replicas SET state = $2, ready = $3, restarts = $4, started_at = $5, host = $6, port = $7, runtime_id = $8,
       isolation = COALESCE($9, isolation), last_exit_reason = COALESCE($10, last_exit_reason) WHERE name = $1`,
    [
      status.name,
      ReplicaState[status.state],
      status.ready,
      status.restarts,
      status.startedAt,
      status.host,
      status.port,
      status.runtimeId,
      status.isolation ?? null,
      status.lastExitReason ?? null,
    ],
  );
}

/** Records the route token an rtc replica's hostname was made with, before it starts. */
export async function saveRtcRouteToken(q: Queryable, name: string, routeToken: string): Promise<void> {
  await q.query("UPDATE replicas SET rtc_route_token = $2 WHERE name = $1", [name, routeToken]);
}

/** Moves a replica's retirement on; from its first phase on it is DRAINING and no longer ready. */
export async function setRetirePhase(q: Queryable, name: string, phase: RetirePhase, fields: { reason?: string; generation?: number } = {}): Promise<void> {
  await q.query(
    `UPDATE replicas SET retire_phase = $2, retire_phase_since = now(),
       retire_reason = COALESCE($3, retire_reason), retire_generation = COALESCE($4, retire_generation),
       ready = false, state = CASE WHEN state IN ('STOPPING', 'STOPPED') THEN state ELSE 'DRAINING' END
     WHERE name = $1`,
    [name, phase, fields.reason ?? null, fields.generation ?? null],
  );
}

/** Forgets a replica that has stopped. */
export async function deleteReplica(q: Queryable, name: string): Promise<void> {
  await q.query("DELETE FROM replicas WHERE name = $1", [name]);
}

/** Records the endpoint generation that no longer holds the app's newly unrouted replicas. */
export async function stampRetireGeneration(q: Queryable, app: string, generation: number): Promise<void> {
  await q.query("UPDATE replicas SET retire_generation = $2 WHERE app = $1 AND retire_phase = 'unrouted' AND retire_generation = 0", [app, generation]);
}

/** A replica as a cluster reports it: everything but the local engine's retirement bookkeeping. */
export type ObservedReplica = Pick<
  ReplicaRecord,
  | "name"
  | "app"
  | "processType"
  | "index"
  | "releaseVersion"
  | "restartGeneration"
  | "state"
  | "ready"
  | "restarts"
  | "startedAt"
  | "zone"
  | "host"
  | "port"
  | "runtimeId"
  | "isolation"
  | "lastExitReason"
  | "createdAt"
>;

/** Records a replica as a cluster reports it (a pod on Kubernetes): inserted when new, else updated in place. */
export async function saveObservedReplica(q: Queryable, replica: ObservedReplica): Promise<void> {
  await q.query(
    `INSERT INTO replicas (name, app, process_type, replica_index, release_version, restart_generation, state, ready, restarts, started_at,
       zone, host, port, runtime_id, isolation, last_exit_reason, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
     ON CONFLICT (name) DO UPDATE SET replica_index = $4, release_version = $5, restart_generation = $6, state = $7, ready = $8, restarts = $9,
       started_at = $10, zone = $11, host = $12, port = $13, runtime_id = $14, isolation = $15, last_exit_reason = $16`,
    [
      replica.name,
      replica.app,
      replica.processType,
      replica.index,
      replica.releaseVersion,
      replica.restartGeneration,
      ReplicaState[replica.state],
      replica.ready,
      replica.restarts,
      replica.startedAt,
      replica.zone,
      replica.host,
      replica.port,
      replica.runtimeId,
      replica.isolation,
      replica.lastExitReason,
      replica.createdAt,
    ],
  );
}
