import test from "ava";
import type { ExecutionContext } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { KubernetesObjectApi, Watch } from "@kubernetes/client-node";
import type { KubernetesObject } from "@kubernetes/client-node";
import { applyObjectSet, createLogger, internalHostname, processObjectName, teamNamespace } from "@berth/kit";
import { createFakeKubeApi } from "@berth/fake-kube-api";
import type { FakeKubeApiOptions } from "@berth/fake-kube-api";
import type { WatchEndpointsResponse } from "@berth/proto/scheduler/v1/scheduler";
import type { ProcessEndpoints } from "@berth/proto/type/v1/network";
import { ReplicaState } from "@berth/proto/type/v1/process";
import { RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import { readSchedulerConfig, startScheduler } from "../src/index.js";
import { createKubeApiProxy } from "./support/kube-api-proxy.js";
import { eventually, followRollout, isolation, kinds, schedulerClient, testEnvironment } from "./support/scheduler-harness.js";

const NAMESPACE = teamNamespace("berth-apps", "acme");
const PROCFILE = "web: node web.js\nworker: node worker.js\n";
type Json = Record<string, any>;

async function setup(t: ExecutionContext, options: FakeKubeApiOptions = {}, overrides: Record<string, string> = {}, proxied = false) {
  const api = await createFakeKubeApi(options);
  t.teardown(() => api.close());
  // Through a proxy, the test can cut the scheduler's connections to the cluster.
  const proxy = proxied ? await createKubeApiProxy(api) : undefined;
  if (proxy) t.teardown(() => proxy.close());
  const place = await isolation(t);
  const config = readSchedulerConfig(testEnvironment(place.dataDir, place.schema, { BERTH_ENGINE: "kubernetes", ...overrides }));
  const kubeConfig = proxy?.kubeConfig() ?? api.kubeConfig();
  const scheduler = await startScheduler(config, { logger: createLogger("scheduler", { level: "error" }), kubeConfig });
  t.teardown(() => scheduler.drain(1000));
  const client = schedulerClient(scheduler.url);
  const pods = (labelSelector: string) => api.objects({ kind: "Pod", namespace: NAMESPACE, labelSelector }) as Json[];
  const deploy = async (image: string, procfile = PROCFILE) => {
    const { rollout } = await client.createRelease({
      app: "shop",
      artifact: { source: { case: "image", value: `registry.example.com/acme/shop:${image}` } },
      procfile,
    });
    return followRollout(client, "shop", rollout!.id);
  };
  return { api, client, pods, deploy, proxy };
}

/** Follows WatchEndpoints; `latest()` is the shop's web set as the last message left it. */
function watchEndpoints(t: ExecutionContext, client: ReturnType<typeof schedulerClient>) {
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const sets = new Map<string, ProcessEndpoints>();
  const messages: WatchEndpointsResponse[] = [];
  void (async () => {
    for await (const message of client.watchEndpoints({ consumer: "test-router" }, { signal: controller.signal, timeoutMs: 0 })) {
      messages.push(message);
      for (const set of message.processes) sets.set(`${set.app}/${set.processType}`, set);
      await client.ackEndpoints({ consumer: "test-router", generation: message.generation });
    }
  })().catch(() => undefined);
  return { set: (key: string) => sets.get(key), messages };
}

test("on a cluster, ps shows the pods as replicas, ready counts follow readiness, and the endpoints are the pods' addresses from the EndpointSlices", async (t) => {
  const { api, client, pods, deploy } = await setup(t);
  const endpoints = watchEndpoints(t, client);
  await client.createApp({ team: "acme", name: "shop" });
  const first = await deploy("v1");
  t.is(first.rollout.state, RolloutState.SUCCEEDED, first.rollout.message);
  const progress = kinds(first.events);
  t.true(progress.includes("REPLICA_STARTED"), progress.join(","));
  t.true(progress.indexOf("REPLICA_HEALTHY") < progress.indexOf("ROLLOUT_SUCCEEDED"), "the pod became ready before the rollout succeeded");
  t.regex(first.events.find((event) => event.kind === RolloutEventKind.REPLICA_HEALTHY)!.message, /^ready at 10\.244\.\d+\.\d+:\d+$/);

  await client.updateFormation({
    app: "shop",
    changes: [
      { processType: "web", replicas: 3 },
      { processType: "worker", replicas: 1 },
    ],
  });
  const replicas = await eventually(async () => {
    const { replicas: listed } = await client.listReplicas({ app: "shop" });
    // Scaling web past 1 adds its spread constraints: a new ReplicaSet rolls out, and the old pod goes.
    const live = pods("app.kubernetes.io/component=web").map((pod) => pod.metadata.name as string);
    const listedWeb = listed.filter((replica) => replica.processType === "web").map((replica) => replica.name);
    const same = live.length === 3 && listedWeb.length === 3 && listedWeb.every((name) => live.includes(name));
    return same && listed.length === 4 && listed.every((replica) => replica.ready) ? listed : undefined;
  }, "three web pods and a worker ready, and nothing else");
  const web = replicas.filter((replica) => replica.processType === "web");
  const livePods = pods("app.kubernetes.io/component=web");
  t.deepEqual(web.map((replica) => replica.name).sort(), livePods.map((pod) => pod.metadata.name).sort(), "ps lists the web pods by name");
  for (const replica of web) {
    const pod = livePods.find((candidate) => candidate.metadata.name === replica.name)!;
    t.like(replica, { app: "shop", releaseVersion: 1, state: ReplicaState.UP, ready: true, restarts: 0, host: pod.status.podIP, isolation: "kubernetes" });
    t.truthy(replica.startedAt);
  }
  t.deepEqual(web.map((replica) => replica.zone).sort(), ["zone-a", "zone-b", "zone-c"], "each web pod in its node's zone");
  t.deepEqual(web.map((replica) => replica.index).sort(), [0, 1, 2]);
  const formation = (await client.getFormation({ app: "shop" })).processes;
  t.is(formation.find((process) => process.processType === "web")?.readyReplicas, 3);
  t.is(formation.find((process) => process.processType === "worker")?.readyReplicas, 1);

  // The router's view: the ready addresses of the web Service's EndpointSlice; a worker has none.
  const set = await eventually(async () => {
    const found = endpoints.set("shop/web");
    return found?.endpoints.length === 3 ? found : undefined;
  }, "three web endpoints");
  const slice = api.objects({
    kind: "EndpointSlice",
    namespace: NAMESPACE,
    labelSelector: `kubernetes.io/service-name=${processObjectName("shop", "web")}`,
  })[0] as Json;
  t.deepEqual(
    set.endpoints.map((endpoint) => [endpoint.replica, endpoint.host, endpoint.port, endpoint.zone]).sort(),
    (slice.endpoints as Json[]).map((endpoint) => [endpoint.targetRef.name, endpoint.addresses[0], slice.ports[0].port, endpoint.zone]).sort(),
  );
  t.is(set.team, "acme");
  t.is(endpoints.set("shop/worker"), undefined, "workers are not routed");

  // ps:delete deletes the pod; its ReplicaSet replaces it and the endpoints follow.
  const victim = web[0]!.name;
  await client.deleteReplica({ app: "shop", replica: victim });
  const after = await eventually(async () => {
    const { replicas: listed } = await client.listReplicas({ app: "shop", processType: "web" });
    const ready = listed.filter((replica) => replica.ready);
    return ready.length === 3 && !listed.some((replica) => replica.name === victim) ? ready : undefined;
  }, "the deleted pod replaced");
  t.false(
    pods("app.kubernetes.io/component=web").some((pod) => pod.metadata.name === victim),
    "the pod is gone from the cluster",
  );
  await eventually(async () => {
    const names = endpoints
      .set("shop/web")
      ?.endpoints.map((endpoint) => endpoint.replica)
      .sort();
    return JSON.stringify(names) === JSON.stringify(after.map((replica) => replica.name).sort()) ? true : undefined;
  }, "the endpoints without the deleted pod");
  const again = await t.throwsAsync(client.deleteReplica({ app: "shop", replica: victim }));
  t.is(ConnectError.from(again).code, Code.NotFound);
});

test("on a cluster, logs tail the pods' logs and follow them, a new pod's from its first line", async (t) => {
  const { api, client, pods, deploy } = await setup(t, { podBehaviour: () => ({ outcome: "ready", logs: ["listening on $PORT"] }) });
  await client.createApp({ team: "acme", name: "shop" });
  await deploy("v1");
  // The first pod's pull pins the release to its digest, which rolls the pod once more onto the same bytes: wait for that one.
  const [pod] = await eventually(async () => {
    const web = pods("app.kubernetes.io/component=web");
    const settled = web.length === 1 && web[0]!.spec.containers[0].image.includes("@sha256:");
    return settled && web[0]!.status?.conditions?.some((condition: Json) => condition.type === "Ready" && condition.status === "True") ? web : undefined;
  }, "the web pod on the pinned digest");
  const name = pod!.metadata.name as string;
  api.writePodLog(NAMESPACE, name, "GET / 200");
  const tail: string[] = [];
  for await (const { line } of client.streamLogs({ app: "shop", tailLines: 10 }))
    tail.push(`${line!.replica} ${line!.processType} v${line!.releaseVersion} ${line!.text}`);
  t.deepEqual(tail, [`${name} web v1 listening on $PORT`, `${name} web v1 GET / 200`]);

  const controller = new AbortController();
  const followed: string[] = [];
  const stream = client.streamLogs({ app: "shop", tailLines: 1, follow: true }, { signal: controller.signal, timeoutMs: 0 });
  const reading = (async () => {
    try {
      for await (const { line } of stream) followed.push(`${line!.replica === name ? "old" : "new"}: ${line!.text}`);
    } catch (error) {
      if (ConnectError.from(error).code !== Code.Canceled) throw error;
    }
  })();
  await eventually(async () => (followed.length >= 1 ? true : undefined), "the tail line");
  // Lines come as they are printed; a pod started later (a scale-up) is followed from its first line.
  await eventually(async () => {
    api.writePodLog(NAMESPACE, name, "GET /health 200");
    return followed.includes("old: GET /health 200") ? true : undefined;
  }, "a new line of the running pod");
  await client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 2 }] });
  await eventually(async () => (followed.includes("new: listening on $PORT") ? true : undefined), "the new pod's first line");
  controller.abort();
  await reading;
  t.is(followed[0], "old: GET / 200");
  t.is(followed.filter((line) => line === "old: GET / 200").length, 1, "the tail line is not sent twice");
});

test("on a cluster, a crash-looping release shows CrashLoopBackOff in ps and the progress stream, and is rolled back", async (t) => {
  const { api, client, pods, deploy } = await setup(t, {}, { BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "8000" });
  await client.createApp({ team: "acme", name: "shop" });
  await deploy("v1");
  // By release, not image: the first pod's pull pins the Deployment from the tag to a digest.
  api.setPodBehaviour((pod) =>
    (pod as Json).metadata.labels["app.kubernetes.io/version"] === "v2"
      ? { outcome: "crash-loop", delayMs: 50, logs: ["Error: cannot connect to the database"] }
      : undefined,
  );
  const broken = deploy("v2");
  const crashed = await eventually(async () => {
    const { replicas } = await client.listReplicas({ app: "shop", processType: "web" });
    // Between back-offs the container runs again (STARTING, the reason kept): wait for a back-off.
    return replicas.find((replica) => replica.releaseVersion === 2 && replica.lastExitReason === "CrashLoopBackOff" && replica.state === ReplicaState.CRASHED);
  }, "ps shows the v2 pod crash looping");
  t.is(crashed.state, ReplicaState.CRASHED);
  t.false(crashed.ready);
  const { rollout, events } = await broken;
  t.is(rollout.state, RolloutState.ROLLED_BACK);
  t.is(rollout.reason, "PROGRESS_DEADLINE_EXCEEDED");
  const stalled = events.find((event) => event.reason === "PROGRESS_DEADLINE_EXCEEDED")!;
  t.regex(stalled.message, /pod shop-web-\S+ is CrashLoopBackOff/);
  t.deepEqual(stalled.logTail, ["Error: cannot connect to the database"], "the crashed container's last lines");
  t.regex((await client.getRelease({ app: "shop", version: 2 })).release!.failureMessage, /CrashLoopBackOff/);
  const unhealthy = events.find((event) => event.kind === RolloutEventKind.REPLICA_UNHEALTHY && event.reason === "CrashLoopBackOff");
  t.truthy(unhealthy, kinds(events).join(","));
  t.deepEqual(unhealthy!.logTail, ["Error: cannot connect to the database"]);
  // v1 serves on: its pod never left, v2's are gone.
  await eventually(async () => {
    const live = pods("app.kubernetes.io/component=web");
    return live.length === 1 && live[0]!.metadata.labels["app.kubernetes.io/version"] === "v1" ? true : undefined;
  }, "v1's pod alone");
});

test("on a cluster, image pull errors and OOM kills are the reasons ps shows", async (t) => {
  const { api, client, deploy } = await setup(t, { podTimings: { restartBackoffMs: 2000 } }, { BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "60000" });
  await client.createApp({ team: "acme", name: "shop" });
  await deploy("v1");
  await client.updateFormation({ app: "shop", changes: [{ processType: "worker", replicas: 1 }] });
  await eventually(
    async () => ((await client.getFormation({ app: "shop" })).processes.every((process) => process.readyReplicas === 1) ? true : undefined),
    "v1 ready",
  );
  api.setPodBehaviour((pod) => {
    const labels = (pod as Json).metadata.labels;
    if (labels["app.kubernetes.io/version"] !== "v2") return undefined;
    return labels["app.kubernetes.io/component"] === "web" ? { outcome: "image-pull-error" } : { outcome: "oom-killed", delayMs: 50 };
  });
  void deploy("v2").catch(() => undefined);
  const reasons = await eventually(async () => {
    const { replicas } = await client.listReplicas({ app: "shop" });
    const web = replicas.find((replica) => replica.processType === "web" && replica.releaseVersion === 2);
    const worker = replicas.find((replica) => replica.processType === "worker" && replica.releaseVersion === 2);
    return web?.lastExitReason === "ImagePullBackOff" && worker?.lastExitReason === "OOMKilled" ? { web, worker } : undefined;
  }, "the pull error and the OOM kill in ps");
  t.is(reasons.web.state, ReplicaState.FAILED);
  t.is(reasons.worker.state, ReplicaState.CRASHED);
  t.true(reasons.worker.restarts >= 1);
  // The v1 pods serve on meanwhile.
  const { replicas } = await client.listReplicas({ app: "shop" });
  t.deepEqual(
    replicas
      .filter((replica) => replica.releaseVersion === 1)
      .map((replica) => [replica.processType, replica.ready])
      .sort(),
    [
      ["web", true],
      ["worker", true],
    ],
  );
});

test("on a cluster, ps:restart restarts the Deployment as kubectl rollout restart does: new pods, the old ones gone, progress as they become ready", async (t) => {
  const { api, client, pods, deploy } = await setup(t);
  await client.createApp({ team: "acme", name: "shop" });
  await deploy("v1");
  await client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 2 }] });
  await eventually(
    async () =>
      (await client.listReplicas({ app: "shop", processType: "web" })).replicas.filter((replica) => replica.ready).length === 2 &&
      pods("app.kubernetes.io/component=web").length === 2
        ? true
        : undefined,
    "two web pods",
  );
  const before = pods("app.kubernetes.io/component=web").map((pod) => pod.metadata.name as string);
  const requested = Date.now();
  const { rollout } = await client.restartProcess({ app: "shop", processType: "web" });
  const restarted = await followRollout(client, "shop", rollout!.id);
  t.is(restarted.rollout.state, RolloutState.SUCCEEDED, restarted.rollout.message);
  const deployment = api.objects({ kind: "Deployment", namespace: NAMESPACE, name: processObjectName("shop", "web") })[0] as Json;
  const restartedAt = Date.parse(deployment.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]);
  t.true(restartedAt >= requested - 1000 && restartedAt <= Date.now(), "the annotation holds the time of the restart");
  const after = await eventually(async () => {
    const live = pods("app.kubernetes.io/component=web");
    return live.length === 2 && live.every((pod) => !before.includes(pod.metadata.name)) ? live.map((pod) => pod.metadata.name as string) : undefined;
  }, "two new web pods, the old ones gone");
  const healthy = restarted.events.filter((event) => event.kind === RolloutEventKind.REPLICA_HEALTHY).map((event) => event.replica);
  t.deepEqual(healthy.sort(), [...after].sort(), "each new pod's readiness is a step of the restart");
  t.true(restarted.events.some((event) => event.kind === RolloutEventKind.REPLICA_STOPPED && before.includes(event.replica)));
  // Unchanged afterwards: the next passes apply the same annotation, so the Deployment does not roll again.
  t.is(
    (api.objects({ kind: "Deployment", namespace: NAMESPACE, name: processObjectName("shop", "web") })[0] as Json).metadata.generation,
    deployment.metadata.generation,
  );
});

test("on a cluster, run is a Job of the release whose log streams back and whose exit code ends it; the Job goes afterwards", async (t) => {
  const { api, client, deploy } = await setup(t);
  await client.createApp({ team: "acme", name: "shop" });
  await deploy("v1");
  api.setPodBehaviour((pod) => {
    const container = (pod as Json).spec.containers[0];
    if (container.name !== "run") return undefined;
    return container.command.at(-1) === "migrate"
      ? { outcome: "succeed", delayMs: 300, logs: ["migrating", "done"] }
      : { outcome: "fail", exitCode: 3, delayMs: 100, logs: ["no such task"] };
  });
  const oneOffJobs = () => (api.objects({ kind: "Job", namespace: NAMESPACE }) as Json[]).filter((job) => job.metadata.name.startsWith("shop-run-"));
  const run = async (command: string) => {
    const outputs: string[] = [];
    let exit: { code: number; reason: string } | undefined;
    let jobs = 0;
    for await (const { output } of client.runCommand({ app: "shop", command }, { timeoutMs: 30_000 })) {
      if (output?.output.case === "stdout") {
        outputs.push(Buffer.from(output.output.value).toString());
        jobs = oneOffJobs().length;
      }
      if (output?.output.case === "exit") exit = { code: output.output.value.code, reason: output.output.value.reason };
    }
    return { text: outputs.join(""), exit, jobs };
  };
  const migrated = await run("migrate");
  t.is(migrated.text, "migrating\ndone\n");
  t.deepEqual(migrated.exit, { code: 0, reason: "" });
  t.is(migrated.jobs, 1, "a Job while it runs");
  const failed = await run("unknown-task");
  t.deepEqual(failed.exit, { code: 3, reason: "" });
  t.is(failed.text, "no such task\n");
  await eventually(async () => (oneOffJobs().length === 0 ? true : undefined), "the one-off Jobs deleted");
  const { replicas } = await client.listReplicas({ app: "shop" });
  t.false(
    replicas.some((replica) => replica.name.includes("-run-")),
    "a one-off is never a replica",
  );
});

test("on a cluster, ps:exec runs in the replica's pod through the exec subresource: its output streams back with the pod's environment and its exit code ends it", async (t) => {
  const { api, client, pods, deploy } = await setup(t);
  await client.createApp({ team: "acme", name: "shop" });
  await deploy("v1");
  // The pods roll once more onto the pinned digest: a replica of that rollout, running.
  const web = await eventually(async () => {
    const running = pods("app.kubernetes.io/component=web").filter(
      (pod) => !pod.metadata.deletionTimestamp && pod.status?.phase === "Running" && pod.spec.containers[0].image.includes("@sha256:"),
    );
    const { replicas } = await client.listReplicas({ app: "shop" });
    return replicas.find((replica) => running.some((pod) => pod.metadata.name === replica.name));
  }, "a running web replica of the pinned image");
  const exec = async (command: string) => {
    const text = { stdout: "", stderr: "" };
    let started = "";
    let exit: { code: number; reason: string } | undefined;
    for await (const { output } of client.runCommand({ app: "shop", replica: web.name, command }, { timeoutMs: 30_000 })) {
      if (output?.output.case === "started") started = output.output.value;
      if (output?.output.case === "stdout" || output?.output.case === "stderr") text[output.output.case] += Buffer.from(output.output.value).toString();
      if (output?.output.case === "exit") exit = { code: output.output.value.code, reason: output.output.value.reason };
    }
    return { started, ...text, exit };
  };
  const ran = await exec('echo "$BERTH_REPLICA_NAME $PORT"; echo to-stderr >&2; exit 3');
  t.is(ran.started, web.name);
  t.is(ran.stdout, `${web.name} ${web.port}\n`, "the pod's own environment");
  t.is(ran.stderr, "to-stderr\n");
  t.deepEqual(ran.exit, { code: 3, reason: "" });
  t.deepEqual((await exec("true")).exit, { code: 0, reason: "" });
  t.true(
    api.requests.some((request) => request.path === `/api/v1/namespaces/${NAMESPACE}/pods/${web.name}/exec`),
    "through the pod's exec subresource",
  );

  // The fake cluster runs the command as a host process: leaving must end it there.
  const leave = new AbortController();
  let pid = 0;
  await t.throwsAsync(async () => {
    for await (const { output } of client.runCommand({ app: "shop", replica: web.name, command: "echo $$; exec sleep 600" }, { signal: leave.signal })) {
      if (output?.output.case === "stdout") {
        pid = Number(Buffer.from(output.output.value).toString());
        leave.abort();
      }
    }
  });
  t.true(pid > 0);
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await eventually(async () => (alive() ? undefined : true), "the command stopped once its caller left");
});

test("on a cluster, ps catches up after the pod watch was cut off and its history expired: the informer lists the pods again", async (t) => {
  const { api, client, pods, deploy, proxy } = await setup(t, { watchHistoryLimit: 5 }, {}, true);
  await client.createApp({ team: "acme", name: "shop" });
  await deploy("v1");
  const listsBefore = api.requests.filter((request) => request.verb === "list" && request.path.endsWith("/pods")).length;
  proxy!.blockWatches(true);
  proxy!.dropConnections();
  // Changes the scheduler cannot watch: more than the watch history keeps.
  await client.updateFormation({
    app: "shop",
    changes: [
      { processType: "web", replicas: 3 },
      { processType: "worker", replicas: 1 },
    ],
  });
  await eventually(async () => (pods("app.kubernetes.io/component=web").filter((pod) => pod.status?.podIP).length === 3 ? true : undefined), "three web pods");
  proxy!.blockWatches(false);
  await eventually(async () => {
    const { replicas } = await client.listReplicas({ app: "shop" });
    const live = [...pods("app.kubernetes.io/component=web"), ...pods("app.kubernetes.io/component=worker")].map((pod) => pod.metadata.name).sort();
    return replicas.length === 4 &&
      replicas.every((replica) => replica.ready) &&
      JSON.stringify(replicas.map((replica) => replica.name).sort()) === JSON.stringify(live)
      ? true
      : undefined;
  }, "ps as the cluster is");
  t.true(
    api.requests.filter((request) => request.verb === "list" && request.path.endsWith("/pods")).length > listsBefore,
    "the pods were listed again after 410 Gone",
  );
});

test("on a cluster, workloads an older berth named <app>-<type> serve until their replacements have rolled out, then go with no further change", async (t) => {
  const api = await createFakeKubeApi();
  t.teardown(() => api.close());
  const place = await isolation(t);
  const config = readSchedulerConfig(testEnvironment(place.dataDir, place.schema, { BERTH_ENGINE: "kubernetes" }));
  const start = () => startScheduler(config, { logger: createLogger("scheduler", { level: "error" }), kubeConfig: api.kubeConfig() });
  const deployments = () => api.objects({ kind: "Deployment", namespace: NAMESPACE }) as Json[];
  const before = await start();
  const client = schedulerClient(before.url);
  await client.createApp({ team: "acme", name: "shop" });
  const { rollout } = await client.createRelease({
    app: "shop",
    artifact: { source: { case: "image", value: "registry.example.com/acme/shop:v1" } },
    procfile: PROCFILE,
  });
  t.is((await followRollout(client, "shop", rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  await before.close();

  // What an older berth left running: the same Deployments under `<app>-<type>`, rolled out.
  const objects = KubernetesObjectApi.makeApiClient(api.kubeConfig());
  const legacy = deployments().map((deployment) => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: internalHostname("shop", deployment.metadata.labels["app.kubernetes.io/component"]),
      namespace: NAMESPACE,
      labels: deployment.metadata.labels,
    },
    spec: deployment.spec,
  }));
  for (const deployment of deployments()) await objects.delete(deployment as KubernetesObject);
  await applyObjectSet({ client: objects, fieldManager: "berth-scheduler", objects: legacy });
  const legacyNames = legacy.map((deployment) => deployment.metadata.name).sort();
  await eventually(
    async () =>
      deployments().length === 2 && deployments().every((deployment) => deployment.status?.availableReplicas === deployment.spec.replicas) ? true : undefined,
    "the old Deployments rolled out alone",
  );

  // Each old Deployment's deletion as it happens, with its replacement's status at that moment.
  const seen = new Map<string, Json>();
  const replacedWhenDeleted: [string, boolean][] = [];
  const watch = await new Watch(api.kubeConfig()).watch(
    `/apis/apps/v1/namespaces/${NAMESPACE}/deployments`,
    {},
    (type: string, deployment: Json) => {
      seen.set(deployment.metadata.name, deployment);
      if (type !== "DELETED" || !legacyNames.includes(deployment.metadata.name)) return;
      const replacement = seen.get(processObjectName("shop", deployment.metadata.labels["app.kubernetes.io/component"]));
      const available =
        replacement?.status?.observedGeneration === replacement?.metadata.generation && replacement?.status?.availableReplicas === replacement?.spec.replicas;
      replacedWhenDeleted.push([deployment.metadata.name, available]);
    },
    () => undefined,
  );
  t.teardown(() => watch.abort());

  const after = await start();
  t.teardown(() => after.drain(1000));
  await eventually(async () => (replacedWhenDeleted.length === 2 ? true : undefined), "the old Deployments pruned", 60_000);
  t.deepEqual(
    replacedWhenDeleted.sort(),
    legacyNames.map((name) => [name, true]),
    "each went only once its replacement was available",
  );
  t.deepEqual(
    deployments()
      .map((deployment) => deployment.metadata.name)
      .sort(),
    ["web", "worker"].map((type) => processObjectName("shop", type)).sort(),
  );
});
