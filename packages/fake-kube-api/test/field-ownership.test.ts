import test from "ava";
import { fromFieldsV1, toFieldsV1 } from "../src/field-set.js";
import type { JsonObject } from "../src/patch.js";
import { applyConfiguration, recordUpdate, type ManagedFieldsEntry } from "../src/server-side-apply.js";
import { StatusError } from "../src/status.js";

const scope = { statusSubresource: true };
const request = (manager: string, force = false) => ({ manager, apiVersion: "apps/v1", now: "2024-01-01T00:00:00Z", scope, force });
const base = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "apps" } };
const podTemplate = (containers: JsonObject[]) => ({ ...base, spec: { template: { spec: { containers } } } });
const containersOf = (object: JsonObject) => ((object.spec as any).template.spec.containers as JsonObject[]).map((c) => c.name);
const managersOf = (object: JsonObject) => ((object.metadata as any).managedFields as ManagedFieldsEntry[]).map((e) => `${e.manager}/${e.operation}`);

test("fieldsV1 round-trips, with '.' marking members that have children", (t) => {
  const tree = {
    "f:metadata": { "f:labels": { ".": {}, "f:app": {} } },
    "f:spec": { "f:template": { "f:spec": { "f:containers": { 'k:{"name":"web"}': { ".": {}, "f:image": {}, "f:name": {} } } } } },
  };
  const set = fromFieldsV1(tree);
  t.is(set.size, 5);
  t.deepEqual(toFieldsV1(set), tree);
});

test("two appliers share a keyed list; each removes only its own element", (t) => {
  let live = applyConfiguration(undefined, podTemplate([{ name: "web", image: "nginx" }]), request("scheduler"));
  live = applyConfiguration(live, podTemplate([{ name: "proxy", image: "envoy" }]), request("injector"));
  t.deepEqual(containersOf(live), ["web", "proxy"]);
  live = applyConfiguration(live, podTemplate([{ name: "web", image: "nginx:2" }]), request("scheduler"));
  t.deepEqual(containersOf(live), ["web", "proxy"]);
  live = applyConfiguration(live, { ...base, spec: { paused: true } }, request("injector"));
  t.deepEqual(containersOf(live), ["web"]);
  t.deepEqual(managersOf(live), ["scheduler/Apply", "injector/Apply"]);
});

test("finalizers are a set: appliers add and remove their own values", (t) => {
  const withFinalizers = (finalizers: string[]) => ({ ...base, metadata: { ...base.metadata, finalizers } });
  let live = applyConfiguration(undefined, withFinalizers(["a"]), request("one"));
  live = applyConfiguration(live, withFinalizers(["b"]), request("two"));
  t.deepEqual((live.metadata as any).finalizers, ["a", "b"]);
  live = applyConfiguration(live, withFinalizers([]), request("one"));
  t.deepEqual((live.metadata as any).finalizers, ["b"]);
});

test("an atomic list is owned whole: a different value from another applier conflicts", (t) => {
  const withArgs = (args: string[]) => podTemplate([{ name: "web", args }]);
  const live = applyConfiguration(undefined, withArgs(["--a"]), request("one"));
  const error = t.throws(() => applyConfiguration(live, withArgs(["--b"]), request("two")), { instanceOf: StatusError });
  t.is(error?.code, 409);
  t.is(error?.status.details?.causes?.[0]?.field, '.spec.template.spec.containers[name="web"].args');
  const forced = applyConfiguration(live, withArgs(["--b"]), request("two", true));
  t.deepEqual(((forced.spec as any).template.spec.containers[0] as JsonObject).args, ["--b"]);
});

test("an update takes the fields it changed; removed fields leave every manager", (t) => {
  const applied = applyConfiguration(undefined, { ...base, metadata: { ...base.metadata, labels: { a: "1", b: "2" } } }, request("one"));
  const updated = recordUpdate(
    applied,
    { ...applied, metadata: { ...(applied.metadata as JsonObject), labels: { a: "9" } } },
    { manager: "kubectl", apiVersion: "apps/v1", now: "2024-01-02T00:00:00Z", scope },
  );
  const entries = (updated.metadata as any).managedFields as ManagedFieldsEntry[];
  t.deepEqual(
    entries.map((e) => [e.manager, e.operation, e.fieldsV1]),
    [["kubectl", "Update", { "f:metadata": { "f:labels": { "f:a": {} } } }]],
    "one no longer owns a (taken) nor b (removed), so its entry disappears",
  );
  t.is(entries[0]!.time, "2024-01-02T00:00:00Z");
});
