import test from "ava";
import { type ApiException, AppsV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1Deployment } from "@kubernetes/client-node";
import { createFakeKubeApi, type FakeKubeApiOptions } from "../src/index.js";

/** Client-node returns model class instances; compare their JSON. */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value));

/** These tests exercise the API machinery alone: no controllers write status or make pods. */
async function setup(t: { teardown(fn: () => Promise<void>): void }, options?: FakeKubeApiOptions) {
  const api = await createFakeKubeApi({ controllers: false, ...options });
  t.teardown(() => api.close());
  const kubeConfig = api.kubeConfig();
  return { api, apps: kubeConfig.makeApiClient(AppsV1Api), core: kubeConfig.makeApiClient(CoreV1Api), custom: kubeConfig.makeApiClient(CustomObjectsApi) };
}

function deployment(name: string, labels: Record<string, string> = {}): V1Deployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, labels },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image: "nginx:1.27" }] } },
    },
  };
}

async function apiError(t: { throwsAsync: (p: Promise<unknown>) => Promise<unknown> }, promise: Promise<unknown>) {
  const error = (await t.throwsAsync(promise)) as ApiException<unknown>;
  const body = typeof error.body === "string" ? JSON.parse(error.body) : error.body;
  return { code: error.code, status: body as { kind: string; reason: string; message: string; code: number } };
}

test("create, get, list, replace and delete a Deployment through AppsV1Api", async (t) => {
  const { apps, api } = await setup(t);
  const created = await apps.createNamespacedDeployment({ namespace: "apps", body: deployment("web") });
  t.is(created.metadata?.namespace, "apps", "namespace defaults from the path");
  t.is(created.metadata?.generation, 1);
  t.regex(created.metadata?.resourceVersion ?? "", /^\d+$/);
  t.true(created.metadata?.creationTimestamp instanceof Date);

  const read = await apps.readNamespacedDeployment({ namespace: "apps", name: "web" });
  t.is(read.metadata?.uid, created.metadata?.uid);

  const list = await apps.listNamespacedDeployment({ namespace: "apps" });
  t.is(list.kind, "DeploymentList");
  t.deepEqual(
    list.items.map((d) => d.metadata?.name),
    ["web"],
  );
  t.regex(list.metadata?.resourceVersion ?? "", /^\d+$/);

  read.spec!.replicas = 3;
  const replaced = await apps.replaceNamespacedDeployment({ namespace: "apps", name: "web", body: read });
  t.is(replaced.spec?.replicas, 3);
  t.is(replaced.metadata?.generation, 2, "a spec change bumps generation");
  t.true(Number(replaced.metadata?.resourceVersion) > Number(created.metadata?.resourceVersion));

  const deleted = await apps.deleteNamespacedDeployment({ namespace: "apps", name: "web" });
  t.is(deleted.status, "Success");
  t.deepEqual(api.objects({ kind: "Deployment" }), []);
  t.deepEqual(
    api.requests.filter((r) => r.path.startsWith("/apis/apps/v1")).map((r) => `${r.verb} ${r.status}`),
    ["create 201", "get 200", "list 200", "update 200", "delete 200"],
  );
});

test("a missing object is a 404 Status that client-node raises as ApiException", async (t) => {
  const { apps, core } = await setup(t);
  const { code, status } = await apiError(t, apps.readNamespacedDeployment({ namespace: "apps", name: "nope" }));
  t.is(code, 404);
  t.is(status.kind, "Status");
  t.is(status.reason, "NotFound");
  t.is(status.message, 'deployments.apps "nope" not found');
  t.is((await apiError(t, core.deleteNamespacedConfigMap({ namespace: "apps", name: "nope" }))).code, 404);
  t.is((await apiError(t, core.readNamespace({ name: "nope" }))).status.message, 'namespaces "nope" not found');
});

test("creating an existing object is a 409 AlreadyExists", async (t) => {
  const { apps } = await setup(t);
  await apps.createNamespacedDeployment({ namespace: "apps", body: deployment("web") });
  const { code, status } = await apiError(t, apps.createNamespacedDeployment({ namespace: "apps", body: deployment("web") }));
  t.is(code, 409);
  t.is(status.reason, "AlreadyExists");
  // The same name in another namespace is a different object.
  await apps.createNamespacedDeployment({ namespace: "other", body: deployment("web") });
});

test("replacing with a stale resourceVersion is a 409 Conflict", async (t) => {
  const { core } = await setup(t);
  const first = await core.createNamespacedConfigMap({ namespace: "apps", body: { metadata: { name: "settings" }, data: { a: "1" } } });
  await core.replaceNamespacedConfigMap({ namespace: "apps", name: "settings", body: { ...first, data: { a: "2" } } });
  const { code, status } = await apiError(t, core.replaceNamespacedConfigMap({ namespace: "apps", name: "settings", body: { ...first, data: { a: "3" } } }));
  t.is(code, 409);
  t.is(status.reason, "Conflict");
  t.regex(status.message, /the object has been modified/);
  t.deepEqual(plain((await core.readNamespacedConfigMap({ namespace: "apps", name: "settings" })).data), { a: "2" });
});

test("an update that changes nothing keeps the resourceVersion", async (t) => {
  const { core, api } = await setup(t);
  const created = await core.createNamespacedConfigMap({ namespace: "apps", body: { metadata: { name: "settings" }, data: { a: "1" } } });
  const again = await core.replaceNamespacedConfigMap({ namespace: "apps", name: "settings", body: created });
  t.is(again.metadata?.resourceVersion, created.metadata?.resourceVersion);
  const [stored] = api.objects({ name: "settings" });
  t.is((stored?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion, created.metadata?.resourceVersion);
  t.is(api.requests.filter((r) => r.verb === "update").length, 1, "the request still reached the server");
});

test("merge patch, strategic merge patch and JSON patch", async (t) => {
  const { apps } = await setup(t);
  await apps.createNamespacedDeployment({ namespace: "apps", body: deployment("web", { app: "web", tier: "front" }) });
  const merged = await apps.patchNamespacedDeployment(
    { namespace: "apps", name: "web", body: { metadata: { labels: { tier: null, owner: "me" } }, spec: { replicas: 2 } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  t.deepEqual(merged.metadata?.labels, { app: "web", owner: "me" });
  t.is(merged.spec?.replicas, 2);

  const strategic = await apps.patchNamespacedDeployment(
    { namespace: "apps", name: "web", body: { spec: { paused: true, template: { spec: { containers: [{ name: "sidecar", image: "envoy" }] } } } } },
    setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
  );
  t.true(strategic.spec?.paused);
  t.deepEqual(
    strategic.spec?.template.spec?.containers.map((c) => `${c.name}=${c.image}`),
    ["app=nginx:1.27", "sidecar=envoy"],
    "containers merge by name",
  );

  // Typed patch calls default to JSON patch.
  const jsonPatched = await apps.patchNamespacedDeployment({
    namespace: "apps",
    name: "web",
    body: [
      { op: "replace", path: "/spec/replicas", value: 4 },
      { op: "add", path: "/metadata/annotations", value: { "berth.dev/release": "7" } },
      { op: "remove", path: "/metadata/labels/owner" },
    ],
  });
  t.is(jsonPatched.spec?.replicas, 4);
  t.deepEqual(jsonPatched.metadata?.annotations, { "berth.dev/release": "7" });
  t.deepEqual(jsonPatched.metadata?.labels, { app: "web" });

  const failedTest = await apiError(
    t,
    apps.patchNamespacedDeployment({ namespace: "apps", name: "web", body: [{ op: "test", path: "/spec/replicas", value: 1 }] }),
  );
  t.is(failedTest.code, 422);
  const missing = await apiError(
    t,
    apps.patchNamespacedDeployment({ namespace: "apps", name: "nope", body: [{ op: "replace", path: "/spec/replicas", value: 1 }] }),
  );
  t.is(missing.code, 404);
});

test("a patch carrying a stale resourceVersion is a 409 Conflict", async (t) => {
  const { core } = await setup(t);
  const created = await core.createNamespacedConfigMap({ namespace: "apps", body: { metadata: { name: "settings" }, data: { a: "1" } } });
  await core.patchNamespacedConfigMap(
    { namespace: "apps", name: "settings", body: { data: { a: "2" } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  const { code } = await apiError(
    t,
    core.patchNamespacedConfigMap(
      { namespace: "apps", name: "settings", body: { metadata: { resourceVersion: created.metadata?.resourceVersion }, data: { a: "3" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    ),
  );
  t.is(code, 409);
});

test("list with label selectors: =, ==, !=, in, notin, exists and !key", async (t) => {
  const { apps } = await setup(t);
  const labels: Record<string, Record<string, string>> = {
    a: { app: "a", tier: "front", canary: "true" },
    b: { app: "b", tier: "back" },
    c: { app: "c", tier: "front" },
    d: { app: "d" },
  };
  for (const [name, l] of Object.entries(labels)) await apps.createNamespacedDeployment({ namespace: "apps", body: deployment(name, l) });
  const names = async (labelSelector: string) => (await apps.listNamespacedDeployment({ namespace: "apps", labelSelector })).items.map((d) => d.metadata?.name);
  t.deepEqual(await names("tier=front"), ["a", "c"]);
  t.deepEqual(await names("tier==back"), ["b"]);
  t.deepEqual(await names("tier!=front"), ["b", "d"]);
  t.deepEqual(await names("app in (a, d)"), ["a", "d"]);
  t.deepEqual(await names("app notin (a,d)"), ["b", "c"]);
  t.deepEqual(await names("canary"), ["a"]);
  t.deepEqual(await names("!canary,tier"), ["b", "c"]);
  t.deepEqual(await names("tier=front,app!=a"), ["c"]);
  t.deepEqual(await names(""), ["a", "b", "c", "d"]);
  const bad = await apiError(t, apps.listNamespacedDeployment({ namespace: "apps", labelSelector: "app in (a" }));
  t.is(bad.code, 400);
});

test("list across namespaces, with field selectors and pages", async (t) => {
  const { apps, core } = await setup(t);
  await apps.createNamespacedDeployment({ namespace: "one", body: deployment("web") });
  await apps.createNamespacedDeployment({ namespace: "two", body: deployment("web") });
  await apps.createNamespacedDeployment({ namespace: "two", body: deployment("api") });
  const all = await apps.listDeploymentForAllNamespaces({});
  t.deepEqual(
    all.items.map((d) => `${d.metadata?.namespace}/${d.metadata?.name}`),
    ["one/web", "two/api", "two/web"],
  );
  const byName = await apps.listDeploymentForAllNamespaces({ fieldSelector: "metadata.name=web" });
  t.deepEqual(
    byName.items.map((d) => d.metadata?.namespace),
    ["one", "two"],
  );
  const notTwo = await apps.listDeploymentForAllNamespaces({ fieldSelector: "metadata.namespace!=two" });
  t.deepEqual(
    notTwo.items.map((d) => d.metadata?.namespace),
    ["one"],
  );
  t.is((await apiError(t, apps.listDeploymentForAllNamespaces({ fieldSelector: "spec.replicas=1" }))).code, 400);

  const first = await apps.listDeploymentForAllNamespaces({ limit: 2 });
  t.is(first.items.length, 2);
  t.is(first.metadata?.remainingItemCount, 1);
  const second = await apps.listDeploymentForAllNamespaces({ limit: 2, _continue: first.metadata!._continue! });
  t.deepEqual(
    second.items.map((d) => d.metadata?.name),
    ["web"],
  );
  t.is(second.metadata?._continue, undefined);

  const pods = await core.listNamespacedPod({ namespace: "one" });
  t.deepEqual(pods.items, []);
});

test("list items of built-in kinds carry no apiVersion/kind, custom resources do", async (t) => {
  const { api, apps } = await setup(t);
  await apps.createNamespacedDeployment({ namespace: "apps", body: deployment("web") });
  const builtIn = (await (await fetch(`${api.url}/apis/apps/v1/namespaces/apps/deployments`)).json()) as any;
  t.is(builtIn.items[0].kind, undefined);
  await fetch(`${api.url}/apis/cert-manager.io/v1/namespaces/apps/certificates`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ apiVersion: "cert-manager.io/v1", kind: "Certificate", metadata: { name: "tls" }, spec: { secretName: "tls" } }),
  });
  const custom = (await (await fetch(`${api.url}/apis/cert-manager.io/v1/certificates`)).json()) as any;
  t.is(custom.kind, "CertificateList");
  t.is(custom.items[0].kind, "Certificate");
});

test("a schema-invalid Deployment is a 422 Invalid naming the field", async (t) => {
  const { apps, api } = await setup(t);
  const { selector: _selector, ...specWithoutSelector } = deployment("web").spec!;
  const body = { ...deployment("web"), spec: specWithoutSelector } as V1Deployment;
  const { code, status } = await apiError(t, apps.createNamespacedDeployment({ namespace: "apps", body }));
  t.is(code, 422);
  t.is(status.reason, "Invalid");
  t.is(status.message, 'Deployment.apps "web" is invalid: spec.selector: Required value');
  t.deepEqual(api.objects(), []);

  await apps.createNamespacedDeployment({ namespace: "apps", body: deployment("web") });
  const badPatch = await apiError(
    t,
    apps.patchNamespacedDeployment(
      { namespace: "apps", name: "web", body: { spec: { replicas: "three" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    ),
  );
  t.is(badPatch.code, 422);
  t.regex(badPatch.status.message, /spec\.replicas: Invalid value: must be integer/);

  const badName = await apiError(t, apps.createNamespacedDeployment({ namespace: "apps", body: deployment("Web_1") }));
  t.is(badName.code, 422);
  t.regex(badName.status.message, /metadata\.name/);
});

test("cluster-scoped Namespace: create, list, get; deleting it removes what it contains", async (t) => {
  const { core, api } = await setup(t);
  const created = await core.createNamespace({ body: { metadata: { name: "team-a", labels: { team: "a" } } } });
  t.is(created.metadata?.namespace, undefined);
  t.is(created.status?.phase, "Active");
  t.deepEqual(
    (await core.listNamespace({ labelSelector: "team=a" })).items.map((n) => n.metadata?.name),
    ["team-a"],
  );
  await core.createNamespacedSecret({ namespace: "team-a", body: { metadata: { name: "token" }, stringData: { a: "b" } } });
  await core.createNamespacedSecret({ namespace: "team-b", body: { metadata: { name: "token" } } });
  await core.deleteNamespace({ name: "team-a" });
  t.deepEqual(
    api.objects({ kind: "Secret" }).map((s) => (s.metadata as { namespace: string }).namespace),
    ["team-b"],
  );
  const notFound = await fetch(`${api.url}/api/v1/namespaces/team-a/namespaces`);
  t.is(notFound.status, 404);
});

test("requireNamespaces refuses objects in a namespace that does not exist", async (t) => {
  const { core } = await setup(t, { requireNamespaces: true });
  const { code, status } = await apiError(t, core.createNamespacedConfigMap({ namespace: "ghost", body: { metadata: { name: "c" } } }));
  t.is(code, 404);
  t.is(status.message, 'namespaces "ghost" not found');
  await core.createNamespace({ body: { metadata: { name: "ghost" } } });
  await core.createNamespacedConfigMap({ namespace: "ghost", body: { metadata: { name: "c" } } });
});

test("a custom resource (cert-manager Certificate) through CustomObjectsApi", async (t) => {
  const { custom } = await setup(t);
  const body = {
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    metadata: { name: "tls", labels: { app: "web" } },
    spec: { secretName: "web-tls", dnsNames: ["web.example.com"] },
  };
  await custom.createNamespacedCustomObject({ group: "cert-manager.io", version: "v1", namespace: "apps", plural: "certificates", body });
  const read = await custom.getNamespacedCustomObject({ group: "cert-manager.io", version: "v1", namespace: "apps", plural: "certificates", name: "tls" });
  t.deepEqual(read.spec, body.spec);
  const list = await custom.listNamespacedCustomObject({
    group: "cert-manager.io",
    version: "v1",
    namespace: "apps",
    plural: "certificates",
    labelSelector: "app=web",
  });
  t.is(list.items.length, 1);
  await custom.createClusterCustomObject({
    group: "cert-manager.io",
    version: "v1",
    plural: "clusterissuers",
    body: { apiVersion: "cert-manager.io/v1", kind: "ClusterIssuer", metadata: { name: "acme" }, spec: { selfSigned: {} } },
  });
  const issuer = await custom.getClusterCustomObject({ group: "cert-manager.io", version: "v1", plural: "clusterissuers", name: "acme" });
  t.is(issuer.metadata.namespace, undefined);
  const merged = await custom.patchNamespacedCustomObject(
    { group: "cert-manager.io", version: "v1", namespace: "apps", plural: "certificates", name: "tls", body: { spec: { dnsNames: ["b.example.com"] } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  t.deepEqual(merged.spec, { secretName: "web-tls", dnsNames: ["b.example.com"] });
  const strategic = await apiError(
    t,
    custom.patchNamespacedCustomObject(
      { group: "cert-manager.io", version: "v1", namespace: "apps", plural: "certificates", name: "tls", body: { spec: {} } },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    ),
  );
  t.is(strategic.code, 415, "custom resources refuse strategic merge patch, as on a real server");
});

test("generateName, deletecollection and finalizers", async (t) => {
  const { core, api } = await setup(t);
  const generated = await core.createNamespacedConfigMap({ namespace: "apps", body: { metadata: { generateName: "job-", labels: { batch: "1" } } } });
  t.regex(generated.metadata?.name ?? "", /^job-[a-z0-9]{5}$/);
  await core.createNamespacedConfigMap({ namespace: "apps", body: { metadata: { generateName: "job-", labels: { batch: "1" } } } });
  await core.createNamespacedConfigMap({ namespace: "apps", body: { metadata: { name: "keep", labels: { batch: "2" } } } });
  await core.deleteCollectionNamespacedConfigMap({ namespace: "apps", labelSelector: "batch=1" });
  t.deepEqual(
    api.objects({ kind: "ConfigMap" }).map((c) => (c.metadata as { name: string }).name),
    ["keep"],
  );

  await core.createNamespacedConfigMap({ namespace: "apps", body: { metadata: { name: "held", finalizers: ["berth.dev/cleanup"] } } });
  await core.deleteNamespacedConfigMap({ namespace: "apps", name: "held" });
  const marked = await core.readNamespacedConfigMap({ namespace: "apps", name: "held" });
  t.true(marked.metadata?.deletionTimestamp instanceof Date, "an object with finalizers is only marked");
  await core.patchNamespacedConfigMap({ namespace: "apps", name: "held", body: [{ op: "remove", path: "/metadata/finalizers" }] });
  t.is((await apiError(t, core.readNamespacedConfigMap({ namespace: "apps", name: "held" }))).code, 404, "removing the last finalizer deletes it");
});

test("the status subresource: main writes keep status, /status writes only status", async (t) => {
  const { apps } = await setup(t);
  const created = await apps.createNamespacedDeployment({ namespace: "apps", body: { ...deployment("web"), status: { replicas: 5 } } });
  t.is(created.status, undefined, "status is cleared on create");
  const withStatus = await apps.replaceNamespacedDeploymentStatus({
    namespace: "apps",
    name: "web",
    body: { ...created, spec: { ...created.spec!, replicas: 9 }, status: { readyReplicas: 1 } },
  });
  t.is(withStatus.status?.readyReplicas, 1);
  t.is(withStatus.spec?.replicas, undefined, "the spec in a /status write is ignored");
  const replaced = await apps.replaceNamespacedDeployment({ namespace: "apps", name: "web", body: { ...withStatus, status: { readyReplicas: 7 } } });
  t.is(replaced.status?.readyReplicas, 1, "the status in a main write is ignored");
});

test("wrong method, unknown resource and unsupported patch type answer Status errors", async (t) => {
  const { api } = await setup(t);
  const unknown = await fetch(`${api.url}/apis/apps/v1/namespaces/apps/widgets`);
  t.is(unknown.status, 404);
  t.is(((await unknown.json()) as any).kind, "Status");
  const post = await fetch(`${api.url}/apis/apps/v1/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  t.is(post.status, 405);
  t.is(((await post.json()) as any).reason, "MethodNotAllowed");
  const patch = await fetch(`${api.url}/api/v1/namespaces/apps/configmaps/c`, { method: "PATCH", headers: { "content-type": "application/json" }, body: "{}" });
  t.is(patch.status, 415);
  const garbage = await fetch(`${api.url}/api/v1/namespaces/apps/configmaps`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{not json",
  });
  t.is(garbage.status, 400);
  t.is(((await garbage.json()) as any).reason, "BadRequest");
});
