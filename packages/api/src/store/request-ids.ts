import type { Queryable, RememberedResponse } from "@berth/kit";

export type { RememberedResponse } from "@berth/kit";

/** Which call a request id belongs to: ids are scoped per owner (team) and method. */
export interface RequestIdKey {
  owner: string;
  method: string;
  requestId: string;
}

/** Client request ids of mutating calls and the responses they got. */
export interface RequestIdsStore {
  find(key: RequestIdKey): Promise<RememberedResponse | undefined>;
  /** Keeps the first response; a concurrent duplicate that lost the race is ignored. */
  remember(key: RequestIdKey, remembered: RememberedResponse): Promise<void>;
  /** Forgets request ids older than `olderThan`. */
  prune(olderThan: Date): Promise<number>;
}

/** Creates the request id store on the API's schema. */
export function createRequestIdsStore(db: Queryable): RequestIdsStore {
  return {
    async find({ owner, method, requestId }) {
      const result = await db.query<{ fingerprint: string; response: Buffer }>(
        "SELECT fingerprint, response FROM request_ids WHERE owner = $1 AND method = $2 AND request_id = $3",
        [owner, method, requestId],
      );
      const row = result.rows[0];
      return row ? { fingerprint: row.fingerprint, response: new Uint8Array(row.response) } : undefined;
    },
    async remember({ owner, method, requestId }, { fingerprint, response }) {
      await db.query(
        `INSERT INTO request_ids (owner, method, request_id, fingerprint, response) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING`,
        [owner, method, requestId, fingerprint, Buffer.from(response)],
      );
    },
    async prune(olderThan) {
      const result = await db.query("DELETE FROM request_ids WHERE created_at < $1", [olderThan]);
      return result.rowCount ?? 0;
    },
  };
}
