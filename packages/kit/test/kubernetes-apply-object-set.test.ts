import test from "ava";
import { KubernetesObjectApi } from "@kubernetes/client-node";
import type { KubernetesObject } from "@kubernetes/client-node";
import { createFakeKubeApi } from "@berth/fake-kube-api";
import { applyObjectSet, labelSelector, objectReference, standardLabels } from "../src/index.js";
import type { PruneScope } from "../src/index.js";

const NAMESPACE = "apps";
const MANAGER = "berth-test";

function configMap(app: string, name: string, data: Record<string, string>, managedBy = MANAGER): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: NAMESPACE, labels: standardLabels({ app, component: name, managedBy }) },
    data,
  };
}

function service(app: string, name: string, port: number): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: NAMESPACE, labels: standardLabels({ app, component: name, managedBy: MANAGER }) },
    spec: { selector: { app: name }, ports: [{ name: "http", port, targetPort: 5000, protocol: "TCP" }] },
  };
}

const scopesOf = (app: string): PruneScope[] =>
  ["ConfigMap", "Service"].map((kind) => ({
    apiVersion: "v1",
    kind,
    namespace: NAMESPACE,
    labelSelector: labelSelector({ "app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": MANAGER }),
  }));

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  // This test plays the cluster's controllers itself (it writes status), so the simulated ones stay off.
  const api = await createFakeKubeApi({ controllers: false });
  t.teardown(() => api.close());
  const client = KubernetesObjectApi.makeApiClient(api.kubeConfig());
  const names = () =>
    api
      .objects({ namespace: NAMESPACE })
      .map((object) => `${object.kind}/${(object.metadata as { name: string }).name}`)
      .sort();
  const versions = () => api.objects({ namespace: NAMESPACE }).map((object) => (object.metadata as { resourceVersion: string }).resourceVersion);
  return { api, client, names, versions };
}

test("an object set is applied; applying it again changes nothing", async (t) => {
  const { api, client, names, versions } = await setup(t);
  const objects = [configMap("shop", "settings", { a: "1" }), service("shop", "shop-web", 80)];
  const first = await applyObjectSet({ client, fieldManager: MANAGER, objects, prune: scopesOf("shop") });
  t.deepEqual(first, { applied: ["ConfigMap/apps/settings", "Service/apps/shop-web"], unchanged: [], pruned: [] });
  t.deepEqual(names(), ["ConfigMap/settings", "Service/shop-web"]);
  t.deepEqual(api.objects({ kind: "Service" })[0]!.spec, {
    selector: { app: "shop-web" },
    ports: [{ name: "http", port: 80, targetPort: 5000, protocol: "TCP" }],
  });

  const before = versions();
  const applies = api.requests.filter((request) => request.verb === "apply").length;
  const second = await applyObjectSet({ client, fieldManager: MANAGER, objects, prune: scopesOf("shop") });
  t.deepEqual(second, { applied: [], unchanged: ["ConfigMap/apps/settings", "Service/apps/shop-web"], pruned: [] });
  t.deepEqual(versions(), before, "no resourceVersion moved");
  t.is(api.requests.filter((request) => request.verb === "apply").length, applies + 2);
});

test("only the objects that changed are reported applied", async (t) => {
  const { client, api } = await setup(t);
  await applyObjectSet({
    client,
    fieldManager: MANAGER,
    objects: [configMap("shop", "settings", { a: "1" }), service("shop", "shop-web", 80)],
    prune: scopesOf("shop"),
  });
  const result = await applyObjectSet({
    client,
    fieldManager: MANAGER,
    objects: [configMap("shop", "settings", { a: "2" }), service("shop", "shop-web", 80)],
    prune: scopesOf("shop"),
  });
  t.deepEqual(result, { applied: ["ConfigMap/apps/settings"], unchanged: ["Service/apps/shop-web"], pruned: [] });
  t.deepEqual(api.objects({ kind: "ConfigMap", name: "settings" })[0]!.data, { a: "2" });
});

test("an object removed from the set is pruned", async (t) => {
  const { client, names } = await setup(t);
  await applyObjectSet({
    client,
    fieldManager: MANAGER,
    objects: [configMap("shop", "settings", {}), service("shop", "shop-web", 80), service("shop", "shop-api-tcp", 5000)],
    prune: scopesOf("shop"),
  });
  const result = await applyObjectSet({ client, fieldManager: MANAGER, objects: [configMap("shop", "settings", {})], prune: scopesOf("shop") });
  t.deepEqual(result, { applied: [], unchanged: ["ConfigMap/apps/settings"], pruned: ["Service/apps/shop-api-tcp", "Service/apps/shop-web"] });
  t.deepEqual(names(), ["ConfigMap/settings"]);
  const empty = await applyObjectSet({ client, fieldManager: MANAGER, objects: [], prune: scopesOf("shop") });
  t.deepEqual(empty, { applied: [], unchanged: [], pruned: ["ConfigMap/apps/settings"] });
  t.deepEqual(names(), []);
});

test("objects outside the prune selectors are never pruned", async (t) => {
  const { client, names } = await setup(t);
  // Another app's objects, another manager's, and a kind the scopes do not name.
  await applyObjectSet({ client, fieldManager: MANAGER, objects: [configMap("blog", "blog-settings", {}), service("blog", "blog-web", 80)] });
  await applyObjectSet({ client, fieldManager: "someone-else", objects: [configMap("shop", "handmade", {}, "someone-else")] });
  await applyObjectSet({
    client,
    fieldManager: MANAGER,
    objects: [
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "shop-secret", namespace: NAMESPACE, labels: standardLabels({ app: "shop", component: "secret", managedBy: MANAGER }) },
      },
    ],
  });
  const result = await applyObjectSet({ client, fieldManager: MANAGER, objects: [], prune: scopesOf("shop") });
  t.deepEqual(result, { applied: [], unchanged: [], pruned: [] });
  t.deepEqual(names(), ["ConfigMap/blog-settings", "ConfigMap/handmade", "Secret/shop-secret", "Service/blog-web"]);
});

test("an object the server already holds, outside every prune scope, is still recognised as unchanged", async (t) => {
  const { api } = await setup(t);
  const job = configMap("shop", "one-off", { run: "1" });
  const first = await applyObjectSet({ kubeConfig: api.kubeConfig(), fieldManager: MANAGER, objects: [job] });
  const second = await applyObjectSet({ kubeConfig: api.kubeConfig(), fieldManager: MANAGER, objects: [job] });
  t.deepEqual(first.applied, ["ConfigMap/apps/one-off"]);
  t.deepEqual(second.unchanged, ["ConfigMap/apps/one-off"]);
});

test("a set naming one object twice, or an object without a name, is refused before anything is sent", async (t) => {
  const { api, client } = await setup(t);
  await t.throwsAsync(applyObjectSet({ client, fieldManager: MANAGER, objects: [configMap("shop", "a", {}), configMap("shop", "a", { x: "1" })] }), {
    message: /ConfigMap\/apps\/a appears twice/,
  });
  await t.throwsAsync(
    applyObjectSet({ client, fieldManager: MANAGER, objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { namespace: NAMESPACE } }] }),
    { message: /metadata\.name/ },
  );
  t.deepEqual(api.requests, []);
});

test("an object is named Kind/namespace/name, or Kind/name when cluster-scoped", (t) => {
  t.is(objectReference({ kind: "Deployment", metadata: { name: "web", namespace: "apps" } }), "Deployment/apps/web");
  t.is(objectReference({ kind: "Namespace", metadata: { name: "apps" } }), "Namespace/apps");
});
