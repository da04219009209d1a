import type { Queryable } from "@berth/kit";
import type { FormationEntry } from "../formation.js";

/** What a release runs: an image (kubernetes) or an uploaded source archive (local). */
export interface ArtifactRecord {
  image?: string;
  sourceUploadId?: string;
  digest: string;
  /** The git commit the source was archived from (a push), when known. */
  commit?: string;
}

/** Where a release stands. */
export type ReleaseStatusName = "pending" | "release_phase" | "rolling_out" | "succeeded" | "failed" | "rolled_back";

/** The release phase of a release: none when its Procfile has no `release` line. */
export type ReleasePhaseName = "none" | "pending" | "running" | "succeeded" | "failed";

/** The build of a release's source: none when there is nothing to build (or it was built for an earlier release). */
export type BuildPhaseName = "none" | "pending" | "running" | "succeeded" | "failed";

/** A release as stored. */
export interface ReleaseRecord {
  app: string;
  version: number;
  artifact: ArtifactRecord;
  /** The unpacked source (local engine). */
  sourceDir: string;
  processes: { processType: string; command: string }[];
  config: Record<string, string>;
  formation: FormationEntry[];
  description: string;
  status: ReleaseStatusName;
  createdAt: Date;
  rollbackOfVersion: number;
  failureReason: string;
  failureMessage: string;
  failureLog: string[];
  releasePhase: ReleasePhaseName;
  /** The engine's handle of the running release task. */
  releaseTaskId: string;
  releaseTaskDeadline: Date | null;
  buildPhase: BuildPhaseName;
}

/** The fields a new release is made of; without a build phase it has nothing to build. */
export type NewRelease = Pick<
  ReleaseRecord,
  "app" | "version" | "artifact" | "sourceDir" | "processes" | "config" | "formation" | "description" | "rollbackOfVersion" | "releasePhase"
> &
  Partial<Pick<ReleaseRecord, "buildPhase">>;

const COLUMNS =
  "app, version, artifact, source_dir, processes, config, formation, description, status, created_at, rollback_of_version, " +
  "failure_reason, failure_message, failure_log, release_phase, release_task_id, release_task_deadline, build_phase";

function toRelease(row: Record<string, any>): ReleaseRecord {
  return {
    app: row.app,
    version: row.version,
    artifact: row.artifact,
    sourceDir: row.source_dir,
    processes: row.processes,
    config: row.config,
    formation: row.formation,
    description: row.description,
    status: row.status,
    createdAt: row.created_at,
    rollbackOfVersion: row.rollback_of_version,
    failureReason: row.failure_reason,
    failureMessage: row.failure_message,
    failureLog: row.failure_log,
    releasePhase: row.release_phase,
    releaseTaskId: row.release_task_id,
    releaseTaskDeadline: row.release_task_deadline,
    buildPhase: row.build_phase,
  };
}

/** Stores a new release in status pending. */
export async function insertRelease(q: Queryable, release: NewRelease): Promise<ReleaseRecord> {
  const { rows } = await q.query(
    `INSERT INTO releases (app, version, artifact, source_dir, processes, config, formation, description, status, rollback_of_version, release_phase, build_phase)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11) RETURNING ${COLUMNS}`,
    [
      release.app,
      release.version,
      JSON.stringify(release.artifact),
      release.sourceDir,
      JSON.stringify(release.processes),
      JSON.stringify(release.config),
      JSON.stringify(release.formation),
      release.description,
      release.rollbackOfVersion,
      release.releasePhase,
      release.buildPhase ?? "none",
    ],
  );
  return toRelease(rows[0]);
}

/** One release of an app. */
export async function findRelease(q: Queryable, app: string, version: number): Promise<ReleaseRecord | undefined> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM releases WHERE app = $1 AND version = $2`, [app, version]);
  return rows[0] && toRelease(rows[0]);
}

/** Every release of an app, newest first. */
export async function listReleases(q: Queryable, app: string): Promise<ReleaseRecord[]> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM releases WHERE app = $1 ORDER BY version DESC`, [app]);
  return rows.map(toRelease);
}

/**
 * Records the digest an image release's tag turned out to be, once: only a
 * release of an image whose digest was unknown changes (the one fact a
 * release may learn after it was made). True when it did.
 */
export async function pinReleaseDigest(q: Queryable, app: string, version: number, digest: string): Promise<boolean> {
  const result = await q.query(
    `UPDATE releases SET artifact = jsonb_set(artifact, '{digest}', to_jsonb($3::text))
     WHERE app = $1 AND version = $2 AND artifact ? 'image' AND coalesce(artifact->>'digest', '') = ''`,
    [app, version, digest],
  );
  return result.rowCount === 1;
}

/** Sets a release's status. */
export async function setReleaseStatus(q: Queryable, app: string, version: number, status: ReleaseStatusName): Promise<void> {
  await q.query("UPDATE releases SET status = $3 WHERE app = $1 AND version = $2", [app, version, status]);
}

/** Records why a release failed or was rolled back. */
export async function setReleaseFailure(
  q: Queryable,
  app: string,
  version: number,
  failure: { status: ReleaseStatusName; reason: string; message: string; log: string[] },
): Promise<void> {
  await q.query("UPDATE releases SET status = $3, failure_reason = $4, failure_message = $5, failure_log = $6 WHERE app = $1 AND version = $2", [
    app,
    version,
    failure.status,
    failure.reason,
    failure.message,
    JSON.stringify(failure.log),
  ]);
}

/** Moves the release phase on; `task` records the running task so a restart can find it. */
export async function setReleasePhase(
  q: Queryable,
  app: string,
  version: number,
  phase: ReleasePhaseName,
  task?: { id: string; deadline: Date | null },
): Promise<void> {
  await q.query(
    `UPDATE releases SET release_phase = $3,
       release_task_id = COALESCE($4, release_task_id), release_task_deadline = COALESCE($5, release_task_deadline)
     WHERE app = $1 AND version = $2`,
    [app, version, phase, task?.id ?? null, task?.deadline ?? null],
  );
}

/** Moves the build of a release on. */
export async function setBuildPhase(q: Queryable, app: string, version: number, phase: BuildPhaseName): Promise<void> {
  await q.query("UPDATE releases SET build_phase = $3 WHERE app = $1 AND version = $2", [app, version, phase]);
}

/** Whether a release of `app` was already made from `sourceDir` (its build, if any, is done or under way there). */
export async function sourceDirInUse(q: Queryable, app: string, sourceDir: string): Promise<boolean> {
  const { rows } = await q.query("SELECT 1 FROM releases WHERE app = $1 AND source_dir = $2 LIMIT 1", [app, sourceDir]);
  return rows.length > 0;
}

/** Forgets the source directory of these releases (pruned to save disk): a rollback to them is refused. */
export async function forgetReleaseSources(q: Queryable, app: string, versions: number[]): Promise<void> {
  if (versions.length === 0) return;
  await q.query("UPDATE releases SET source_dir = '' WHERE app = $1 AND version = ANY($2::int[])", [app, versions]);
}
