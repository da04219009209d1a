import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Database, Queryable } from "@berth/kit";
import { findRequestResponse, saveRequestResponse } from "../store/request-ids.js";

/** Runs `fn` once per request id: a retry gets the first response back. */
export async function runOnce<S extends DescMessage>(
  db: Database,
  scope: string,
  requestId: string,
  schema: S,
  fn: (tx: Queryable) => Promise<MessageShape<S>>,
): Promise<MessageShape<S>> {
  const replay = async () => {
    const saved = requestId === "" ? undefined : await findRequestResponse(db, scope, requestId);
    return saved && fromBinary(schema, saved);
  };
  const earlier = await replay();
  if (earlier !== undefined) return earlier;
  try {
    return await db.transaction(async (tx) => {
      const response = await fn(tx);
      if (requestId !== "") await saveRequestResponse(tx, scope, requestId, toBinary(schema, response));
      return response;
    });
  } catch (error) {
    // A concurrent retry with the same id committed first: answer as it did.
    if ((error as { code?: string }).code === "23505") {
      const raced = await replay();
      if (raced !== undefined) return raced;
    }
    throw error;
  }
}
