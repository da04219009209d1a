import test from "ava";
import type { ExecutionContext } from "ava";
import { KubernetesObjectApi } from "@kubernetes/client-node";
import type { KubeConfig } from "@kubernetes/client-node";
import { applyObjectSet, internalHostname, processObjectName, silentLogger, teamNamespace } from "@berth/kit";
import { createFakeKubeApi, validateKubernetesObject } from "@berth/fake-kube-api";
import type { FakeKubeApi } from "@berth/fake-kube-api";
import { createKubernetesDeployer } from "../src/engine/kubernetes/kubernetes-deployer.js";
import { appObjects } from "../src/engine/kubernetes/manifests.js";
import type { KubernetesDeployerOptions } from "../src/engine/kubernetes/kubernetes-deployer.js";
import { createKubeApiProxy } from "./support/kube-api-proxy.js";
import { DEMO_PROCESSES, DEMO_SETTINGS, NAMESPACE, demoApp, formationEntry, objectName } from "./support/kubernetes-demo-app.js";

type Stored = {
  kind: string;
  metadata: { name: string; resourceVersion: string; uid: string; generation: number; managedFields?: { manager: string; fieldsV1: any }[] };
  spec: any;
  status?: any;
};

const DEMO_OBJECTS = [
  `Secret/${NAMESPACE}/demo-config-v1`,
  `Deployment/${NAMESPACE}/${objectName("web")}`,
  `Deployment/${NAMESPACE}/${objectName("admin-web")}`,
  `Deployment/${NAMESPACE}/${objectName("worker")}`,
  `Deployment/${NAMESPACE}/${objectName("api-tcp")}`,
  `Service/${NAMESPACE}/${objectName("web")}`,
  `Service/${NAMESPACE}/${objectName("admin-web")}`,
  `Service/${NAMESPACE}/demo-api-tcp`,
];

async function setup(t: ExecutionContext, options: Partial<KubernetesDeployerOptions> = {}, kubeConfig?: (api: FakeKubeApi) => Promise<KubeConfig>) {
  // This test plays the cluster's controllers itself (it writes status), so the simulated ones stay off.
  const api = await createFakeKubeApi({ controllers: false });
  t.teardown(() => api.close());
  const deployer = createKubernetesDeployer({
    kubeConfig: kubeConfig ? await kubeConfig(api) : api.kubeConfig(),
    settings: DEMO_SETTINGS,
    logger: silentLogger,
    ...options,
  });
  const stored = (kind: string, name?: string) => api.objects({ kind, namespace: NAMESPACE, ...(name ? { name } : {}) }) as Stored[];
  const versions = () =>
    Object.fromEntries(
      api
        .objects({ namespace: NAMESPACE })
        .map((object) => [`${object.kind}/${(object as Stored).metadata.name}`, (object as Stored).metadata.resourceVersion]),
    );
  /** Plays a controller: writes an object's status through the /status subresource. */
  async function writeStatus(path: string, kind: string, name: string, status: (object: Stored) => unknown): Promise<void> {
    const object = stored(kind, name)[0]!;
    const response = await fetch(`${api.url}${path}/namespaces/${NAMESPACE}/${kind.toLowerCase()}s/${name}/status`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...object, status: status(object) }),
    });
    t.is(response.status, 200, await response.text());
  }
  /** Waits until the fake API server holds what `condition` looks for (failing after 30 s rather than hanging). */
  async function until(condition: () => boolean): Promise<void> {
    const giveUpAt = Date.now() + 30_000;
    while (!condition()) {
      if (Date.now() > giveUpAt) throw new Error("the API server never reached the awaited state");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  return { api, deployer, stored, versions, writeStatus, until };
}

const rolledOut = (object: Stored) => ({
  observedGeneration: object.metadata.generation,
  replicas: object.spec.replicas ?? 1,
  updatedReplicas: object.spec.replicas ?? 1,
  readyReplicas: object.spec.replicas ?? 1,
  availableReplicas: object.spec.replicas ?? 1,
});

test("the demo app's objects are applied, each schema-valid as stored", async (t) => {
  const { deployer, api } = await setup(t);
  const result = await deployer.applyApp(demoApp());
  t.deepEqual(result, { applied: DEMO_OBJECTS, unchanged: [], pruned: [], awaitingReplacement: [] });
  const objects = api.objects({ namespace: NAMESPACE });
  t.is(objects.length, DEMO_OBJECTS.length);
  for (const object of objects) t.deepEqual((await validateKubernetesObject(object)).violations, [], `${object.kind}/${(object as Stored).metadata.name}`);
});

test("a team's apps live in the team's labelled namespace; another team's in its own", async (t) => {
  const { deployer, api } = await setup(t);
  await deployer.applyApp(demoApp());
  const namespace = api.objects({ kind: "Namespace", name: NAMESPACE })[0] as Stored & { metadata: { labels: Record<string, string> } };
  t.is(namespace.metadata.labels["berth.dev/team"], "acme");
  await deployer.applyApp(demoApp({ team: "globex", release: { app: "blog" } }));
  t.is(api.objects({ kind: "Deployment", namespace: NAMESPACE, labelSelector: "app.kubernetes.io/name=blog" }).length, 0);
  t.is(
    api.objects({ kind: "Deployment", namespace: teamNamespace(DEMO_SETTINGS.namespaceBase, "globex"), labelSelector: "app.kubernetes.io/name=blog" }).length,
    4,
  );
});

test("an object of the same name that another app owns is never taken over", async (t) => {
  const { deployer, api } = await setup(t);
  const squatter = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: objectName("web"), namespace: NAMESPACE, labels: { "app.kubernetes.io/name": "someone-else" } },
    spec: { ports: [{ port: 80 }] },
  };
  await fetch(`${api.url}/api/v1/namespaces`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } }),
  });
  t.is(
    (
      await fetch(`${api.url}/api/v1/namespaces/${NAMESPACE}/services`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(squatter),
      })
    ).status,
    201,
  );
  await t.throwsAsync(deployer.applyApp(demoApp()), { message: /exists and belongs to no berth app, not to app "demo"/ });
  t.deepEqual(api.objects({ kind: "Deployment", namespace: NAMESPACE }), [], "nothing was applied");
  t.is(
    (api.objects({ kind: "Service", name: objectName("web") })[0] as Stored & { metadata: { labels: Record<string, string> } }).metadata.labels[
      "app.kubernetes.io/name"
    ],
    "someone-else",
  );
});

test("applying the same release twice changes nothing", async (t) => {
  const { deployer, versions } = await setup(t);
  await deployer.applyApp(demoApp());
  const before = versions();
  const again = await deployer.applyApp(demoApp());
  t.deepEqual(again, { applied: [], unchanged: DEMO_OBJECTS, pruned: [], awaitingReplacement: [] });
  t.deepEqual(versions(), before);
});

test("scaling web to 3 changes only the web Deployment and spreads it over zones", async (t) => {
  const { deployer, stored, versions } = await setup(t);
  await deployer.applyApp(demoApp());
  const before = versions();
  const formation = ["web", "admin-web", "worker", "api-tcp"].map((type) => formationEntry(type, { replicas: type === "web" ? 3 : 1 }));
  const result = await deployer.applyApp(demoApp({ formation }));
  t.deepEqual(
    result.applied,
    [`Deployment/${NAMESPACE}/${objectName("web")}`, `PodDisruptionBudget/${NAMESPACE}/${objectName("web")}`],
    "3 replicas get a disruption budget",
  );
  t.deepEqual(result.pruned, []);
  const after = versions();
  for (const name of Object.keys(before)) t.is(after[name] !== before[name], name === `Deployment/${objectName("web")}`, name);
  const web = stored("Deployment", objectName("web"))[0]!;
  t.is(web.spec.replicas, 3);
  t.is(web.spec.template.spec.topologySpreadConstraints[0].topologyKey, "topology.kubernetes.io/zone");
  t.is(stored("Deployment", objectName("admin-web"))[0]!.spec.template.spec.topologySpreadConstraints, undefined);
});

test("an autoscale rule adds an HPA and leaves the Deployment's replicas to it without dropping them", async (t) => {
  const { deployer, stored, api } = await setup(t);
  const formation = ["web", "admin-web", "worker", "api-tcp"].map((type) => formationEntry(type, { replicas: type === "web" ? 3 : 1 }));
  await deployer.applyApp(demoApp({ formation }));
  const autoscaleRules = [{ processType: "web", minReplicas: 2, maxReplicas: 5, targetCpuPercent: 60 }];
  const result = await deployer.applyApp(demoApp({ formation, autoscaleRules }));
  t.true(result.applied.includes(`HorizontalPodAutoscaler/${NAMESPACE}/${objectName("web")}`));
  const hpa = stored("HorizontalPodAutoscaler", objectName("web"))[0]!;
  t.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: objectName("web") });
  t.deepEqual((await validateKubernetesObject(hpa as never)).violations, []);

  const web = stored("Deployment", objectName("web"))[0]!;
  t.is(web.spec.replicas, 3, "the count stays where it was until the HPA changes it");
  const owners = (web.metadata.managedFields ?? []).filter((entry) => entry.fieldsV1?.["f:spec"]?.["f:replicas"] !== undefined).map((entry) => entry.manager);
  t.deepEqual(owners, ["berth-scheduler-replicas-handover"], "berth-scheduler no longer owns spec.replicas");

  const handovers = api.requests.filter((request) => request.verb === "apply" && request.query.fieldManager === "berth-scheduler-replicas-handover").length;
  t.deepEqual(await deployer.applyApp(demoApp({ formation, autoscaleRules })), {
    applied: [],
    unchanged: [...DEMO_OBJECTS, `HorizontalPodAutoscaler/${NAMESPACE}/${objectName("web")}`, `PodDisruptionBudget/${NAMESPACE}/${objectName("web")}`],
    pruned: [],
    awaitingReplacement: [],
  });
  t.is(
    api.requests.filter((request) => request.verb === "apply" && request.query.fieldManager === "berth-scheduler-replicas-handover").length,
    handovers,
    "the handover happens once",
  );

  const unset = await deployer.applyApp(demoApp({ formation }));
  t.deepEqual(unset.pruned, [`HorizontalPodAutoscaler/${NAMESPACE}/${objectName("web")}`]);
  t.is(stored("Deployment", objectName("web"))[0]!.spec.replicas, 3, "without the rule berth owns the count again");
});

test("workloads berth named <app>-<type> before names carried a hash serve until their replacements have rolled out, then go; their Services go at once", async (t) => {
  const { deployer, api, writeStatus } = await setup(t);
  // What an older scheduler applied: the same objects (and labels) under `<app>-<type>`.
  const legacy = appObjects(demoApp(), DEMO_SETTINGS).map((object) => {
    const type = DEMO_PROCESSES.find((process) => object.metadata!.name === objectName(process.processType))?.processType;
    return type === undefined ? object : { ...object, metadata: { ...object.metadata, name: internalHostname("demo", type) } };
  });
  await applyObjectSet({ client: KubernetesObjectApi.makeApiClient(api.kubeConfig()), fieldManager: DEMO_SETTINGS.managedBy, objects: legacy });
  const types = ["admin-web", "api-tcp", "web", "worker"];
  const deployments = () =>
    api
      .objects({ kind: "Deployment", namespace: NAMESPACE })
      .map((object) => (object as Stored).metadata.name)
      .sort();

  // The new Services select the same pods as the old ones: those go at once, the old Deployments keep serving.
  const first = await deployer.applyApp(demoApp());
  t.deepEqual(first.awaitingReplacement, types);
  t.deepEqual([...first.pruned].sort(), [`Service/${NAMESPACE}/demo-admin-web`, `Service/${NAMESPACE}/demo-web`]);
  t.deepEqual(deployments(), [...types.map(objectName), ...types.map((type) => `demo-${type}`)].sort());

  // web rolls out: its old Deployment goes on the next apply, the others' stay.
  await writeStatus("/apis/apps/v1", "Deployment", objectName("web"), rolledOut);
  const second = await deployer.applyApp(demoApp());
  t.deepEqual(second.awaitingReplacement, ["admin-web", "api-tcp", "worker"]);
  t.deepEqual(second.pruned, [`Deployment/${NAMESPACE}/demo-web`]);

  for (const type of ["admin-web", "api-tcp", "worker"]) await writeStatus("/apis/apps/v1", "Deployment", objectName(type), rolledOut);
  const third = await deployer.applyApp(demoApp());
  t.deepEqual(third.awaitingReplacement, []);
  t.deepEqual(
    [...third.pruned].sort(),
    ["admin-web", "api-tcp", "worker"].map((type) => `Deployment/${NAMESPACE}/demo-${type}`),
  );
  t.deepEqual(deployments(), types.map(objectName).sort());
});

test("removing a type from the Procfile prunes its Deployment and Service", async (t) => {
  const { deployer, stored } = await setup(t);
  await deployer.applyApp(demoApp());
  const processes = DEMO_PROCESSES.filter((process) => process.processType !== "api-tcp");
  const result = await deployer.applyApp(demoApp({ version: 2, release: { processes } }));
  t.deepEqual(result.pruned, [`Deployment/${NAMESPACE}/${objectName("api-tcp")}`, `Service/${NAMESPACE}/demo-api-tcp`]);
  t.deepEqual(
    stored("Deployment").map((object) => object.metadata.name),
    [objectName("admin-web"), objectName("web"), objectName("worker")],
  );
  t.deepEqual(
    stored("Service").map((object) => object.metadata.name),
    [objectName("admin-web"), objectName("web")],
  );
});

test("deleting an app removes its objects and release Jobs and nothing of another app", async (t) => {
  const { deployer, api, stored, writeStatus, until } = await setup(t);
  await deployer.applyApp(demoApp());
  const other = demoApp({ release: { app: "blog" } });
  await deployer.applyApp(other);
  const job = deployer.runReleaseJob(demoApp());
  await until(() => stored("Job").length === 1);
  await writeStatus("/apis/batch/v1", "Job", "demo-release-v1", () => ({ conditions: [{ type: "Complete", status: "True" }] }));
  await job;
  const result = await deployer.deleteApp({ app: "demo", namespace: NAMESPACE });
  t.deepEqual([...result.pruned].sort(), [...DEMO_OBJECTS, `Job/${NAMESPACE}/demo-release-v1`].sort());
  t.deepEqual(
    api
      .objects({ namespace: NAMESPACE })
      .map((object) => `${object.kind}/${(object as Stored).metadata.name}`)
      .sort(),
    DEMO_OBJECTS.map((reference) => reference.replace(`${NAMESPACE}/`, ""))
      .map((reference) =>
        ["web", "admin-web", "worker", "api-tcp"].reduce(
          (name, type) => name.replace(objectName(type), processObjectName("blog", type)),
          reference.replace("demo-config", "blog-config").replace("Service/demo-api-tcp", "Service/blog-api-tcp"),
        ),
      )
      .sort(),
  );
});

test("the release Job succeeds when the cluster marks it Complete, and running it again does not run it twice", async (t) => {
  const { deployer, stored, writeStatus, until, api } = await setup(t);
  const running = deployer.runReleaseJob(demoApp({ version: 3 }));
  await until(() => stored("Job", "demo-release-v3").length === 1);
  const job = stored("Job", "demo-release-v3")[0]!;
  t.deepEqual((await validateKubernetesObject(job as never)).violations, []);
  await writeStatus("/apis/batch/v1", "Job", "demo-release-v3", () => ({ succeeded: 1, conditions: [{ type: "Complete", status: "True" }] }));
  t.like(await running, { jobName: "demo-release-v3", succeeded: true, exitCode: 0, timedOut: false, reason: "" });

  const creates = api.requests.filter((request) => request.verb === "apply" && request.status === 201).length;
  t.like(await deployer.runReleaseJob(demoApp({ version: 3 })), { succeeded: true });
  t.is(stored("Job", "demo-release-v3")[0]!.metadata.uid, job.metadata.uid, "the same Job");
  t.is(api.requests.filter((request) => request.verb === "apply" && request.status === 201).length, creates, "nothing was created");
});

const failures: [string, { reason: string; message: string }, { reason: string; timedOut: boolean }][] = [
  [
    "a failed pod",
    { reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" },
    { reason: "RELEASE_PHASE_FAILED", timedOut: false },
  ],
  [
    "its active deadline",
    { reason: "DeadlineExceeded", message: "Job was active longer than specified deadline" },
    { reason: "RELEASE_PHASE_TIMEOUT", timedOut: true },
  ],
];

for (const [label, condition, expected] of failures) {
  test(`the release Job fails on ${label}`, async (t) => {
    const { deployer, stored, writeStatus, until } = await setup(t);
    const running = deployer.runReleaseJob(demoApp());
    await until(() => stored("Job").length === 1);
    await writeStatus("/apis/batch/v1", "Job", "demo-release-v1", () => ({ failed: 1, conditions: [{ type: "Failed", status: "True", ...condition }] }));
    const result = await running;
    t.like(result, { succeeded: false, exitCode: null, ...expected });
    t.true(result.message.includes(condition.reason));
  });
}

test("a release Job the cluster never finishes is given up at the deadline and deleted", async (t) => {
  const { deployer, stored } = await setup(t);
  const result = await deployer.runReleaseJob(demoApp(), { deadline: new Date(Date.now() + 300) });
  t.like(result, { succeeded: false, timedOut: true, reason: "RELEASE_PHASE_TIMEOUT" });
  t.deepEqual(stored("Job"), []);
});

test("a release Job deleted while it runs is a failure", async (t) => {
  const { deployer, stored, until, api } = await setup(t);
  const running = deployer.runReleaseJob(demoApp());
  await until(() => stored("Job").length === 1);
  await fetch(`${api.url}/apis/batch/v1/namespaces/${NAMESPACE}/jobs/demo-release-v1`, { method: "DELETE" });
  t.like(await running, { succeeded: false, reason: "RELEASE_PHASE_FAILED", message: "the release Job was deleted before it finished" });
});

test("a failed release reports the pod's exit code and its last log lines", async (t) => {
  const lines = Array.from({ length: 30 }, (_, index) => `migration step ${index + 1}`);
  const { deployer, stored, writeStatus, until, api } = await setup(t, { logTailLines: 5 }, async (fake) => {
    const proxy = await createKubeApiProxy(fake, { "demo-release-v1-x2k9p": `${lines.join("\n")}\n` });
    t.teardown(() => proxy.close());
    return proxy.kubeConfig();
  });
  const running = deployer.runReleaseJob(demoApp());
  await until(() => stored("Job").length === 1);
  // Play the Job controller: its pod, ended with exit code 3.
  const created = await fetch(`${api.url}/api/v1/namespaces/${NAMESPACE}/pods`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      metadata: { name: "demo-release-v1-x2k9p", labels: { "job-name": "demo-release-v1" } },
      spec: { restartPolicy: "Never", containers: [{ name: "release", image: "demo" }] },
    }),
  });
  t.is(created.status, 201);
  await writeStatus("/api/v1", "Pod", "demo-release-v1-x2k9p", () => ({
    phase: "Failed",
    containerStatuses: [
      { name: "release", image: "demo", imageID: "", ready: false, restartCount: 0, state: { terminated: { exitCode: 3, reason: "Error" } } },
    ],
  }));
  await writeStatus("/apis/batch/v1", "Job", "demo-release-v1", () => ({
    failed: 1,
    conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded" }],
  }));
  t.like(await running, { succeeded: false, exitCode: 3, reason: "RELEASE_PHASE_FAILED", logTail: lines.slice(-5) });
});

test("waitForRollout resolves once every Deployment reports its replicas updated and available", async (t) => {
  const { deployer, stored, writeStatus } = await setup(t);
  await deployer.applyApp(demoApp());
  const waiting = deployer.waitForRollout({ app: "demo", namespace: NAMESPACE, progressDeadlineMs: 120_000 });
  for (const deployment of stored("Deployment")) await writeStatus("/apis/apps/v1", "Deployment", deployment.metadata.name, rolledOut);
  t.deepEqual(await waiting, { ok: true });
});

test("waitForRollout reports PROGRESS_DEADLINE_EXCEEDED naming the Deployments that did not roll out", async (t) => {
  const { deployer, stored, writeStatus } = await setup(t);
  await deployer.applyApp(demoApp());
  await writeStatus("/apis/apps/v1", "Deployment", objectName("web"), rolledOut);
  // Old status: the controller has not seen the latest generation yet.
  await writeStatus("/apis/apps/v1", "Deployment", objectName("worker"), (object) => ({
    ...rolledOut(object),
    observedGeneration: object.metadata.generation - 1,
  }));
  const outcome = await deployer.waitForRollout({ app: "demo", namespace: NAMESPACE, progressDeadlineMs: 2000 });
  t.like(outcome, { ok: false, reason: "PROGRESS_DEADLINE_EXCEEDED" });
  t.deepEqual(outcome.ok ? [] : [...outcome.pending].sort(), [objectName("admin-web"), objectName("api-tcp"), objectName("worker")]);
  t.true(
    (outcome.ok ? "" : outcome.message).startsWith("no replica became available for 2 s: "),
    "the cause, then each workload that did not roll out and why",
  );
  t.true((outcome.ok ? "" : outcome.message).includes(`${objectName("worker")} (spec not yet observed by the Deployment controller)`));
  t.is(stored("Deployment").length, 4);
});

test("a deadline passing before the cluster listed the app's workloads says so, rather than naming nothing", async (t) => {
  let proxy: Awaited<ReturnType<typeof createKubeApiProxy>> | undefined;
  const { deployer } = await setup(t, {}, async (fake) => {
    proxy = await createKubeApiProxy(fake);
    t.teardown(() => proxy!.close());
    return proxy.kubeConfig();
  });
  await deployer.applyApp(demoApp());
  proxy!.blockPaths(/\/(deployments|statefulsets)$/);
  const outcome = await deployer.waitForRollout({ app: "demo", namespace: NAMESPACE, progressDeadlineMs: 1000 });
  t.deepEqual(outcome, {
    ok: false,
    reason: "PROGRESS_DEADLINE_EXCEEDED",
    message: "no replica became available for 1 s: the app's deployments and statefulsets, which the cluster never listed",
    pending: [],
  });
});

test("waitForRollout reports the cluster's own ProgressDeadlineExceeded at once", async (t) => {
  const { deployer, writeStatus } = await setup(t);
  await deployer.applyApp(
    demoApp({ formation: [formationEntry("web", { replicas: 2 })], release: { processes: [{ processType: "web", command: "node web.js" }] } }),
  );
  const waiting = deployer.waitForRollout({ app: "demo", namespace: NAMESPACE, progressDeadlineMs: 600_000 });
  await writeStatus("/apis/apps/v1", "Deployment", objectName("web"), (object) => ({
    observedGeneration: object.metadata.generation,
    replicas: 3,
    updatedReplicas: 1,
    availableReplicas: 2,
    conditions: [
      { type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: 'ReplicaSet "demo-web-5d4f" has timed out progressing.' },
    ],
  }));
  const outcome = await waiting;
  t.like(outcome, { ok: false, reason: "PROGRESS_DEADLINE_EXCEEDED" });
  t.is(outcome.ok ? "" : outcome.message, `the cluster reports ProgressDeadlineExceeded: ${objectName("web")} (1 of 2 updated, 2 available, 3 in all)`);
});

test("waiting stops when the caller gives up", async (t) => {
  const { deployer } = await setup(t);
  await deployer.applyApp(demoApp());
  const controller = new AbortController();
  const waiting = deployer.waitForRollout({ app: "demo", namespace: NAMESPACE, progressDeadlineMs: 600_000, signal: controller.signal });
  const job = deployer.runReleaseJob(demoApp(), { signal: controller.signal });
  controller.abort(new Error("the rollout was cancelled"));
  await t.throwsAsync(waiting, { message: "the rollout was cancelled" });
  await t.throwsAsync(job, { message: "the rollout was cancelled" });
});
