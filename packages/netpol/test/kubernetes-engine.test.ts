import test from "ava";
import { KubernetesObjectApi } from "@kubernetes/client-node";
import { createFakeKubeApi, validateKubernetesObject } from "@berth/fake-kube-api";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { compileTeamPolicies } from "../src/compile/kubernetes-policies.js";
import { createKubernetesPolicyEngine } from "../src/engine/kubernetes-policy-engine.js";
import { evaluateConnection } from "../src/explain/network-policy-evaluator.js";
import { withAppChanges, withTrustList } from "../src/model-changes.js";
import { SETTINGS, TWO_TEAMS } from "./support/models.js";

test("policies are applied, updated and pruned idempotently, writing only what changed", async (t) => {
  const api = await createFakeKubeApi({ requireNamespaces: true });
  t.teardown(() => api.close());
  const engine = createKubernetesPolicyEngine({ kubeConfig: api.kubeConfig() }, SETTINGS);
  const stored = () => api.objects({ kind: "NetworkPolicy", namespace: "berth-apps-acme" }) as unknown as INetworkPolicy[];
  const versions = () => stored().map((policy) => `${policy.metadata?.name}@${policy.metadata?.resourceVersion}`);

  const first = await engine.plan("acme", compileTeamPolicies(TWO_TEAMS, "acme", SETTINGS), false);
  t.true(first.applied);
  t.is(first.touched, 8);
  t.true(first.changes.every((change) => change.action === "create"));
  t.is(api.objects({ kind: "Namespace", name: "berth-apps-acme" }).length, 1, "the team's namespace is made when missing");
  for (const policy of stored()) t.deepEqual((await validateKubernetesObject(policy)).violations, [], policy.metadata?.name);

  // What reached the server keeps every rule's peers: evaluated, it still admits exactly the trusted app.
  const namespaceLabels = new Map([["berth-apps-acme", { "kubernetes.io/metadata.name": "berth-apps-acme" }]]);
  const pod = (app: string, component: string, ip: string) => ({
    pod: {
      name: ip,
      namespace: "berth-apps-acme",
      labels: { "app.kubernetes.io/name": app, "app.kubernetes.io/component": component },
      ip,
      ports: [{ name: "tcp", containerPort: 5000 }],
    },
  });
  const reach = (from: string) =>
    evaluateConnection(
      { from: pod(from, "worker", "10.0.0.1"), to: pod("grpc-app", "grpc-tcp", "10.0.0.2"), port: 5000 },
      { namespaceLabels, policies: stored() },
    ).allowed;
  t.true(reach("api-app"));
  t.false(reach("billing-app"));

  const before = versions();
  const again = await engine.plan("acme", compileTeamPolicies(TWO_TEAMS, "acme", SETTINGS), false);
  t.is(again.touched, 0);
  t.false(again.applied);
  t.true(again.changes.every((change) => change.action === "unchanged"));
  t.deepEqual(versions(), before, "applying the same policies again changes nothing");

  const trusted = withTrustList(TWO_TEAMS, "grpc-app", ["api-app", "billing-app"]);
  const dryRun = await engine.plan("acme", compileTeamPolicies(trusted, "acme", SETTINGS), true);
  t.deepEqual(
    dryRun.changes.filter((change) => change.action !== "unchanged").map((change) => `${change.action} ${change.name}`),
    ["update grpc-app.tcp"],
  );
  t.false(dryRun.applied);
  t.deepEqual(versions(), before, "a dry run writes nothing");

  const writesBefore = api.requests.filter((request) => request.verb === "apply" || request.verb === "delete").length;
  const changed = await engine.plan("acme", compileTeamPolicies(trusted, "acme", SETTINGS), false);
  t.is(changed.touched, 1);
  t.is(api.requests.filter((request) => request.verb === "apply" || request.verb === "delete").length - writesBefore, 1, "one trust change, one write");
  t.true(reach("billing-app"));

  // billing-app goes: its two policies are pruned, nothing else is touched.
  const withoutBilling = withAppChanges(trusted, { apps: [], deleted: ["billing-app"], snapshot: false });
  const pruned = await engine.plan("acme", compileTeamPolicies(withoutBilling, "acme", SETTINGS), false);
  t.deepEqual(
    pruned.changes.filter((change) => change.action !== "unchanged").map((change) => `${change.action} ${change.name}`),
    ["update grpc-app.tcp", "delete billing-app.tcp", "delete billing-app.web"],
  );
  t.is(pruned.touched, 3);
  t.false(stored().some((policy) => policy.metadata?.name?.startsWith("billing-app.")));

  // A team with no apps left keeps no policies; objects of other managers are never pruned.
  const foreign = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "operator-own", namespace: "berth-apps-acme", labels: { "berth.dev/team": "acme" } },
    spec: { podSelector: {} },
  };
  await KubernetesObjectApi.makeApiClient(api.kubeConfig()).create(foreign);
  await engine.plan("acme", [], false);
  t.deepEqual(
    stored().map((policy) => policy.metadata?.name),
    ["operator-own"],
  );
  t.deepEqual((await engine.plan("acme", [], false)).changes, []);
});
