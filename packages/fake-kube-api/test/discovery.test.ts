import test from "ava";
import { ApisApi, CoreApi, CoreV1Api, KubernetesObjectApi, PatchStrategy, VersionApi } from "@kubernetes/client-node";
import { createFakeKubeApi, defaultKinds } from "../src/index.js";

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const api = await createFakeKubeApi();
  t.teardown(() => api.close());
  return { api, kubeConfig: api.kubeConfig() };
}

test("version and API group discovery answer what client-node expects", async (t) => {
  const { kubeConfig } = await setup(t);
  const version = await kubeConfig.makeApiClient(VersionApi).getCode();
  t.is(version.major, "1");
  t.regex(version.gitVersion, /^v1\.\d+\.\d+/);
  const core = await kubeConfig.makeApiClient(CoreApi).getAPIVersions();
  t.deepEqual(core.versions, ["v1"]);
  const groups = await kubeConfig.makeApiClient(ApisApi).getAPIVersions();
  const names = groups.groups.map((g) => g.name);
  for (const group of ["apps", "batch", "autoscaling", "networking.k8s.io", "discovery.k8s.io", "gateway.networking.k8s.io", "cert-manager.io"])
    t.true(names.includes(group), group);
  const autoscaling = groups.groups.find((g) => g.name === "autoscaling");
  t.is(autoscaling?.preferredVersion?.groupVersion, "autoscaling/v2");
});

test("every default kind appears in its group/version resource list", async (t) => {
  const { api } = await setup(t);
  for (const kind of defaultKinds) {
    const path = kind.group === "" ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
    const list = (await (await fetch(`${api.url}${path}`)).json()) as {
      kind: string;
      groupVersion: string;
      resources: { name: string; kind: string; namespaced: boolean; verbs: string[] }[];
    };
    t.is(list.kind, "APIResourceList");
    const resource = list.resources.find((r) => r.name === kind.plural);
    t.like(resource, { kind: kind.kind, namespaced: kind.namespaced }, kind.kind);
    t.true(resource?.verbs.includes("patch"));
    t.is(
      list.resources.some((r) => r.name === `${kind.plural}/status`),
      kind.statusSubresource === true,
      `${kind.kind} status subresource`,
    );
  }
  t.is((await fetch(`${api.url}/apis/example.com/v1`)).status, 404);
});

test("registerKind serves a new custom resource, discovered by KubernetesObjectApi", async (t) => {
  const { api, kubeConfig } = await setup(t);
  api.registerKind({ group: "berth.dev", version: "v1alpha1", kind: "Route", plural: "routes", namespaced: true });
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  const route = { apiVersion: "berth.dev/v1alpha1", kind: "Route", metadata: { name: "web", namespace: "apps" }, spec: { host: "web.example.com" } };
  await client.patch(route, undefined, undefined, "berth-router", true, PatchStrategy.ServerSideApply);
  const read = await client.read({ apiVersion: "berth.dev/v1alpha1", kind: "Route", metadata: { name: "web", namespace: "apps" } });
  t.deepEqual((read as unknown as typeof route).spec, route.spec);
  const listed = await client.list("berth.dev/v1alpha1", "Route", "apps");
  t.deepEqual(
    listed.items.map((r) => r.metadata?.name),
    ["web"],
  );
  await client.delete(route);
  t.deepEqual(api.objects({ kind: "Route" }), []);
});

test("KubernetesObjectApi applies cluster-scoped kinds without a namespace", async (t) => {
  const { api, kubeConfig } = await setup(t);
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  await client.patch(
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a", labels: { team: "a" } } },
    undefined,
    undefined,
    "berth-api",
    true,
    PatchStrategy.ServerSideApply,
  );
  await client.patch(
    { apiVersion: "networking.k8s.io/v1", kind: "IngressClass", metadata: { name: "berth" }, spec: { controller: "berth.dev/router" } } as never,
    undefined,
    undefined,
    "berth-router",
    true,
    PatchStrategy.ServerSideApply,
  );
  const namespace = await kubeConfig.makeApiClient(CoreV1Api).readNamespace({ name: "team-a" });
  t.deepEqual(namespace.metadata?.labels, { team: "a" });
  const [ingressClass] = api.objects({ kind: "IngressClass" });
  t.like(ingressClass, { metadata: { name: "berth" }, spec: { controller: "berth.dev/router" } });
  t.false("namespace" in (ingressClass!.metadata as object));
  t.true(api.requests.some((r) => r.path === "/apis/networking.k8s.io/v1/ingressclasses/berth" && r.verb === "apply" && r.status === 201));
});
