import test from "ava";
import { validateKubernetesObject } from "@berth/fake-kube-api";
import { compileTeamPolicies } from "../src/compile/kubernetes-policies.js";
import { compileLocalPolicy } from "../src/compile/local-policy.js";
import { evaluateConnection } from "../src/explain/network-policy-evaluator.js";
import type { PolicyPod } from "../src/explain/network-policy-evaluator.js";
import { createKubernetesExplainer } from "../src/explain/kubernetes-explainer.js";
import { createLocalExplainer } from "../src/explain/local-explainer.js";
import { teamMatrix } from "../src/explain/reachability.js";
import { withTrustList } from "../src/model-changes.js";
import { modelOf, SETTINGS, TWO_TEAMS } from "./support/models.js";

const acme = () => compileTeamPolicies(TWO_TEAMS, "acme", SETTINGS);

test("every compiled policy is schema-valid, named deterministically and labelled with app.kubernetes.io", async (t) => {
  const policies = [...acme(), ...compileTeamPolicies(TWO_TEAMS, "globex", SETTINGS)];
  for (const policy of policies) {
    const validation = await validateKubernetesObject(policy);
    t.true(validation.schemaChecked);
    t.deepEqual(validation.violations, [], policy.metadata?.name);
    t.is(policy.metadata?.labels?.["app.kubernetes.io/managed-by"], "berth-netpol");
    t.is(policy.metadata?.labels?.["app.kubernetes.io/part-of"], "berth");
  }
  t.deepEqual(
    acme().map((policy) => `${policy.metadata?.namespace}/${policy.metadata?.name}`),
    [
      "berth-apps-acme/berth.default-deny",
      "berth-apps-acme/berth.egress",
      "berth-apps-acme/api-app.web",
      "berth-apps-acme/billing-app.web",
      "berth-apps-acme/billing-app.tcp",
      "berth-apps-acme/grpc-app.web",
      "berth-apps-acme/grpc-app.tcp",
      "berth-apps-acme/grpc-app.sfu-rtc",
    ],
  );
  t.deepEqual(JSON.stringify(acme()), JSON.stringify(acme()));
});

test("the number of policies grows with apps, not with trust edges, and a trust change rewrites one object", (t) => {
  const apps = Object.fromEntries(Array.from({ length: 50 }, (_, index) => [`app-${index}`, ["acme", ["web", "api-tcp", "worker"]] as [string, string[]]]));
  const sparse = modelOf(apps);
  const dense = modelOf(apps, Object.fromEntries(Object.keys(apps).map((app) => [app, Object.keys(apps).filter((other) => other !== app)])));
  t.is(compileTeamPolicies(sparse, "acme", SETTINGS).length, 2 + 50 * 2);
  t.is(compileTeamPolicies(dense, "acme", SETTINGS).length, 2 + 50 * 2);
  const before = compileTeamPolicies(sparse, "acme", SETTINGS);
  const after = compileTeamPolicies(withTrustList(sparse, "app-7", ["app-3"]), "acme", SETTINGS);
  const changed = after.filter((policy, index) => JSON.stringify(policy) !== JSON.stringify(before[index])).map((policy) => policy.metadata?.name);
  t.deepEqual(changed, ["app-7.tcp"]);
});

test("evaluated as a cluster would, the compiled policies allow exactly what the model says", (t) => {
  const policies = [...acme(), ...compileTeamPolicies(TWO_TEAMS, "globex", SETTINGS)];
  const namespaceLabels = new Map(
    ["berth-apps", "berth-apps-acme", "berth-apps-globex", "ingress-nginx", "kube-system"].map((name) => [name, { "kubernetes.io/metadata.name": name }]),
  );
  const ports = {
    web: [{ name: "http", containerPort: 5000 }],
    tcp: [{ name: "tcp", containerPort: 5000 }],
    rtc: [{ name: "rtc", containerPort: 5000 }],
    none: [],
  };
  const pod = (namespace: string, labels: Record<string, string>, ip: string, kind: keyof typeof ports = "none"): PolicyPod => ({
    name: ip,
    namespace,
    labels,
    ip,
    ports: ports[kind],
  });
  const app = (team: string, name: string, component: string, ip: string, kind: keyof typeof ports = "none") =>
    pod(`berth-apps-${team}`, { "app.kubernetes.io/name": name, "app.kubernetes.io/component": component }, ip, kind);
  const apiWorker = app("acme", "api-app", "worker", "10.1.0.1");
  const grpcTcp = app("acme", "grpc-app", "grpc-tcp", "10.1.0.2", "tcp");
  const grpcWeb = app("acme", "grpc-app", "web", "10.1.0.3", "web");
  const grpcWorker = app("acme", "grpc-app", "worker", "10.1.0.4");
  const billingTcp = app("acme", "billing-app", "billing-tcp", "10.1.0.5", "tcp");
  const grpcRtc = app("acme", "grpc-app", "sfu-rtc", "10.1.0.6", "rtc");
  // Where and how the turn-allocator runs the gateway (coturn-objects.ts): the base namespace, `<type>-gateway`.
  const grpcGateway = pod("berth-apps", { "app.kubernetes.io/name": "grpc-app", "app.kubernetes.io/component": "sfu-rtc-gateway" }, "10.0.0.7");
  const reports = app("globex", "reports", "worker", "10.2.0.1");
  const portalTcp = app("globex", "portal", "admin-tcp", "10.2.0.2", "tcp");
  const ingress = pod("ingress-nginx", { "app.kubernetes.io/name": "ingress-nginx" }, "10.3.0.1");
  const dns = pod("kube-system", { "k8s-app": "kube-dns" }, "10.4.0.10");
  const reach = (from: PolicyPod | string, to: PolicyPod | string, port = 5000, protocol: "TCP" | "UDP" = "TCP") =>
    evaluateConnection(
      { from: typeof from === "string" ? { ip: from } : { pod: from }, to: typeof to === "string" ? { ip: to } : { pod: to }, port, protocol },
      { namespaceLabels, policies },
    ).allowed;

  t.true(reach(apiWorker, grpcTcp), "trusted");
  t.false(reach(grpcWorker, app("acme", "api-app", "web", "10.1.0.8", "web")), "trust is directional: web only from the ingress");
  t.true(reach(grpcWorker, billingTcp), "billing trusts grpc");
  t.false(reach(apiWorker, billingTcp), "billing does not trust api");
  t.true(reach(grpcWorker, grpcTcp), "an app reaches its own tcp processes");
  t.false(reach(apiWorker, grpcTcp, 5001), "only on the process's port");
  t.false(reach(reports, grpcTcp), "no path from another team");
  t.true(reach(reports, portalTcp), "globex's own trust");
  t.false(reach(apiWorker, portalTcp), "nor into another team");
  t.true(reach(ingress, grpcWeb), "web from the ingress");
  t.false(reach(apiWorker, grpcWeb), "web from nothing else");
  t.false(reach(ingress, grpcTcp), "tcp not from the ingress");
  t.false(reach(ingress, grpcWorker), "workers from nothing");
  t.false(reach(apiWorker, grpcWorker), "workers from nothing");
  t.false(reach("203.0.113.7", grpcWeb), "not from outside directly");
  t.true(reach(grpcGateway, grpcRtc, 40000, "UDP"), "rtc from its own gateway");
  t.false(reach(app("acme", "grpc-app", "sfu-rtc-gateway", "10.1.0.9"), grpcRtc, 40000, "UDP"), "not from a pod of the team's namespace labelled like it");
  t.false(reach(apiWorker, grpcRtc, 40000, "UDP"), "rtc from nothing else");
  t.true(reach(ingress, grpcRtc), "an rtc replica's own hostname from the ingress, on its rtc port");
  t.false(reach(ingress, grpcRtc, 40000, "UDP"), "but no media from the ingress");
  t.false(reach(apiWorker, grpcRtc), "nor its rtc port from anything else");
  t.true(reach(apiWorker, dns, 53, "UDP"), "DNS");
  t.true(reach(apiWorker, "93.184.216.34", 443), "the public internet");
  t.false(reach(apiWorker, "10.2.0.2", 5000), "not another team's pod address");
});

test("the kubernetes and local compilations agree on every pair, and both name what decided", (t) => {
  const kubernetes = createKubernetesExplainer(SETTINGS);
  const local = createLocalExplainer(compileLocalPolicy);
  for (const team of ["acme", "globex"]) {
    const fromKubernetes = teamMatrix(TWO_TEAMS, team, kubernetes, () => 0);
    const fromLocal = teamMatrix(TWO_TEAMS, team, local, () => 0);
    t.deepEqual(fromKubernetes, fromLocal, team);
  }
  const allowed = teamMatrix(TWO_TEAMS, "acme", local, () => 0)
    .filter((entry) => entry.allowed)
    .map((entry) => `${entry.fromApp} -> ${entry.toApp}/${entry.toProcessType}`);
  t.deepEqual(allowed, [
    "api-app -> grpc-app/grpc-tcp",
    "billing-app -> billing-app/billing-tcp",
    "grpc-app -> billing-app/billing-tcp",
    "grpc-app -> grpc-app/grpc-tcp",
  ]);

  const query = { from: TWO_TEAMS.apps.get("api-app")!, fromProcessType: "", to: TWO_TEAMS.apps.get("billing-app")!, toProcessType: "billing-tcp", port: 0 };
  const denied = kubernetes.explain(TWO_TEAMS, query);
  t.false(denied.allowed);
  t.deepEqual(denied.policies, ["berth.default-deny", "billing-app.tcp"]);
  t.true(denied.reasons.some((reason) => reason.includes("berth apps:trust:add api-app --app billing-app")));
  const granted = kubernetes.explain(TWO_TEAMS, { ...query, to: TWO_TEAMS.apps.get("grpc-app")!, toProcessType: "grpc-tcp" });
  t.deepEqual(granted.policies, ["berth.egress", "grpc-app.tcp"]);
  t.deepEqual(local.explain(TWO_TEAMS, { ...query, to: TWO_TEAMS.apps.get("grpc-app")!, toProcessType: "grpc-tcp" }).policies, ["grpc-app.tcp:api-app"]);
});

test("an object's digest changes whenever the object does, and only then within one configuration", (t) => {
  const digests = (model: typeof TWO_TEAMS, settings = SETTINGS) =>
    new Map(
      compileTeamPolicies(model, "acme", settings).map((policy) => [
        policy.metadata!.name!,
        `${policy.metadata!.annotations!["berth.dev/policy-digest"]} ${JSON.stringify(policy.spec)}`,
      ]),
    );
  const before = digests(TWO_TEAMS);
  const changedPairs = (after: Map<string, string>) => [...after].filter(([name, value]) => before.get(name) !== value).map(([name]) => name);
  // Same inputs, same digests; different specs never share one.
  t.deepEqual(
    changedPairs(
      digests(
        modelOf(
          { ...Object.fromEntries([...TWO_TEAMS.apps.values()].map((app) => [app.name, [app.team, app.processes.map((process) => process.processType)]])) },
          Object.fromEntries(TWO_TEAMS.trust),
        ),
      ),
    ),
    [],
  );
  const grown = modelOf(
    {
      "api-app": ["acme", ["web", "worker", "admin-web"]],
      "grpc-app": ["acme", ["web", "grpc-tcp", "worker", "release", "sfu-rtc"]],
      "billing-app": ["acme", ["billing-tcp", "admin-web"]],
      "lonely-app": ["acme", ["worker"]],
    },
    { "grpc-app": ["api-app"], "billing-app": ["grpc-app"] },
  );
  t.deepEqual(changedPairs(digests(grown)), ["api-app.web"]);
  // Another configuration changes the templates' fingerprint: every object is re-applied once, none is missed.
  const otherIngress = digests(TWO_TEAMS, { ...SETTINGS, ingress: { namespace: "traefik", podLabels: { app: "traefik" } } });
  for (const [name, value] of otherIngress) t.not(value.split(" ")[0], before.get(name)!.split(" ")[0], name);
});
