import type { Queryable } from "@berth/kit";

/** An app as stored. */
export interface AppRecord {
  name: string;
  team: string;
  createdAt: Date;
  /** The release that serves (0 before the first successful rollout). */
  currentReleaseVersion: number;
  /** The newest release made, whatever became of it. */
  latestReleaseVersion: number;
  config: Record<string, string>;
  deleting: boolean;
}

const COLUMNS = "name, team, created_at, current_release_version, latest_release_version, config, deleting";

function toApp(row: Record<string, any>): AppRecord {
  return {
    name: row.name,
    team: row.team,
    createdAt: row.created_at,
    currentReleaseVersion: row.current_release_version,
    latestReleaseVersion: row.latest_release_version,
    config: row.config,
    deleting: row.deleting,
  };
}

/** Inserts an app; undefined when the name is taken. */
export async function insertApp(q: Queryable, name: string, team: string): Promise<AppRecord | undefined> {
  const { rows } = await q.query(`INSERT INTO apps (name, team) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING ${COLUMNS}`, [name, team]);
  return rows[0] && toApp(rows[0]);
}

/** The app called `name`; `forUpdate` locks its row until the transaction ends. */
export async function findApp(q: Queryable, name: string, forUpdate = false): Promise<AppRecord | undefined> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM apps WHERE name = $1${forUpdate ? " FOR UPDATE" : ""}`, [name]);
  return rows[0] && toApp(rows[0]);
}

/** Every app, or a team's, by name. */
export async function listApps(q: Queryable, team = ""): Promise<AppRecord[]> {
  const { rows } = await q.query(`SELECT ${COLUMNS} FROM apps WHERE $1 = '' OR team = $1 ORDER BY name`, [team]);
  return rows.map(toApp);
}

/** Records a new release number and returns it. */
export async function nextReleaseVersion(q: Queryable, app: string): Promise<number> {
  const { rows } = await q.query("UPDATE apps SET latest_release_version = latest_release_version + 1 WHERE name = $1 RETURNING latest_release_version", [app]);
  return rows[0].latest_release_version;
}

/** Marks `version` as the release that serves the app. */
export async function setCurrentRelease(q: Queryable, app: string, version: number): Promise<void> {
  await q.query("UPDATE apps SET current_release_version = $2 WHERE name = $1", [app, version]);
}

/** Replaces the app's config vars. */
export async function setAppConfig(q: Queryable, app: string, config: Record<string, string>): Promise<void> {
  await q.query("UPDATE apps SET config = $2 WHERE name = $1", [app, JSON.stringify(config)]);
}

/** Marks the app for deletion (its processes stop, then it is forgotten); false when it already was. */
export async function markAppDeleting(q: Queryable, app: string): Promise<boolean> {
  const { rowCount } = await q.query("UPDATE apps SET deleting = true WHERE name = $1 AND NOT deleting", [app]);
  return rowCount === 1;
}

/** Forgets the app and everything it owns. */
export async function deleteApp(q: Queryable, app: string): Promise<void> {
  await q.query("DELETE FROM apps WHERE name = $1", [app]);
}

/**
 * The process types every app other than `except` has or is rolling out to
 * (its current and its latest release), with `fallback` for an app without
 * a release yet.
 */
export async function listOtherAppsProcessTypes(q: Queryable, except: string, fallback: readonly string[]): Promise<{ app: string; processTypes: string[] }[]> {
  const { rows } = await q.query(
    `SELECT a.name, r.processes FROM apps a
       LEFT JOIN releases r ON r.app = a.name AND r.version IN (a.current_release_version, a.latest_release_version)
      WHERE a.name <> $1`,
    [except],
  );
  const types = new Map<string, Set<string>>();
  for (const row of rows) {
    const set = types.get(row.name) ?? new Set<string>();
    types.set(row.name, set);
    const processes: { processType: string }[] | null = row.processes;
    for (const processType of processes === null ? fallback : processes.map((process) => process.processType)) set.add(processType);
  }
  return [...types].map(([app, set]) => ({ app, processTypes: [...set] }));
}
