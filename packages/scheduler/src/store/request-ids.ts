import type { Queryable, RememberedResponse } from "@berth/kit";

/** The first response to a request id in `scope`, with the fingerprint of its request. */
export async function findRequestResponse(q: Queryable, scope: string, requestId: string): Promise<RememberedResponse | undefined> {
  const { rows } = await q.query("SELECT fingerprint, response FROM request_ids WHERE scope = $1 AND request_id = $2", [scope, requestId]);
  return rows[0] && { fingerprint: rows[0].fingerprint, response: new Uint8Array(rows[0].response) };
}

/** Remembers the response to a request id, in the transaction that made it. */
export async function saveRequestResponse(q: Queryable, scope: string, requestId: string, remembered: RememberedResponse): Promise<void> {
  await q.query("INSERT INTO request_ids (scope, request_id, fingerprint, response) VALUES ($1, $2, $3, $4)", [
    scope,
    requestId,
    remembered.fingerprint,
    Buffer.from(remembered.response),
  ]);
}

/** Forgets request ids remembered before `olderThan`; returns how many. */
export async function pruneRequestIds(q: Queryable, olderThan: Date): Promise<number> {
  const result = await q.query("DELETE FROM request_ids WHERE created_at < $1", [olderThan]);
  return result.rowCount ?? 0;
}
