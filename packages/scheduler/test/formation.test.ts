import test from "ava";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import { FormationChangeSchema } from "@berth/proto/scheduler/v1/scheduler";
import type { FormationChange } from "@berth/proto/scheduler/v1/scheduler";
import { AutoscaleRuleSchema, HealthCheckSchema, RoutingClass } from "@berth/proto/type/v1/process";
import { applyFormationPatch, effectiveResources, releaseTaskResources, validateAutoscaleRule, validateFormationChanges } from "../src/formation.js";
import type { FormationContext, FormationEntry } from "../src/formation.js";

const context: FormationContext = {
  types: new Map([
    ["web", RoutingClass.WEB],
    ["worker", RoutingClass.WORKER],
    ["release", RoutingClass.RELEASE],
    ["api-tcp", RoutingClass.TCP],
  ]),
  rules: new Map([["worker", create(AutoscaleRuleSchema, { processType: "worker", minReplicas: 1, maxReplicas: 4, targetCpuPercent: 60 })]]),
  maxReplicas: 100,
};

const change = (init: Parameters<typeof create<typeof FormationChangeSchema>>[1]): FormationChange => create(FormationChangeSchema, init);

function violations(t: import("ava").ExecutionContext, changes: FormationChange[]) {
  const error = t.throws(() => validateFormationChanges(changes, context));
  t.is(ConnectError.from(error).code, Code.InvalidArgument);
  return fieldViolationsOf(error);
}

const invalid: [string, FormationChange[], string, RegExp][] = [
  ["an unknown type", [change({ processType: "nope", replicas: 1 })], "changes[0].process_type", /unknown process type "nope"/],
  ["the release type", [change({ processType: "release", replicas: 1 })], "changes[0].process_type", /runs once per deploy/],
  ["replicas -1 (4294967295 as uint32 on the wire)", [change({ processType: "web", replicas: 4294967295 })], "changes[0].replicas", /between 0 and 100/],
  ["size huge-9x", [change({ processType: "web", size: "huge-9x" })], "changes[0].size", /unknown pod size "huge-9x"/],
  ["memoryMb 16", [change({ processType: "web", memoryMb: 16 })], "changes[0].memory_mb", /between 32 and/],
  ["cpuMillis 49", [change({ processType: "web", cpuMillis: 49 })], "changes[0].cpu_millis", /between 50 and/],
  [
    "a type changed twice",
    [change({ processType: "web", replicas: 1 }), change({ processType: "web", replicas: 2 })],
    "changes[1].process_type",
    /changed twice/,
  ],
  ["no changes", [], "changes", /at least one/],
  [
    "a health interval of 5 ms",
    [change({ processType: "web", health: create(HealthCheckSchema, { intervalMs: 5 }) })],
    "changes[0].health.interval_ms",
    /between 100/,
  ],
  [
    "a health path without a slash",
    [change({ processType: "web", health: create(HealthCheckSchema, { path: "health" }) })],
    "changes[0].health.path",
    /start with \//,
  ],
];

for (const [name, changes, field, description] of invalid) {
  test(`refuses ${name} with INVALID_ARGUMENT naming ${field}`, (t) => {
    const found = violations(t, changes).find((v) => v.field === field);
    t.truthy(found, `no violation for ${field}`);
    t.regex(found!.description, description);
  });
}

test("names every bad field of a request at once", (t) => {
  const found = violations(t, [change({ processType: "web", replicas: 1000, size: "huge-9x", memoryMb: 16 })]);
  t.deepEqual(found.map((v) => v.field).sort(), ["changes[0].memory_mb", "changes[0].replicas", "changes[0].size"]);
});

test("manual scaling of an autoscaled type is a FAILED_PRECONDITION naming the rule", (t) => {
  const error = t.throws(() => validateFormationChanges([change({ processType: "worker", replicas: 3 })], context));
  t.is(ConnectError.from(error).code, Code.FailedPrecondition);
  t.regex(ConnectError.from(error).rawMessage, /autoscale rule for "worker" \(min 1, max 4, cpu 60%\)/);
});

test("resizing an autoscaled type is allowed", (t) => {
  const patches = validateFormationChanges([change({ processType: "worker", size: "standard-2x" })], context);
  t.deepEqual(patches[0], { processType: "worker", size: "standard-2x", clearResourceOverrides: false });
});

test("patches apply on top of the entry and overrides can be cleared; new resources roll the type, a scale does not", (t) => {
  const entry: FormationEntry = {
    processType: "web",
    replicas: 1,
    size: "standard-1x",
    cpuMillis: 300,
    memoryMb: null,
    health: { path: "/up" },
    restartGeneration: 0,
  };
  const [resize] = validateFormationChanges(
    [change({ processType: "web", replicas: 3, size: "standard-2x", memoryMb: 700, health: create(HealthCheckSchema, { intervalMs: 200 }) })],
    context,
  );
  const resized = applyFormationPatch(entry, resize!);
  t.deepEqual(resized, { ...entry, replicas: 3, size: "standard-2x", memoryMb: 700, health: { path: "/up", intervalMs: 200 }, restartGeneration: 1 });
  t.deepEqual(effectiveResources(resized), { cpuMillis: 300, memoryMb: 700 });
  const [clear] = validateFormationChanges([change({ processType: "web", clearResourceOverrides: true })], context);
  t.deepEqual(effectiveResources(applyFormationPatch(resized, clear!)), { cpuMillis: 512, memoryMb: 1024 });
  const [scale] = validateFormationChanges([change({ processType: "web", replicas: 5 })], context);
  t.is(applyFormationPatch(resized, scale!).restartGeneration, 1);
});

test("autoscale rules are checked field by field", (t) => {
  const error = t.throws(() =>
    validateAutoscaleRule(create(AutoscaleRuleSchema, { processType: "ghost", minReplicas: 0, maxReplicas: 500, targetCpuPercent: 0 }), context),
  );
  t.deepEqual(
    fieldViolationsOf(error)
      .map((v) => v.field)
      .sort(),
    ["rule.max_replicas", "rule.min_replicas", "rule.process_type", "rule.target_cpu_percent"],
  );
  const rule = create(AutoscaleRuleSchema, { processType: "web", minReplicas: 1, maxReplicas: 3, targetCpuPercent: 50 });
  t.is(validateAutoscaleRule(rule, context), rule);
});

test("the release command runs at the web process's size and overrides, else at the largest type's, else at the default size", (t) => {
  const entry = (processType: string, size: string, memoryMb: number | null = null) => ({ processType, size, cpuMillis: null, memoryMb });
  t.deepEqual(releaseTaskResources([entry("worker", "standard-8x"), entry("web", "standard-2x", 1536)]), { cpuMillis: 512, memoryMb: 1536 });
  t.deepEqual(releaseTaskResources([entry("clock", "standard-1x"), entry("worker", "standard-4x")]), { cpuMillis: 1024, memoryMb: 2048 });
  t.deepEqual(releaseTaskResources([]), { cpuMillis: 256, memoryMb: 512 });
});
