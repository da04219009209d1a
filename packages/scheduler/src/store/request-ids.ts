import type { Queryable } from "@berth/kit";

/** The response first given to a request id, or undefined. */
export async function findRequestResponse(q: Queryable, scope: string, requestId: string): Promise<Uint8Array | undefined> {
  const { rows } = await q.query("SELECT response FROM request_ids WHERE scope = $1 AND request_id = $2", [scope, requestId]);
  return rows[0]?.response;
}

/** Remembers the response to a request id, in the transaction that made it. */
export async function saveRequestResponse(q: Queryable, scope: string, requestId: string, response: Uint8Array): Promise<void> {
  await q.query("INSERT INTO request_ids (scope, request_id, response) VALUES ($1, $2, $3)", [scope, requestId, Buffer.from(response)]);
}
