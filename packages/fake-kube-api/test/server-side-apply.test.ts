import test from "ava";
import { ApiException, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from "@kubernetes/client-node";
import { createFakeKubeApi } from "../src/index.js";

/** Client-node returns model class instances; compare their JSON. */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value));

/** These tests exercise the API machinery alone: no controllers write status or make pods. */
async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const api = await createFakeKubeApi({ controllers: false });
  t.teardown(() => api.close());
  return { api, client: KubernetesObjectApi.makeApiClient(api.kubeConfig()) };
}

function deployment(
  extra: { replicas?: number; labels?: Record<string, string>; env?: { name: string; value: string }[] } = {},
): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "apps", ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: {
      ...(extra.replicas !== undefined ? { replicas: extra.replicas } : {}),
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ name: "web", image: "nginx:1.27", ...(extra.env ? { env: extra.env } : {}) }] },
      },
    },
  };
}

const apply = (client: KubernetesObjectApi, spec: KubernetesObject & Record<string, unknown>, manager: string, force = false) =>
  client.patch(spec, undefined, undefined, manager, force, PatchStrategy.ServerSideApply) as Promise<KubernetesObject & { spec?: any; status?: any }>;

test("apply creates the object (after discovery) and records the manager", async (t) => {
  const { api, client } = await setup(t);
  const created = await apply(client, deployment({ replicas: 2 }), "berth-scheduler");
  t.is(created.metadata?.name, "web");
  t.is(created.metadata?.namespace, "apps");
  t.is(created.metadata?.generation, 1);
  t.truthy(created.metadata?.uid);
  t.is(created.spec.replicas, 2);
  t.true(api.requests.some((r) => r.verb === "discovery" && r.path === "/apis/apps/v1"));
  const [entry] = created.metadata?.managedFields ?? [];
  t.is(entry?.manager, "berth-scheduler");
  t.is(entry?.operation, "Apply");
  t.is(entry?.fieldsType, "FieldsV1");
  const fields = entry?.fieldsV1 as any;
  t.deepEqual(fields["f:spec"]["f:replicas"], {});
  t.deepEqual(fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}'], { ".": {}, "f:image": {}, "f:name": {} });
  t.is(api.requests.find((r) => r.verb === "apply")?.status, 201);
});

test("applying the same configuration twice changes nothing, not even resourceVersion", async (t) => {
  const { api, client } = await setup(t);
  const first = await apply(client, deployment({ replicas: 2 }), "berth-scheduler");
  const second = await apply(client, deployment({ replicas: 2 }), "berth-scheduler");
  t.is(second.metadata?.resourceVersion, first.metadata?.resourceVersion);
  t.is(second.metadata?.generation, 1);
  t.is(api.objects({ kind: "Deployment" }).length, 1);
  const third = await apply(client, deployment({ replicas: 3 }), "berth-scheduler");
  t.not(third.metadata?.resourceVersion, first.metadata?.resourceVersion);
  t.is(third.metadata?.generation, 2);
  t.is(third.spec.replicas, 3);
});

test("a field dropped from a manager's configuration is removed unless another manager owns it", async (t) => {
  const { api, client } = await setup(t);
  await apply(
    client,
    deployment({
      replicas: 2,
      labels: { team: "a", tier: "web" },
      env: [
        { name: "A", value: "1" },
        { name: "B", value: "2" },
      ],
    }),
    "berth-scheduler",
  );
  // Another manager co-owns the tier label by applying the same value.
  await apply(client, { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "apps", labels: { tier: "web" } } }, "ops");
  const after = await apply(client, deployment({ env: [{ name: "A", value: "1" }] }), "berth-scheduler");
  t.is(after.spec.replicas, undefined, "replicas was only owned by berth-scheduler");
  t.deepEqual(after.metadata?.labels, { tier: "web" }, "team goes, tier stays because ops owns it");
  t.deepEqual(plain(after.spec.template.spec.containers[0].env), [{ name: "A", value: "1" }], "list element B leaves, A stays (merged by key)");
  const stored = api.objects({ kind: "Deployment", name: "web" })[0] as any;
  t.deepEqual(stored.spec.template.spec.containers[0].env, [{ name: "A", value: "1" }]);
});

test("changing a field another manager owns is a 409 conflict; force takes it over", async (t) => {
  const { client } = await setup(t);
  await apply(client, deployment({ replicas: 2 }), "berth-scheduler");
  const hpa = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "apps" }, spec: { replicas: 5 } };
  const error = await t.throwsAsync(apply(client, hpa, "autoscaler"), { instanceOf: ApiException });
  t.is((error as ApiException<unknown>).code, 409);
  const status = JSON.parse(String((error as ApiException<string>).body));
  t.is(status.kind, "Status");
  t.is(status.reason, "Conflict");
  t.regex(status.message, /conflict with "berth-scheduler": \.spec\.replicas/);
  t.deepEqual(status.details.causes, [{ reason: "FieldManagerConflict", message: 'conflict with "berth-scheduler"', field: ".spec.replicas" }]);

  // The same value is shared ownership, not a conflict.
  await apply(client, { ...hpa, spec: { replicas: 2 } }, "autoscaler");

  const forced = await apply(client, hpa, "autoscaler", true);
  t.is(forced.spec.replicas, 5);
  const owners = (forced.metadata?.managedFields ?? []).filter((entry) => (entry.fieldsV1 as any)?.["f:spec"]?.["f:replicas"]);
  t.deepEqual(
    owners.map((entry) => entry.manager),
    ["autoscaler"],
  );
  // berth-scheduler no longer owns replicas, so dropping it from its configuration keeps the autoscaler's value.
  const reapplied = await apply(client, deployment(), "berth-scheduler");
  t.is(reapplied.spec.replicas, 5);
});

test("apply without fieldManager is a 400", async (t) => {
  const { api } = await setup(t);
  const response = await fetch(`${api.url}/apis/apps/v1/namespaces/apps/deployments/web`, {
    method: "PATCH",
    headers: { "content-type": "application/apply-patch+yaml" },
    body: JSON.stringify(deployment()),
  });
  t.is(response.status, 400);
  const status = (await response.json()) as any;
  t.is(status.kind, "Status");
  t.is(status.reason, "BadRequest");
  t.is(status.code, 400);
});

test("apply accepts a YAML body", async (t) => {
  const { api } = await setup(t);
  const yaml = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: settings", "data:", "  mode: fast", ""].join("\n");
  const response = await fetch(`${api.url}/api/v1/namespaces/apps/configmaps/settings?fieldManager=kubectl`, {
    method: "PATCH",
    headers: { "content-type": "application/apply-patch+yaml" },
    body: yaml,
  });
  t.is(response.status, 201);
  t.deepEqual(
    api.objects({ kind: "ConfigMap" }).map((o) => o.data),
    [{ mode: "fast" }],
  );
});

test("an update by another client takes ownership of what it changed, without conflict", async (t) => {
  const { client } = await setup(t);
  await apply(client, deployment({ replicas: 2 }), "berth-scheduler");
  const patched = (await client.patch(
    { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "apps" }, spec: { replicas: 4 } } as KubernetesObject,
    undefined,
    undefined,
    "kubectl-scale",
    undefined,
    PatchStrategy.MergePatch,
  )) as any;
  t.is(patched.spec.replicas, 4);
  const update = patched.metadata.managedFields.find((entry: any) => entry.manager === "kubectl-scale");
  t.is(update.operation, "Update");
  t.deepEqual(update.fieldsV1, { "f:spec": { "f:replicas": {} } });
  const error = await t.throwsAsync(apply(client, deployment({ replicas: 2 }), "berth-scheduler"));
  t.is((error as ApiException<unknown>).code, 409);
  t.regex(String((error as ApiException<string>).body), /conflict with \\"kubectl-scale\\" using apps\/v1/);
});

test("apply ignores .status on the main resource and sets it through /status", async (t) => {
  const { api, client } = await setup(t);
  const created = await apply(client, { ...deployment(), status: { replicas: 9 } }, "berth-scheduler");
  t.is(created.status, undefined);
  const response = await fetch(`${api.url}/apis/apps/v1/namespaces/apps/deployments/web/status?fieldManager=controller`, {
    method: "PATCH",
    headers: { "content-type": "application/apply-patch+yaml" },
    body: JSON.stringify({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" }, status: { readyReplicas: 1 } }),
  });
  t.is(response.status, 200);
  const updated = (await response.json()) as any;
  t.deepEqual(updated.status, { readyReplicas: 1 });
  t.is(updated.metadata.generation, 1, "status changes do not bump generation");
  const statusEntry = updated.metadata.managedFields.find((entry: any) => entry.manager === "controller");
  t.is(statusEntry.subresource, "status");
  // Re-applying the spec keeps the status another manager wrote.
  const reapplied = await apply(client, deployment(), "berth-scheduler");
  t.deepEqual(plain(reapplied.status), { readyReplicas: 1 });
});

test("dry-run apply validates and answers without storing", async (t) => {
  const { api, client } = await setup(t);
  const result = (await client.patch(deployment(), undefined, "All", "berth-scheduler", undefined, PatchStrategy.ServerSideApply)) as KubernetesObject;
  t.is(result.metadata?.name, "web");
  t.deepEqual(api.objects({ kind: "Deployment" }), []);
});
