import test from "ava";
import type { ExecutionContext } from "ava";
import { KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import { processObjectName, silentLogger, teamNamespace } from "@berth/kit";
import { eventually } from "@berth/kit/testing";
import { createFakeKubeApi, validateKubernetesObject } from "@berth/fake-kube-api";
import type { FakeKubeApiOptions } from "@berth/fake-kube-api";
import { createIngressEngine, ingressFor, replicaServicesFor, tlsSecretName } from "../src/engine/kubernetes/ingress-engine.js";
import { desiredRoutes } from "../src/reconcile/route-reconciler.js";
import { openTestStore } from "./support/store.js";

const settings = { namespace: "berth-apps", ingressClass: "nginx", clusterIssuer: "letsencrypt", webServicePort: 80 };

/** A fake cluster, a router store and an ingress engine on them, each closed when the test ends. */
async function startIngressEngine(t: ExecutionContext, apiOptions: FakeKubeApiOptions = {}) {
  const api = await createFakeKubeApi(apiOptions);
  t.teardown(() => api.close());
  const { store, close } = await openTestStore();
  t.teardown(close);
  const engine = createIngressEngine({ kubeConfig: api.kubeConfig(), ...settings, store, logger: silentLogger });
  t.teardown(() => engine.close?.());
  return { api, store, engine };
}
const adminWeb = processObjectName("shop", "admin-web");
const web = processObjectName("shop", "web");

const routes = [
  { hostname: "shop.apps.example.net", team: "acme", app: "shop", processType: "web" },
  { hostname: "shop-admin.apps.example.net", team: "acme", app: "shop", processType: "admin-web" },
];
const domains = [{ hostname: "admin.example.com", app: "shop", processType: "admin-web" }];

test("the desired routes group platform routes and custom domains per web process", (t) => {
  t.deepEqual(desiredRoutes(routes, domains), [
    { team: "acme", app: "shop", processType: "admin-web", hostnames: ["shop-admin.apps.example.net", "admin.example.com"] },
    { team: "acme", app: "shop", processType: "web", hostnames: ["shop.apps.example.net"] },
  ]);
});

test("an Ingress per web process is schema-valid, points at the process's Service and asks cert-manager for TLS", async (t) => {
  const ingress = ingressFor(desiredRoutes(routes, domains)[0]!, settings) as {
    metadata: { name: string; namespace: string; labels: Record<string, string>; annotations: Record<string, string> };
    spec: {
      ingressClassName: string;
      tls: { hosts: string[]; secretName: string }[];
      rules: { host: string; http: { paths: { backend: { service: { name: string; port: { number: number } } } }[] } }[];
    };
  };
  const validation = await validateKubernetesObject(ingress);
  t.true(validation.schemaChecked);
  t.deepEqual(validation.violations, []);
  t.is(ingress.metadata.name, adminWeb);
  t.is(ingress.metadata.namespace, teamNamespace("berth-apps", "acme"), "in the team's namespace, next to the Service");
  t.is(ingress.metadata.annotations["cert-manager.io/cluster-issuer"], "letsencrypt");
  t.is(ingress.metadata.labels["app.kubernetes.io/managed-by"], "berth-router");
  t.is(ingress.spec.ingressClassName, "nginx");
  // One TLS secret (one cert-manager Certificate) per hostname: a custom domain whose DNS is broken never blocks the platform hostname's.
  t.deepEqual(ingress.spec.tls, [
    { hosts: ["shop-admin.apps.example.net"], secretName: tlsSecretName(adminWeb, "shop-admin.apps.example.net") },
    { hosts: ["admin.example.com"], secretName: tlsSecretName(adminWeb, "admin.example.com") },
  ]);
  t.not(ingress.spec.tls[0]!.secretName, ingress.spec.tls[1]!.secretName);
  t.deepEqual(
    ingress.spec.rules.map((rule) => rule.host),
    ["shop-admin.apps.example.net", "admin.example.com"],
  );
  t.deepEqual(ingress.spec.rules[0]!.http.paths[0]!.backend.service, { name: adminWeb, port: { number: 80 } });
});

test("Ingress objects are applied, updated and pruned idempotently on the API server", async (t) => {
  const { api, engine } = await startIngressEngine(t);
  const ingresses = () =>
    api.objects({ kind: "Ingress", namespace: teamNamespace("berth-apps", "acme") }) as {
      metadata: { name: string; resourceVersion: string };
      spec: { rules: { host: string }[] };
    }[];

  await engine.apply(desiredRoutes(routes, []));
  t.deepEqual(
    ingresses().map((ingress) => ingress.metadata.name),
    [adminWeb, web].sort(),
  );
  for (const ingress of ingresses()) t.deepEqual((await validateKubernetesObject(ingress)).violations, []);

  const versions = ingresses().map((ingress) => ingress.metadata.resourceVersion);
  await engine.apply(desiredRoutes(routes, []));
  t.deepEqual(
    ingresses().map((ingress) => ingress.metadata.resourceVersion),
    versions,
    "applying the same routes again changes nothing",
  );

  await engine.apply(desiredRoutes(routes, domains));
  t.deepEqual(
    ingresses()[0]!.spec.rules.map((rule) => rule.host),
    ["shop-admin.apps.example.net", "admin.example.com"],
    "a custom domain adds a rule",
  );

  await engine.apply(desiredRoutes(routes.slice(0, 1), []));
  t.deepEqual(
    ingresses().map((ingress) => ingress.metadata.name),
    [web],
    "a route that went is pruned",
  );

  await engine.apply([]);
  t.deepEqual(ingresses(), []);
  await engine.apply([]);
  t.deepEqual(ingresses(), []);
});

test("certificate state is read back from cert-manager's Certificates: a broken custom domain fails alone, the platform hostname is issued", async (t) => {
  const nxdomain = "ACME order failed: DNS problem: NXDOMAIN looking up A for admin.example.com";
  const { api, store, engine } = await startIngressEngine(t, {
    certificateTimings: { issueDelayMs: 30 },
    certificateIssuance: (dnsNames) => (dnsNames.includes("admin.example.com") ? nxdomain : undefined),
  });
  const row = (hostname: string) => store.getCertificate(hostname);
  const inState = (hostname: string, state: string) => async () => {
    const found = await row(hostname);
    return found?.state === state ? found : undefined;
  };

  await engine.apply(desiredRoutes(routes, domains));
  t.deepEqual(
    (await store.listCertificates()).map((certificate) => certificate.hostname),
    ["admin.example.com", "shop-admin.apps.example.net", "shop.apps.example.net"],
    "every routed hostname has a row as soon as its Ingress is applied",
  );

  const issued = await eventually(inState("shop-admin.apps.example.net", "issued"), "the platform hostname's certificate");
  t.is(issued.issuer, "cert-manager ClusterIssuer/letsencrypt");
  t.is(issued.lastError, "");
  const certificate = api.objects({
    kind: "Certificate",
    namespace: teamNamespace("berth-apps", "acme"),
    name: tlsSecretName(adminWeb, "shop-admin.apps.example.net"),
  })[0] as { status: { notAfter: string; notBefore: string } };
  t.is(issued.notAfter?.toISOString(), new Date(certificate.status.notAfter).toISOString(), "notAfter comes from the Certificate's status");
  t.is(issued.notBefore?.toISOString(), new Date(certificate.status.notBefore).toISOString());

  const failed = await eventually(inState("admin.example.com", "failed"), "the broken domain's failure");
  t.true(failed.lastError.includes(nxdomain), failed.lastError);
  t.is(failed.failures, 1);
  t.is(failed.notAfter, null);
  t.truthy(failed.lastAttemptAt);
  await eventually(inState("shop.apps.example.net", "issued"), "the other web process's certificate");
  t.is((await row("shop-admin.apps.example.net"))?.state, "issued", "the broken domain on the same Ingress leaves the platform hostname's certificate alone");

  await engine.apply(desiredRoutes(routes, []));
  t.is(await row("admin.example.com"), undefined, "a removed domain's row goes with it");
  t.is((await row("shop-admin.apps.example.net"))?.state, "issued");
});

const rtcSet = processObjectName("meet", "sfu-rtc");
const rtcRoutes = (replicas: number) =>
  Array.from({ length: replicas }, (_, slot) => ({
    hostname: `k3x9q-${String(slot + 1).padStart(2, "0")}.apps.example.net`,
    team: "acme",
    app: "meet",
    processType: "sfu-rtc",
    replica: slot + 1,
  }));

test("an rtc process's replica hostnames each go to a schema-valid Service selecting that replica's StatefulSet pod alone", async (t) => {
  const [routes] = desiredRoutes(rtcRoutes(2), []);
  t.deepEqual(routes!.replicaHostnames, [
    { hostname: "k3x9q-01.apps.example.net", replica: 1 },
    { hostname: "k3x9q-02.apps.example.net", replica: 2 },
  ]);
  const services = replicaServicesFor(routes!, settings);
  const ingress = ingressFor(routes!, settings) as {
    spec: { tls: { hosts: string[]; secretName: string }[]; rules: { host: string; http: { paths: { backend: { service: { name: string } } }[] } }[] };
  };
  for (const object of [...services, ingress]) {
    const validation = await validateKubernetesObject(object);
    t.true(validation.schemaChecked);
    t.deepEqual(validation.violations, []);
  }
  t.deepEqual(
    services.map((service) => [service.metadata!.name, service.spec!.selector]),
    [
      [`${rtcSet}-0`, { "statefulset.kubernetes.io/pod-name": `${rtcSet}-0` }],
      [`${rtcSet}-1`, { "statefulset.kubernetes.io/pod-name": `${rtcSet}-1` }],
    ],
  );
  t.deepEqual(ingress.spec.rules.map((rule) => [rule.host, rule.http.paths[0]!.backend.service.name]).sort(), [
    ["k3x9q-01.apps.example.net", `${rtcSet}-0`],
    ["k3x9q-02.apps.example.net", `${rtcSet}-1`],
  ]);
  t.deepEqual(ingress.spec.tls.map((entry) => entry.secretName).sort(), routes!.hostnames.map((host) => tlsSecretName(rtcSet, host)).sort());
});

test("on a cluster each rtc replica hostname routes to its own pod, and scaling adds and prunes the Services, rules and certificates", async (t) => {
  const { api, store, engine } = await startIngressEngine(t);
  const namespace = teamNamespace("berth-apps", "acme");
  const kube = KubernetesObjectApi.makeApiClient(api.kubeConfig());
  const statefulSet = (replicas: number) => ({
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: rtcSet, namespace },
    spec: {
      replicas,
      podManagementPolicy: "Parallel",
      selector: { matchLabels: { "app.kubernetes.io/name": "meet" } },
      template: {
        metadata: { labels: { "app.kubernetes.io/name": "meet" } },
        spec: { containers: [{ name: "sfu-rtc", image: "meet:v1", ports: [{ name: "rtc", containerPort: 5000, protocol: "TCP" }] }] },
      },
    },
  });
  const scaleTo = (replicas: number) => kube.patch(statefulSet(replicas), undefined, undefined, "test", true, PatchStrategy.ServerSideApply);
  const sliceOf = (service: string) =>
    api.objects({ kind: "EndpointSlice", namespace, labelSelector: `kubernetes.io/service-name=${service}` })[0] as
      | { ports: { port: number }[]; endpoints: { targetRef: { name: string }; conditions: { ready: boolean } }[] }
      | undefined;
  const routedPods = (service: string) => async () => {
    const slice = sliceOf(service);
    return slice?.endpoints.length && slice.endpoints.every((endpoint) => endpoint.conditions.ready) ? slice : undefined;
  };
  const names = (kind: string) =>
    api
      .objects({ kind, namespace, labelSelector: "app.kubernetes.io/managed-by=berth-router" })
      .map((object) => (object as { metadata: { name: string } }).metadata.name)
      .sort();
  const rules = () =>
    (
      api.objects({ kind: "Ingress", namespace, name: rtcSet })[0] as {
        spec: { rules: { host: string; http: { paths: { backend: { service: { name: string } } }[] } }[] };
      }
    ).spec.rules
      .map((rule) => [rule.host, rule.http.paths[0]!.backend.service.name])
      .sort();

  await scaleTo(2);
  await engine.apply(desiredRoutes(rtcRoutes(2), []));
  t.deepEqual(names("Service"), [`${rtcSet}-0`, `${rtcSet}-1`]);
  for (const ordinal of [0, 1]) {
    const slice = await eventually(routedPods(`${rtcSet}-${ordinal}`), `the Service of replica ${ordinal + 1} routes`);
    t.deepEqual(
      slice.endpoints.map((endpoint) => endpoint.targetRef.name),
      [`${rtcSet}-${ordinal}`],
      "the replica's Service reaches its pod and no other",
    );
    t.is(slice.ports[0]!.port, 5000, "on the pod's rtc port");
  }
  t.deepEqual(rules(), [
    ["k3x9q-01.apps.example.net", `${rtcSet}-0`],
    ["k3x9q-02.apps.example.net", `${rtcSet}-1`],
  ]);

  await scaleTo(3);
  await engine.apply(desiredRoutes(rtcRoutes(3), []));
  t.deepEqual(names("Service"), [`${rtcSet}-0`, `${rtcSet}-1`, `${rtcSet}-2`], "scaling up adds the new replica's Service");
  const third = await eventually(routedPods(`${rtcSet}-2`), "the third replica's Service routes");
  t.deepEqual(
    third.endpoints.map((endpoint) => endpoint.targetRef.name),
    [`${rtcSet}-2`],
  );
  t.is(rules().length, 3);
  t.truthy(await store.getCertificate("k3x9q-03.apps.example.net"), "the new hostname gets its certificate");

  await scaleTo(1);
  await engine.apply(desiredRoutes(rtcRoutes(1), []));
  t.deepEqual(names("Service"), [`${rtcSet}-0`], "scaling down prunes the Services of the replicas that went");
  t.deepEqual(rules(), [["k3x9q-01.apps.example.net", `${rtcSet}-0`]]);
  t.is(await store.getCertificate("k3x9q-02.apps.example.net"), undefined);

  await engine.apply([]);
  t.deepEqual(names("Service"), []);
  t.deepEqual(names("Ingress"), []);
});
