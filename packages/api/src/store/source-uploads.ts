import type { Queryable } from "@berth/kit";

/** Which team's app a source upload was started for. */
export interface SourceUploadOwner {
  team: string;
  app: string;
}

/**
 * Source uploads started through the API. The scheduler knows uploads only
 * by id; the API keeps their owner so that one team can never write to, or
 * deploy, another team's upload.
 */
export interface SourceUploadsStore {
  record(uploadId: string, owner: SourceUploadOwner): Promise<void>;
  ownerOf(uploadId: string): Promise<SourceUploadOwner | undefined>;
  /** Forgets uploads started before `olderThan`. */
  prune(olderThan: Date): Promise<number>;
}

/** Creates the source upload store on the API's schema. */
export function createSourceUploadsStore(db: Queryable): SourceUploadsStore {
  return {
    async record(uploadId, { team, app }) {
      await db.query("INSERT INTO source_uploads (upload_id, team, app) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [uploadId, team, app]);
    },
    async ownerOf(uploadId) {
      const result = await db.query<SourceUploadOwner>("SELECT team, app FROM source_uploads WHERE upload_id = $1", [uploadId]);
      return result.rows[0];
    },
    async prune(olderThan) {
      const result = await db.query("DELETE FROM source_uploads WHERE created_at < $1", [olderThan]);
      return result.rowCount ?? 0;
    },
  };
}
