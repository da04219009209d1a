import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { createFieldChecks, fieldViolationsOf } from "@berth/kit";
import type { FieldChecks } from "@berth/kit";
import { findRouteCollision } from "../src/route-hostnames.js";
import type { ReleaseRequestFields } from "../src/services/request-checks.js";
import { checkConfigChange, checkReleaseRequest, consumerProblem, processesFrom } from "../src/services/request-checks.js";

/** The fields a check names, in order. */
function fields(check: (checks: FieldChecks) => void): string[] {
  const checks = createFieldChecks();
  check(checks);
  return checks.violations.map((violation) => violation.field);
}

const releaseCases: [string, "local" | "kubernetes", ReleaseRequestFields, string[]][] = [
  ["a local release of an upload", "local", { requestId: "", description: "", commit: "", source: { case: "sourceUploadId", value: "u1" } }, []],
  [
    "a local release of an image",
    "local",
    { requestId: "", description: "", commit: "", source: { case: "image", value: "nginx:1" } },
    // Not a bad field: the handler refuses it with FAILED_PRECONDITION.
    [],
  ],
  [
    "a kubernetes release of an image",
    "kubernetes",
    { requestId: "r", description: "", commit: "", source: { case: "image", value: "registry.example/shop:v1" } },
    [],
  ],
  [
    "a kubernetes release of an upload",
    "kubernetes",
    { requestId: "", description: "", commit: "", source: { case: "sourceUploadId", value: "u1" } },
    ["artifact.image"],
  ],
  [
    "a kubernetes release of a bad image",
    "kubernetes",
    { requestId: "", description: "", commit: "", source: { case: "image", value: "Bad Image" } },
    ["artifact.image"],
  ],
  ["a release without an artifact", "local", { requestId: "", description: "", commit: "", source: undefined }, ["artifact.source_upload_id"]],
  [
    "a release of a pushed commit",
    "local",
    { requestId: "", description: "", commit: "0123456789abcdef0123456789abcdef01234567", source: { case: "sourceUploadId", value: "u1" } },
    [],
  ],
  [
    "an abbreviated commit",
    "local",
    { requestId: "", description: "", commit: "0123456", source: { case: "sourceUploadId", value: "u1" } },
    ["artifact.commit"],
  ],
  [
    "a long request id and description",
    "local",
    { requestId: "r".repeat(129), description: "d".repeat(1001), commit: "", source: { case: "sourceUploadId", value: "u1" } },
    ["request_id", "description"],
  ],
];
for (const [title, engine, request, expected] of releaseCases) {
  test(`release request: ${title} -> [${expected.join(", ")}]`, (t) => {
    t.deepEqual(
      fields((checks) => checkReleaseRequest(checks, engine, request)),
      expected,
    );
  });
}

const configCases: [string, Record<string, string>, string[], string[]][] = [
  ["plain keys", { DATABASE_URL: "postgres://x", A_1: "" }, ["OLD"], []],
  ["a platform key", { PORT: "80" }, ["BERTH_APP"], ['set["PORT"]', "unset[0]"]],
  ["a key starting with a digit", { "1A": "x" }, [], ['set["1A"]']],
  ["a value over 32 KiB", { BIG: "x".repeat(32 * 1024 + 1) }, [], ['set["BIG"]']],
  ["a key set and unset at once", { A: "1" }, ["B", "A"], ["unset[1]"]],
];
for (const [title, set, unset, expected] of configCases) {
  test(`config change: ${title} -> [${expected.join(", ")}]`, (t) => {
    t.deepEqual(
      fields((checks) => checkConfigChange(checks, set, unset)),
      expected,
    );
  });
}

const procfileCases: [string, string, string[] | RegExp][] = [
  ["web and worker", "web: node web.js\nworker: node worker.js\n", ["web", "worker"]],
  ["a tcp type whose internal hostname fits", "api-tcp: node tcp.js\n", ["api-tcp"]],
  ["a tcp type whose internal hostname is too long", `${"x".repeat(55)}-tcp: node tcp.js\n`, /longer than 63 characters/],
  ["a line without a command", "web:\n", /./],
  // "shop-" and the name before "-web": at most 63 characters.
  ["a web type whose platform hostname label fits", `${"y".repeat(58)}-web: node web.js\n`, [`${"y".repeat(58)}-web`]],
  ["a web type whose platform hostname label is too long", `${"y".repeat(59)}-web: node web.js\n`, /platform hostname of .* longer than 63 characters/],
];
for (const [title, procfile, expected] of procfileCases) {
  test(`procfile: ${title}`, (t) => {
    if (Array.isArray(expected)) {
      t.deepEqual(
        processesFrom("shop", procfile).map((process) => process.processType),
        expected,
      );
      return;
    }
    const error = t.throws(() => processesFrom("shop", procfile));
    t.is(ConnectError.from(error).code, Code.InvalidArgument);
    const violations = fieldViolationsOf(ConnectError.from(error));
    t.true(violations.length > 0 && violations.every((violation) => violation.field === "procfile"));
    t.regex(violations[0]!.description, expected);
  });
}

const consumerCases: [string, boolean][] = [
  ["", false],
  ["router-1", true],
  ["r".repeat(128), true],
  ["r".repeat(129), false],
];
for (const [consumer, ok] of consumerCases) {
  test(`consumer name of ${consumer.length} characters is ${ok ? "accepted" : "refused"}`, (t) => {
    t.is(consumerProblem(consumer) === undefined, ok);
  });
}

const collisionCases: [string, string, string[], { app: string; processTypes: string[] }[], string | undefined][] = [
  ["app a's b-web against app a-b's web", "a", ["web", "b-web"], [{ app: "a-b", processTypes: ["web"] }], "a-b"],
  ["app a-b's web against app a's b-web", "a-b", ["web"], [{ app: "a", processTypes: ["web", "b-web"] }], "a-b"],
  ["app a's b-web against app a-b's worker only", "a", ["b-web"], [{ app: "a-b", processTypes: ["worker"] }], undefined],
  [
    "tcp and workers claim no hostname",
    "a",
    ["b-tcp", "worker"],
    [
      { app: "a-b-tcp", processTypes: ["web"] },
      { app: "a-worker", processTypes: ["web"] },
    ],
    undefined,
  ],
  [
    "distinct names",
    "shop",
    ["web", "admin-web"],
    [
      { app: "shop-api", processTypes: ["web"] },
      { app: "blog", processTypes: ["admin-web"] },
    ],
    undefined,
  ],
];
for (const [title, app, processTypes, others, label] of collisionCases) {
  test(`route hostnames: ${title} -> ${label ?? "no collision"}`, (t) => {
    t.is(findRouteCollision(app, processTypes, others)?.label, label);
  });
}
