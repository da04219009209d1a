import test from "ava";
import { fileURLToPath } from "node:url";
import { loadAllYaml } from "@kubernetes/client-node";
import { createFakeKubeApi, kubectlFor, validateKubernetesObject } from "@berth/fake-kube-api";

type Json = Record<string, any>;

const manifests = fileURLToPath(new URL("../deploy/kubernetes", import.meta.url));
const services = { api: 2, scheduler: 2, router: 2, "turn-allocator": 2, netpol: 1 };

async function setup(t: { teardown(fn: () => unknown): void }) {
  // Namespaces required, as on a real cluster: the Namespaces must come first in what kubectl applies.
  const api = await createFakeKubeApi({ requireNamespaces: true });
  const kubectl = kubectlFor(api);
  t.teardown(async () => {
    await api.close();
    kubectl.dispose();
  });
  const rendered = await kubectl.run(["kustomize", manifests]);
  if (rendered.code !== 0) throw new Error(rendered.stderr);
  return { api, kubectl, objects: loadAllYaml(rendered.stdout) as Json[] };
}

test("berth's own manifests render with kustomize and every object is schema-valid", async (t) => {
  const { objects } = await setup(t);
  t.true(objects.length > 30);
  for (const object of objects) {
    const result = await validateKubernetesObject(object);
    t.true(result.schemaChecked, `${object.kind} has a schema`);
    t.deepEqual(result.violations, [], `${object.kind}/${object.metadata.name}`);
  }
});

test("kubectl apply --server-side -k puts berth on the fake cluster and every Deployment rolls out", async (t) => {
  const { api, kubectl } = await setup(t);
  const applied = await kubectl.run(["apply", "--server-side", "-k", manifests]);
  t.is(applied.code, 0, applied.stderr);
  for (const name of Object.keys(services)) {
    const rollout = await kubectl.run(["rollout", "status", `deployment/berth-${name}`, "-n", "berth-system", "--timeout=60s"]);
    t.is(rollout.code, 0, `${name}: ${rollout.stderr}`);
  }
  const pods = api.objects({ kind: "Pod", namespace: "berth-system", labelSelector: "app.kubernetes.io/name=berth" }) as Json[];
  t.is(
    pods.length,
    Object.values(services).reduce((sum, replicas) => sum + replicas, 0),
  );
  // Two replicas of a service land in two zones.
  const zonesOf = (component: string) =>
    new Set(pods.filter((pod) => pod.metadata.labels["app.kubernetes.io/component"] === component).map((pod) => pod.spec.nodeName));
  t.is(zonesOf("scheduler").size, 2);
  const again = await kubectl.run(["apply", "--server-side", "-k", manifests]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /deployment.apps\/berth-api serverside-applied/);
});

test("two replicas where safe with a disruption budget, probes on the health endpoint, least-privilege RBAC per service", async (t) => {
  const { objects } = await setup(t);
  const of = (kind: string) => objects.filter((object) => object.kind === kind);
  for (const [name, replicas] of Object.entries(services)) {
    const deployment = of("Deployment").find((object) => object.metadata.name === `berth-${name}`)!;
    t.is(deployment.spec.replicas, replicas, name);
    t.is(
      of("PodDisruptionBudget").some((budget) => budget.metadata.name === `berth-${name}`),
      replicas >= 2,
      `${name}: a PDB exactly when replicated`,
    );
    const container = deployment.spec.template.spec.containers[0];
    t.is(container.readinessProbe.httpGet.path, "/healthz");
    t.is(container.livenessProbe.httpGet.path, "/healthz");
    t.true(container.livenessProbe.periodSeconds > container.readinessProbe.periodSeconds, `${name}: liveness is slower than readiness`);
    t.is(container.securityContext.allowPrivilegeEscalation, false);
    t.is(deployment.spec.template.spec.serviceAccountName, `berth-${name}`, `${name} runs as its own ServiceAccount`);
  }
  // No wildcard anywhere; the API holds no Kubernetes credentials at all.
  for (const role of [...of("ClusterRole"), ...of("Role")]) {
    for (const rule of role.rules) t.false([...rule.verbs, ...rule.resources, ...rule.apiGroups].includes("*"), `${role.metadata.name} has a wildcard`);
  }
  const bound = [...of("ClusterRoleBinding"), ...of("RoleBinding")].flatMap((binding) => binding.subjects.map((subject: Json) => subject.name));
  t.false(bound.includes("berth-api"));
  t.false(of("Deployment").find((object) => object.metadata.name === "berth-api")!.spec.template.spec.automountServiceAccountToken);
  const rulesOf = (name: string) =>
    [...of("ClusterRole"), ...of("Role")].find((role) => role.metadata.name === name)!.rules.flatMap((rule: Json) => rule.resources);
  t.deepEqual(rulesOf("berth-router").sort(), ["certificates", "ingresses"]);
  t.deepEqual(rulesOf("berth-netpol"), ["networkpolicies"]);
  const turnRole = of("Role").find((role) => role.metadata.name === "berth-turn-allocator")!;
  t.is(turnRole.metadata.namespace, "berth-apps", "the TURN allocator may write only where its gateways live");
});
