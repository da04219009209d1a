import { createHash } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { replayResponse, requestFingerprint } from "@berth/kit";
import type { RequestIdsStore } from "../store/index.js";

/** A mutating request that may carry a client request id. */
export interface IdempotentCall<Req extends DescMessage, Res extends DescMessage> {
  /** The team (or "" for admin calls) the id is scoped to. */
  owner: string;
  /** "AppService/CreateApp": ids are scoped per method too. */
  method: string;
  requestSchema: Req;
  request: MessageShape<Req> & { requestId: string };
  responseSchema: Res;
}

/**
 * The request id passed on to a peer: derived from the owner, method and the
 * client's id, so that two teams choosing the same id never share a result.
 */
export function peerRequestId(owner: string, method: string, requestId: string): string {
  if (requestId === "") return "";
  return createHash("sha256").update(`${owner}\0${method}\0${requestId}`).digest("hex").slice(0, 32);
}

/**
 * Runs a mutating call at most once per client request id: a retry with the
 * same id and the same request gets the first response; the same id with a
 * different request is refused. `run` receives the id to pass to the peer,
 * which makes the peer's own change idempotent even if the API died before
 * remembering the response.
 */
export async function runOnce<Req extends DescMessage, Res extends DescMessage>(
  requestIds: RequestIdsStore,
  call: IdempotentCall<Req, Res>,
  run: (peerRequestId: string) => Promise<MessageInitShape<Res>>,
): Promise<MessageShape<Res>> {
  const { owner, method, request, responseSchema } = call;
  if (request.requestId === "") return create(responseSchema, await run(""));
  const key = { owner, method, requestId: request.requestId };
  const fingerprint = requestFingerprint(call.requestSchema, request);
  const earlier = replayResponse(responseSchema, request.requestId, fingerprint, await requestIds.find(key));
  if (earlier !== undefined) return earlier;
  const response = create(responseSchema, await run(peerRequestId(owner, method, request.requestId)));
  await requestIds.remember(key, { fingerprint, response: toBinary(responseSchema, response) });
  return response;
}
