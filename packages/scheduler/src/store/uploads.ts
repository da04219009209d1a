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
  await q.query("UPDATE source_uploads SET received_bytes = $2, complete = $3, source_dir = $4 WHERE id = $1", [id, receivedBytes, complete, sourceDir]);
}

/** Forgets an upload (a failed checksum starts over). */
export async function deleteUpload(q: Queryable, id: string): Promise<void> {
  await q.query("DELETE FROM source_uploads WHERE id = $1", [id]);
}
