import { createHash } from "node:crypto";
import { clone, fromBinary, toJson } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { canonicalJson } from "./canonical-json.js";
import { invalidArgument } from "./errors.js";

/**
 * How long a client request id is remembered. A retry comes within seconds
 * or minutes; after a day the id is forgotten and may be used again.
 */
export const REQUEST_ID_RETENTION_MS = 24 * 60 * 60 * 1000;

/** The first answer to a request id, kept so that a retry gets it again. */
export interface RememberedResponse {
  /** requestFingerprint of the request that got it. */
  fingerprint: string;
  response: Uint8Array;
}

/**
 * What tells two requests apart: a hash of the request's canonical JSON
 * without its request id. A retry of the same request has the same
 * fingerprint whatever order its map fields were written in.
 */
export function requestFingerprint<S extends DescMessage>(schema: S, request: MessageShape<S> & { requestId: string }): string {
  const withoutId = clone(schema, request) as MessageShape<S> & { requestId: string };
  withoutId.requestId = "";
  return createHash("sha256")
    .update(canonicalJson(toJson(schema, withoutId)))
    .digest("hex");
}

/**
 * The answer for a request whose id was seen before: the first response,
 * when the request is the same; INVALID_ARGUMENT naming `request_id` when
 * the id was used for a different request. Undefined for a new id.
 */
export function replayResponse<S extends DescMessage>(
  schema: S,
  requestId: string,
  fingerprint: string,
  remembered: RememberedResponse | undefined,
): MessageShape<S> | undefined {
  if (remembered === undefined) return undefined;
  if (remembered.fingerprint !== fingerprint) throw invalidArgument("request_id", `"${requestId}" was already used for a different request`);
  return fromBinary(schema, remembered.response);
}
