import type { Queryable } from "@berth/kit";

/** A source archive upload as stored. */
export interface UploadRecord {
  id: string;
  app: string;
  sizeBytes: number;
  sha256: string;
  receivedBytes: number;
  complete: boolean;
  /** Where the archive was unpacked, once complete. */
  sourceDir: string;
}

function toUpload(row: Record<string, any>): UploadRecord {
  return {
    id: row.id,
    app: row.app,
    sizeBytes: Number(row.size_bytes),
    sha256: row.sha256,
    receivedBytes: Number(row.received_bytes),
    complete: row.complete,
    sourceDir: row.source_dir,
  };
}

/** Records a new upload. */
export async function insertUpload(q: Queryable, upload: Pick<UploadRecord, "id" | "app" | "sizeBytes" | "sha256">): Promise<void> {
  await q.query("INSERT INTO source_uploads (id, app, size_bytes, sha256) VALUES ($1, $2, $3, $4)", [upload.id, upload.app, upload.sizeBytes, upload.sha256]);
}

/** One upload. */
export async function findUpload(q: Queryable, id: string): Promise<UploadRecord | undefined> {
  const { rows } = await q.query("SELECT * FROM source_uploads WHERE id = $1", [id]);
  return rows[0] && toUpload(rows[0]);
}

/** Records how many bytes arrived, and where the archive went once complete. */
export async function saveUploadProgress(q: Queryable, id: string, receivedBytes: number, complete: boolean, sourceDir = ""): Promise<void> {
  await q.query("UPDATE source_uploads SET received_bytes = $2, complete = $3, source_dir = $4, updated_at = now() WHERE id = $1", [
    id,
    receivedBytes,
    complete,
    sourceDir,
  ]);
}

/** Forgets an upload (a failed checksum starts over). */
export async function deleteUpload(q: Queryable, id: string): Promise<void> {
  await q.query("DELETE FROM source_uploads WHERE id = $1", [id]);
}

/** Every upload of an app. */
export async function listUploadsOfApp(q: Queryable, app: string): Promise<UploadRecord[]> {
  const { rows } = await q.query("SELECT * FROM source_uploads WHERE app = $1", [app]);
  return rows.map(toUpload);
}

/** Forgets every upload of an app (its files are gone). */
export async function deleteUploadsOfApp(q: Queryable, app: string): Promise<void> {
  await q.query("DELETE FROM source_uploads WHERE app = $1", [app]);
}

/** The unfinished uploads of a team's apps touched since `since`: how many, and the bytes they announced. */
export async function uploadsUnderWay(q: Queryable, team: string, since: Date): Promise<{ count: number; bytes: number }> {
  const { rows } = await q.query(
    `SELECT count(*)::int AS count, coalesce(sum(u.size_bytes), 0)::bigint AS bytes
       FROM source_uploads u JOIN apps a ON a.name = u.app
      WHERE a.team = $1 AND NOT u.complete AND u.updated_at >= $2`,
    [team, since],
  );
  return { count: rows[0].count, bytes: Number(rows[0].bytes) };
}

/** Forgets the uploads untouched since `before`; says for each whether a release runs from its source. */
export async function expireUploads(q: Queryable, before: Date): Promise<{ id: string; sourceDir: string; sourceInUse: boolean }[]> {
  const { rows } = await q.query(
    `DELETE FROM source_uploads u WHERE u.updated_at < $1
     RETURNING u.id, u.source_dir,
       EXISTS (SELECT 1 FROM releases r WHERE r.app = u.app AND u.source_dir <> '' AND r.source_dir = u.source_dir) AS source_in_use`,
    [before],
  );
  return rows.map((row) => ({ id: row.id, sourceDir: row.source_dir, sourceInUse: row.source_in_use }));
}
