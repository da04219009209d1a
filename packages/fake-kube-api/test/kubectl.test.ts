import test from "ava";
import { spawn } from "node:child_process";
import { createFakeKubeApi, type FakeKubeApiOptions, kubectlFor } from "../src/index.js";

type Json = Record<string, any>;

/** kubectl v1.32 (/usr/bin/kubectl) as the independent client: its own discovery, OpenAPI, Table and watch code. */
async function setup(t: { teardown(fn: () => unknown): void }, options: FakeKubeApiOptions = {}) {
  const api = await createFakeKubeApi(options);
  const kubectl = kubectlFor(api);
  t.teardown(async () => {
    await api.close();
    kubectl.dispose();
  });
  return { api, kubectl: kubectl.run, env: kubectl.env };
}

const namespace = JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } });
const deployment = (name: string, extra: Json = {}) =>
  JSON.stringify({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: "apps" },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "main", image: "app:v1", ports: [{ containerPort: 8080 }] }] } },
      ...extra,
    },
  });
const service = JSON.stringify({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "web", namespace: "apps" },
  spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] },
});

const header = (output: string) =>
  output
    .split("\n")[0]!
    .trim()
    .split(/\s{2,}/);

test("kubectl apply --server-side validates and creates; get prints the usual columns and knows the short names", async (t) => {
  const { kubectl } = await setup(t);
  const applied = await kubectl(["apply", "--server-side", "-f", "-"], [namespace, deployment("web"), service].join("\n"));
  t.is(applied.code, 0, applied.stderr);
  t.regex(applied.stdout, /deployment.apps\/web serverside-applied/);
  const rollout = await kubectl(["rollout", "status", "deploy/web", "-n", "apps", "--timeout=30s"]);
  t.is(rollout.code, 0, rollout.stderr);
  t.regex(rollout.stdout, /successfully rolled out/);
  const deployments = await kubectl(["get", "deploy", "-n", "apps"]);
  t.deepEqual(header(deployments.stdout), ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
  t.regex(deployments.stdout, /\nweb\s+2\/2\s+2\s+2\s/);
  const pods = await kubectl(["get", "po", "-n", "apps", "-o", "wide"]);
  t.deepEqual(header(pods.stdout), ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]);
  t.is(pods.stdout.match(/1\/1\s+Running\s+0/g)?.length, 2);
  const services = await kubectl(["get", "svc,endpointslices", "-n", "apps"]);
  t.regex(services.stdout, /service\/web\s+ClusterIP\s+<none>\s+<none>\s+80\/TCP/);
  t.regex(services.stdout, /endpointslice.discovery.k8s.io\/web-\w+\s+IPv4\s+8080\s+10\.244\./);
  const all = await kubectl(["get", "all", "-n", "apps", "-o", "name"]);
  t.regex(all.stdout, /replicaset.apps\/web-/);
  const json = JSON.parse((await kubectl(["get", "deploy", "web", "-n", "apps", "-o", "json"])).stdout) as Json;
  t.is(json.status.readyReplicas, 2);
});

test("kubectl sees unknown fields and immutable-field changes refused by the server, and nothing is stored", async (t) => {
  const { api, kubectl } = await setup(t);
  t.is((await kubectl(["apply", "--server-side", "-f", "-"], [namespace, deployment("web")].join("\n"))).code, 0);
  const unknown = await kubectl(["apply", "--server-side", "-f", "-"], deployment("typo", { bogus: 1 }));
  t.not(unknown.code, 0);
  t.regex(unknown.stderr, /unknown field "spec.bogus"/);
  t.deepEqual(api.objects({ kind: "Deployment", name: "typo" }), []);
  const moved = JSON.parse(deployment("web")) as Json;
  moved.spec.selector.matchLabels.app = "other";
  moved.spec.template.metadata.labels.app = "other";
  const immutable = await kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], JSON.stringify(moved));
  t.not(immutable.code, 0);
  t.regex(immutable.stderr, /spec.selector: Invalid value: .*field is immutable/);
  t.is((api.objects({ kind: "Deployment", name: "web" })[0] as Json).spec.selector.matchLabels.app, "web");
});

test("kubectl scale, wait --for=condition and rollout restart drive the simulated controllers", async (t) => {
  const { api, kubectl } = await setup(t);
  t.is((await kubectl(["apply", "--server-side", "-f", "-"], [namespace, deployment("web")].join("\n"))).code, 0);
  const scaled = await kubectl(["scale", "deploy/web", "-n", "apps", "--replicas=3"]);
  t.is(scaled.code, 0, scaled.stderr);
  const waited = await kubectl(["wait", "--for=condition=Available", "deploy/web", "-n", "apps", "--timeout=30s"]);
  t.is(waited.code, 0, waited.stderr);
  t.is((await kubectl(["rollout", "status", "deploy/web", "-n", "apps", "--timeout=30s"])).code, 0);
  t.is(api.objects({ kind: "Pod", namespace: "apps" }).length, 3);
  const restarted = await kubectl(["rollout", "restart", "deploy/web", "-n", "apps"]);
  t.is(restarted.code, 0, restarted.stderr);
  t.is((await kubectl(["rollout", "status", "deploy/web", "-n", "apps", "--timeout=30s"])).code, 0);
  t.is(api.objects({ kind: "ReplicaSet", namespace: "apps" }).length, 2, "the restart rolled out a new ReplicaSet");
});

test("kubectl rollout status follows a StatefulSet's ordered rollout and get statefulsets shows it ready", async (t) => {
  const { api, kubectl } = await setup(t);
  const statefulSet = (image: string) =>
    JSON.stringify({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "db", namespace: "apps" },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "db" } },
        // The API server would default it; the fake stores what it is given, and kubectl rollout status needs it.
        updateStrategy: { type: "RollingUpdate" },
        template: { metadata: { labels: { app: "db" } }, spec: { containers: [{ name: "main", image }] } },
      },
    });
  t.is((await kubectl(["apply", "--server-side", "-f", "-"], [namespace, statefulSet("app:v1")].join("\n"))).code, 0);
  const first = await kubectl(["rollout", "status", "statefulset/db", "-n", "apps", "--timeout=30s"]);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /statefulset rolling update complete 3 pods at revision db-\w+/);
  t.is((await kubectl(["apply", "--server-side", "-f", "-"], statefulSet("app:v2"))).code, 0);
  const second = await kubectl(["rollout", "status", "sts/db", "-n", "apps", "--timeout=30s"]);
  t.is(second.code, 0, second.stderr);
  t.deepEqual(
    (api.objects({ kind: "Pod", namespace: "apps" }) as Json[]).map((pod) => [pod.metadata.name, pod.spec.containers[0].image]).sort(),
    [
      ["db-0", "app:v2"],
      ["db-1", "app:v2"],
      ["db-2", "app:v2"],
    ],
    "every pod replaced when rollout status returned",
  );
  const listed = await kubectl(["get", "sts", "-n", "apps"]);
  t.deepEqual(header(listed.stdout), ["NAME", "READY", "AGE"]);
  t.regex(listed.stdout, /\ndb\s+3\/3\s/);
});

test("kubectl logs reads a pod's log and logs -f follows it until the pod goes", async (t) => {
  const { api, kubectl, env } = await setup(t, { podBehaviour: () => ({ outcome: "ready", logs: ["listening on 8080"] }), podTimings: { terminationMs: 20 } });
  t.is((await kubectl(["apply", "--server-side", "-f", "-"], [namespace, deployment("web", { replicas: 1 })].join("\n"))).code, 0);
  t.is((await kubectl(["rollout", "status", "deploy/web", "-n", "apps", "--timeout=30s"])).code, 0);
  const logs = await kubectl(["logs", "deploy/web", "-n", "apps"]);
  t.is(logs.stdout, "listening on 8080\n", logs.stderr);
  const pod = (api.objects({ kind: "Pod", namespace: "apps" })[0] as Json).metadata.name as string;
  const follow = spawn("kubectl", ["logs", "-f", pod, "-n", "apps"], { env });
  let output = "";
  follow.stdout.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => follow.on("exit", resolve));
  t.teardown(() => follow.kill());
  while (!output.includes("listening")) await new Promise((resolve) => setTimeout(resolve, 20));
  api.writePodLog("apps", pod, "GET / 200");
  while (!output.includes("GET / 200")) await new Promise((resolve) => setTimeout(resolve, 20));
  t.is((await kubectl(["delete", "pod", pod, "-n", "apps", "--wait=false"])).code, 0);
  t.is(await exited, 0);
  t.is(output, "listening on 8080\nGET / 200\n");
});

test("kubectl wait --for=condition=complete waits for a Job the simulation completes", async (t) => {
  const { kubectl } = await setup(t);
  const job = JSON.stringify({
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: "migrate", namespace: "apps" },
    spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "main", image: "app:v1" }] } } },
  });
  t.is((await kubectl(["apply", "--server-side", "-f", "-"], [namespace, job].join("\n"))).code, 0);
  const waited = await kubectl(["wait", "--for=condition=complete", "job/migrate", "-n", "apps", "--timeout=30s"]);
  t.is(waited.code, 0, waited.stderr);
  const jobs = await kubectl(["get", "jobs", "-n", "apps"]);
  t.deepEqual(header(jobs.stdout), ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
  t.regex(jobs.stdout, /migrate\s+Complete\s+1\/1/);
});
