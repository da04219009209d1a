import test from "ava";
import { processObjectName, silentLogger, teamNamespace } from "@berth/kit";
import { eventually } from "@berth/kit/testing";
import { createFakeKubeApi, validateKubernetesObject } from "@berth/fake-kube-api";
import { createIngressEngine, ingressFor, tlsSecretName } from "../src/engine/kubernetes/ingress-engine.js";
import { desiredRoutes } from "../src/reconcile/route-reconciler.js";
import { openTestStore } from "./support/store.js";

const settings = { namespace: "berth-apps", ingressClass: "nginx", clusterIssuer: "letsencrypt", webServicePort: 80 };
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
  const api = await createFakeKubeApi();
  t.teardown(() => api.close());
  const { store, close } = await openTestStore();
  t.teardown(close);
  const engine = createIngressEngine({ kubeConfig: api.kubeConfig(), ...settings, store, logger: silentLogger });
  t.teardown(() => engine.close?.());
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
  const api = await createFakeKubeApi({
    certificateTimings: { issueDelayMs: 30 },
    certificateIssuance: (dnsNames) => (dnsNames.includes("admin.example.com") ? nxdomain : undefined),
  });
  t.teardown(() => api.close());
  const { store, close } = await openTestStore();
  t.teardown(close);
  const engine = createIngressEngine({ kubeConfig: api.kubeConfig(), ...settings, store, logger: silentLogger });
  t.teardown(() => engine.close?.());
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
