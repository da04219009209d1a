import test from "ava";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf, replayResponse, requestFingerprint } from "@berth/kit";
import { UpdateConfigRequestSchema, UpdateConfigResponseSchema } from "@berth/proto/scheduler/v1/scheduler";

const request = (init: { set?: Record<string, string>; unset?: string[]; requestId?: string; app?: string }) =>
  create(UpdateConfigRequestSchema, { app: "shop", requestId: "r1", ...init });

const fingerprintCases: [string, ReturnType<typeof request>, ReturnType<typeof request>, boolean][] = [
  ["the same request", request({ set: { A: "1" } }), request({ set: { A: "1" } }), true],
  ["map entries in another order", request({ set: { A: "1", B: "2" } }), request({ set: { B: "2", A: "1" } }), true],
  ["another request id", request({ set: { A: "1" }, requestId: "r1" }), request({ set: { A: "1" }, requestId: "r2" }), true],
  ["another value", request({ set: { A: "1" } }), request({ set: { A: "2" } }), false],
  ["another app", request({ set: { A: "1" } }), request({ set: { A: "1" }, app: "blog" }), false],
  ["a key set instead of unset", request({ set: { A: "" } }), request({ unset: ["A"] }), false],
];
for (const [title, first, second, same] of fingerprintCases) {
  test(`fingerprint: ${title} ${same ? "matches" : "differs"}`, (t) => {
    t.is(requestFingerprint(UpdateConfigRequestSchema, first) === requestFingerprint(UpdateConfigRequestSchema, second), same);
  });
}

test("a new id has no replay; a retry gets the first response; another request with the id is INVALID_ARGUMENT on request_id", (t) => {
  const first = request({ set: { A: "1" } });
  const fingerprint = requestFingerprint(UpdateConfigRequestSchema, first);
  t.is(replayResponse(UpdateConfigResponseSchema, "r1", fingerprint, undefined), undefined);
  const remembered = { fingerprint, response: toBinary(UpdateConfigResponseSchema, create(UpdateConfigResponseSchema, {})) };
  t.truthy(replayResponse(UpdateConfigResponseSchema, "r1", fingerprint, remembered));
  const other = requestFingerprint(UpdateConfigRequestSchema, request({ set: { A: "2" } }));
  const error = t.throws(() => replayResponse(UpdateConfigResponseSchema, "r1", other, remembered));
  t.is(ConnectError.from(error).code, Code.InvalidArgument);
  t.deepEqual(
    fieldViolationsOf(ConnectError.from(error)).map((violation) => violation.field),
    ["request_id"],
  );
});
