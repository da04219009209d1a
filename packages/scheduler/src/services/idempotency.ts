import { toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Database, Queryable } from "@berth/kit";
import { replayResponse, requestFingerprint } from "@berth/kit";
import { findRequestResponse, saveRequestResponse } from "../store/request-ids.js";

/** A mutating request that may carry a client request id. */
export interface IdempotentRequest<Req extends DescMessage, Res extends DescMessage> {
  /** Ids are unique within a scope, e.g. `CreateRelease:<app>`. */
  scope: string;
  requestSchema: Req;
  request: MessageShape<Req> & { requestId: string };
  responseSchema: Res;
}

/**
 * Runs `fn` once per request id: a retry of the same request gets the first
 * response back; the same id with a different request is INVALID_ARGUMENT.
 * The response is remembered in the transaction that made the change.
 */
export async function runOnce<Req extends DescMessage, Res extends DescMessage>(
  db: Database,
  call: IdempotentRequest<Req, Res>,
  fn: (tx: Queryable) => Promise<MessageShape<Res>>,
): Promise<MessageShape<Res>> {
  const { scope, request, responseSchema } = call;
  const requestId = request.requestId;
  const fingerprint = requestFingerprint(call.requestSchema, request);
  const replay = async () =>
    requestId === "" ? undefined : replayResponse(responseSchema, requestId, fingerprint, await findRequestResponse(db, scope, requestId));
  const earlier = await replay();
  if (earlier !== undefined) return earlier;
  try {
    return await db.transaction(async (tx) => {
      const response = await fn(tx);
      if (requestId !== "") await saveRequestResponse(tx, scope, requestId, { fingerprint, response: toBinary(responseSchema, response) });
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
