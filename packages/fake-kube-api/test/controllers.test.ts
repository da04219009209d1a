import test from "ava";
import { KubernetesObjectApi, PatchStrategy, Watch, type KubernetesObject } from "@kubernetes/client-node";
import { createFakeKubeApi, type FakeKubeApi, type FakeKubeApiOptions } from "../src/index.js";

type Json = Record<string, any>;

async function setup(t: { teardown(fn: () => unknown): void }, options: FakeKubeApiOptions = {}) {
  const api = await createFakeKubeApi(options);
  t.teardown(() => api.close());
  const client = KubernetesObjectApi.makeApiClient(api.kubeConfig());
  const apply = (object: Json) => client.patch(object as KubernetesObject, undefined, undefined, "test", true, PatchStrategy.ServerSideApply) as Promise<Json>;
  return { api, client, apply };
}

/** Polls `read` until it returns something other than undefined (the simulation runs on timers). */
async function eventually<T>(read: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function deployment(name: string, options: { replicas?: number; image?: string; strategy?: Json; progressDeadlineSeconds?: number } = {}): Json {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: "apps" },
    spec: {
      replicas: options.replicas ?? 2,
      selector: { matchLabels: { app: name } },
      ...(options.strategy ? { strategy: options.strategy } : {}),
      ...(options.progressDeadlineSeconds ? { progressDeadlineSeconds: options.progressDeadlineSeconds } : {}),
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "main", image: options.image ?? "app:v1", ports: [{ name: "http", containerPort: 8080 }] }] },
      },
    },
  };
}

const podsOf = (api: FakeKubeApi, app: string) => api.objects({ kind: "Pod", namespace: "apps", labelSelector: `app=${app}` });
const isReady = (pod: Json) => pod.status?.conditions?.some((c: Json) => c.type === "Ready" && c.status === "True") === true;
const deploymentStatus = (api: FakeKubeApi, name: string) => api.objects({ kind: "Deployment", namespace: "apps", name })[0]?.status as Json | undefined;
const rolledOut = (api: FakeKubeApi, name: string, replicas: number) => () => {
  const status = deploymentStatus(api, name);
  return status?.updatedReplicas === replicas && status?.availableReplicas === replicas && status?.replicas === replicas ? status : undefined;
};

/** Every pod change of the namespace through a real watch, for checking what held at each step. */
async function watchPods(t: { teardown(fn: () => unknown): void }, api: FakeKubeApi, onChange: (pods: Map<string, Json>, type: string, pod: Json) => void) {
  const pods = new Map<string, Json>();
  const watch = await new Watch(api.kubeConfig()).watch(
    "/api/v1/namespaces/apps/pods",
    {},
    (type: string, pod: Json) => {
      if (type === "DELETED") pods.delete(pod.metadata.name);
      else pods.set(pod.metadata.name, pod);
      onChange(pods, type, pod);
    },
    () => undefined,
  );
  t.teardown(() => watch.abort());
  return pods;
}

test("a Deployment makes a ReplicaSet whose pods are scheduled over the zones, become ready, and are reported in status", async (t) => {
  const { api, apply } = await setup(t);
  await apply(deployment("web", { replicas: 3 }));
  const status = await eventually(rolledOut(api, "web", 3), "three available replicas");
  t.is(status.readyReplicas, 3);
  t.true(status.conditions.some((c: Json) => c.type === "Available" && c.status === "True"));
  t.true(status.conditions.some((c: Json) => c.type === "Progressing" && c.reason === "NewReplicaSetAvailable"));
  const [replicaSet] = api.objects({ kind: "ReplicaSet", namespace: "apps" }) as Json[];
  t.regex(replicaSet!.metadata.name, /^web-[a-z0-9]+$/);
  t.is(replicaSet!.metadata.annotations["deployment.kubernetes.io/revision"], "1");
  const pods = podsOf(api, "web") as Json[];
  t.true(
    pods.every(
      (pod) =>
        pod.metadata.ownerReferences[0].uid === replicaSet!.metadata.uid &&
        pod.metadata.labels["pod-template-hash"] === replicaSet!.metadata.labels["pod-template-hash"],
    ),
  );
  t.deepEqual(pods.map((pod) => pod.spec.nodeName).sort(), ["node-a", "node-b", "node-c"], "one pod per zone");
  t.true(pods.every((pod) => /^10\.244\.\d+\.\d+$/.test(pod.status.podIP)));
});

test("a rolling update never exceeds maxSurge nor drops below replicas - maxUnavailable", async (t) => {
  const { api, apply } = await setup(t);
  await apply(deployment("web", { replicas: 4, strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } }));
  await eventually(rolledOut(api, "web", 4), "the first rollout");
  // Follow every pod change through a real watch and check the bounds at each step.
  const violations: string[] = [];
  let sawSurge = false;
  const pods = await watchPods(t, api, (seen) => {
    const live = [...seen.values()].filter((p) => p.metadata.deletionTimestamp === undefined);
    if (live.length > 5) violations.push(`${live.length} pods`);
    if (live.length === 5) sawSurge = true;
    if (seen.size >= 4 && live.filter(isReady).length < 4) violations.push(`${live.filter(isReady).length} ready`);
  });
  await eventually(() => (pods.size >= 4 ? true : undefined), "the watch to list the pods");
  await apply(deployment("web", { replicas: 4, image: "app:v2", strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } }));
  await eventually(() => {
    const live = podsOf(api, "web") as Json[];
    return live.length === 4 &&
      live.every((pod) => pod.spec.containers[0].image === "app:v2" && isReady(pod)) &&
      deploymentStatus(api, "web")?.updatedReplicas === 4
      ? true
      : undefined;
  }, "the second rollout");
  t.deepEqual(violations, []);
  t.true(sawSurge, "the rollout used its one surge pod");
  const replicaSets = api.objects({ kind: "ReplicaSet", namespace: "apps" }) as Json[];
  t.deepEqual(replicaSets.map((rs) => [rs.spec.replicas, rs.metadata.annotations["deployment.kubernetes.io/revision"]]).sort(), [
    [0, "1"],
    [4, "2"],
  ]);
});

test("going back to an earlier template reuses its ReplicaSet as the newest revision", async (t) => {
  const { api, apply } = await setup(t);
  await apply(deployment("web", { replicas: 1 }));
  await eventually(rolledOut(api, "web", 1), "v1");
  await apply(deployment("web", { replicas: 1, image: "app:v2" }));
  await eventually(
    () =>
      podsOf(api, "web").length === 1 && (podsOf(api, "web")[0] as Json).spec.containers[0].image === "app:v2" && rolledOut(api, "web", 1)() ? true : undefined,
    "v2",
  );
  await apply(deployment("web", { replicas: 1 }));
  await eventually(
    () =>
      podsOf(api, "web").length === 1 && (podsOf(api, "web")[0] as Json).spec.containers[0].image === "app:v1" && rolledOut(api, "web", 1)() ? true : undefined,
    "back to v1",
  );
  const replicaSets = api.objects({ kind: "ReplicaSet", namespace: "apps" }) as Json[];
  t.is(replicaSets.length, 2);
  const v1 = replicaSets.find((rs) => rs.spec.template.spec.containers[0].image === "app:v1")!;
  t.is(v1.metadata.annotations["deployment.kubernetes.io/revision"], "3");
  t.is((api.objects({ kind: "Deployment", name: "web" })[0] as Json).metadata.annotations["deployment.kubernetes.io/revision"], "3");
});

test("a new version that never becomes ready stalls the rollout, keeps the old pods and exceeds the progress deadline", async (t) => {
  const { api, apply } = await setup(t, {
    podBehaviour: (pod) => ((pod as Json).spec.containers[0].image === "app:broken" ? { outcome: "never-ready" } : undefined),
  });
  const strategy = { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
  await apply(deployment("web", { replicas: 2, strategy, progressDeadlineSeconds: 1 }));
  await eventually(rolledOut(api, "web", 2), "v1");
  await apply(deployment("web", { replicas: 2, image: "app:broken", strategy, progressDeadlineSeconds: 1 }));
  const status = await eventually(() => {
    const current = deploymentStatus(api, "web");
    return current?.conditions?.some((c: Json) => c.type === "Progressing" && c.reason === "ProgressDeadlineExceeded") ? current : undefined;
  }, "ProgressDeadlineExceeded");
  t.is(status.availableReplicas, 2);
  const images = (podsOf(api, "web") as Json[]).map((pod) => [pod.spec.containers[0].image, isReady(pod)]).sort();
  t.deepEqual(images, [
    ["app:broken", false],
    ["app:v1", true],
    ["app:v1", true],
  ]);
});

test("Recreate scales the old pods away before the new ones start", async (t) => {
  const { api, apply } = await setup(t);
  await apply(deployment("web", { replicas: 2, strategy: { type: "Recreate" } }));
  await eventually(rolledOut(api, "web", 2), "v1");
  const images = new Set<string>();
  let mixed = false;
  const watch = await new Watch(api.kubeConfig()).watch(
    "/api/v1/namespaces/apps/pods",
    {},
    () => {
      const present = new Set((podsOf(api, "web") as Json[]).map((pod) => pod.spec.containers[0].image));
      for (const image of present) images.add(image);
      if (present.size > 1) mixed = true;
    },
    () => undefined,
  );
  t.teardown(() => watch.abort());
  await apply(deployment("web", { replicas: 2, image: "app:v2", strategy: { type: "Recreate" } }));
  await eventually(
    () => ((podsOf(api, "web") as Json[]).filter((pod) => pod.spec.containers[0].image === "app:v2" && isReady(pod)).length === 2 ? true : undefined),
    "v2",
  );
  t.false(mixed, "old and new pods never ran together");
});

test("crash loops, OOM kills and image pull errors show in the container status the way a kubelet reports them", async (t) => {
  const outcomes: Record<string, any> = { crash: "crash-loop", oom: "oom-killed", pull: "image-pull-error" };
  const { api, apply } = await setup(t, {
    podBehaviour: (pod) => ({ outcome: outcomes[(pod as Json).metadata.labels.app] }),
    podTimings: { exitMs: 20, restartBackoffMs: 40 },
  });
  for (const name of Object.keys(outcomes)) await apply(deployment(name, { replicas: 1 }));
  const crash = await eventually(() => {
    const status = (podsOf(api, "crash")[0] as Json | undefined)?.status?.containerStatuses?.[0];
    return status?.restartCount >= 2 ? status : undefined;
  }, "two restarts");
  t.is(crash.lastState.terminated.reason, "Error");
  t.is(crash.lastState.terminated.exitCode, 1);
  const oom = await eventually(() => {
    const status = (podsOf(api, "oom")[0] as Json | undefined)?.status?.containerStatuses?.[0];
    return status?.lastState?.terminated ? status : undefined;
  }, "an OOM kill");
  t.is(oom.lastState.terminated.reason, "OOMKilled");
  t.is(oom.lastState.terminated.exitCode, 137);
  await eventually(
    () => ((podsOf(api, "crash")[0] as Json).status.containerStatuses[0].state.waiting?.reason === "CrashLoopBackOff" ? true : undefined),
    "CrashLoopBackOff",
  );
  const pull = await eventually(() => {
    const status = (podsOf(api, "pull")[0] as Json | undefined)?.status?.containerStatuses?.[0];
    return status?.state?.waiting?.reason === "ImagePullBackOff" ? status : undefined;
  }, "ImagePullBackOff");
  t.regex(pull.state.waiting.message, /app:v1/);
  t.is(deploymentStatus(api, "crash")?.availableReplicas ?? 0, 0);
});

test("EndpointSlices list a Service's pods with ready, serving and terminating conditions, zone and resolved named ports", async (t) => {
  const { api, apply } = await setup(t, {
    podBehaviour: (pod) => ((pod as Json).metadata.labels.version === "slow" ? { outcome: "never-ready" } : undefined),
    podTimings: { terminationMs: 300 },
  });
  await apply(deployment("web", { replicas: 2 }));
  await apply({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: "apps" },
    spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
  });
  const slice = await eventually(() => {
    const found = api.objects({ kind: "EndpointSlice", namespace: "apps", labelSelector: "kubernetes.io/service-name=web" })[0] as Json | undefined;
    return found?.endpoints?.length === 2 && found.endpoints.every((e: Json) => e.conditions.ready) ? found : undefined;
  }, "two ready endpoints");
  t.deepEqual(slice.ports, [{ name: "http", port: 8080, protocol: "TCP" }]);
  t.is(slice.addressType, "IPv4");
  t.is(slice.metadata.labels["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
  t.true(slice.endpoints.every((e: Json) => e.zone?.startsWith("zone-") && e.nodeName?.startsWith("node-") && e.targetRef.kind === "Pod"));
  const pods = podsOf(api, "web") as Json[];
  t.deepEqual(slice.endpoints.map((e: Json) => e.addresses[0]).sort(), pods.map((pod) => pod.status.podIP).sort());

  // A deleted pod is terminating (not ready) in the slice until the kubelet has stopped it.
  const victim = pods[0]!;
  await fetch(`${api.url}/api/v1/namespaces/apps/pods/${victim.metadata.name}`, { method: "DELETE" });
  const terminating = await eventually(() => {
    const found = api.objects({ kind: "EndpointSlice", namespace: "apps" })[0] as Json;
    return found.endpoints.find((e: Json) => e.targetRef.name === victim.metadata.name && e.conditions.terminating);
  }, "a terminating endpoint");
  t.false(terminating.conditions.ready);
  await eventually(() => {
    const found = api.objects({ kind: "EndpointSlice", namespace: "apps" })[0] as Json;
    return !found.endpoints.some((e: Json) => e.targetRef.name === victim.metadata.name) && found.endpoints.filter((e: Json) => e.conditions.ready).length === 2
      ? true
      : undefined;
  }, "the replacement ready and the deleted pod gone");
});

test("a Job completes when its pods succeed and fails past its backoffLimit", async (t) => {
  const { api, apply } = await setup(t, {
    podBehaviour: (pod) => ({ outcome: (pod as Json).metadata.labels["job-name"] === "bad" ? "fail" : "succeed", logs: ["migrating"] }),
    podTimings: { exitMs: 20 },
  });
  const job = (name: string): Json => ({
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: "apps" },
    spec: { backoffLimit: 1, template: { spec: { restartPolicy: "Never", containers: [{ name: "main", image: "app:v1" }] } } },
  });
  await apply(job("good"));
  await apply(job("bad"));
  const good = await eventually(
    () =>
      (api.objects({ kind: "Job", name: "good" })[0] as Json).status?.conditions?.some((c: Json) => c.type === "Complete")
        ? (api.objects({ kind: "Job", name: "good" })[0] as Json)
        : undefined,
    "Complete",
  );
  t.is(good.status.succeeded, 1);
  t.truthy(good.status.completionTime);
  const bad = await eventually(
    () =>
      (api.objects({ kind: "Job", name: "bad" })[0] as Json).status?.conditions?.some((c: Json) => c.type === "Failed")
        ? (api.objects({ kind: "Job", name: "bad" })[0] as Json)
        : undefined,
    "Failed",
  );
  t.is(bad.status.failed, 2, "the first try and one retry");
  t.is(bad.status.conditions.find((c: Json) => c.type === "Failed").reason, "BackoffLimitExceeded");
  const pod = api.objects({ kind: "Pod", labelSelector: "job-name=good" })[0] as Json;
  t.is(pod.status.phase, "Succeeded");
  t.is(await (await fetch(`${api.url}/api/v1/namespaces/apps/pods/${pod.metadata.name}/log`)).text(), "migrating\n");
});

test("an HPA keeps its target within min and max and scales on the utilization a metrics server would report", async (t) => {
  const { api, apply } = await setup(t);
  await apply(deployment("web", { replicas: 1 }));
  await apply({
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: { name: "web", namespace: "apps" },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
      minReplicas: 2,
      maxReplicas: 5,
      metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 50 } } }],
    },
  });
  await eventually(rolledOut(api, "web", 2), "scaled up to minReplicas");
  const hpa = api.objects({ kind: "HorizontalPodAutoscaler" })[0] as Json;
  t.is(hpa.status.desiredReplicas, 2);
  t.is(hpa.status.conditions.find((c: Json) => c.type === "ScalingActive").status, "False");
  api.setUtilization("apps", "web", 200);
  await eventually(rolledOut(api, "web", 5), "scaled to maxReplicas");
  const limited = (api.objects({ kind: "HorizontalPodAutoscaler" })[0] as Json).status;
  t.is(limited.conditions.find((c: Json) => c.type === "ScalingLimited").reason, "TooManyReplicas");
});

test("deleting a Deployment garbage-collects its ReplicaSets and pods", async (t) => {
  const { api, apply } = await setup(t, { podTimings: { terminationMs: 10 } });
  await apply(deployment("web", { replicas: 2 }));
  await eventually(rolledOut(api, "web", 2), "rolled out");
  await fetch(`${api.url}/apis/apps/v1/namespaces/apps/deployments/web`, { method: "DELETE" });
  await eventually(() => (api.objects({ kind: "ReplicaSet" }).length === 0 && api.objects({ kind: "Pod" }).length === 0 ? true : undefined), "nothing left");
  t.deepEqual([api.objects({ kind: "Deployment" }), api.objects({ kind: "ReplicaSet" }), api.objects({ kind: "Pod" })], [[], [], []]);
});

test("the scale subresource reads and writes a Deployment's replicas", async (t) => {
  const { api, apply } = await setup(t);
  await apply(deployment("web", { replicas: 1 }));
  await eventually(rolledOut(api, "web", 1), "rolled out");
  const scale = (await (await fetch(`${api.url}/apis/apps/v1/namespaces/apps/deployments/web/scale`)).json()) as Json;
  t.like(scale, { kind: "Scale", apiVersion: "autoscaling/v1", spec: { replicas: 1 }, status: { replicas: 1, selector: "app=web" } });
  const patched = await fetch(`${api.url}/apis/apps/v1/namespaces/apps/deployments/web/scale`, {
    method: "PATCH",
    headers: { "content-type": "application/merge-patch+json" },
    body: JSON.stringify({ spec: { replicas: 3 } }),
  });
  t.is(patched.status, 200);
  await eventually(rolledOut(api, "web", 3), "three replicas");
  const negative = await fetch(`${api.url}/apis/apps/v1/namespaces/apps/deployments/web/scale`, {
    method: "PATCH",
    headers: { "content-type": "application/merge-patch+json" },
    body: JSON.stringify({ spec: { replicas: -1 } }),
  });
  t.is(negative.status, 422);
});

test("a pod's log read with sinceTime has the lines from that second on; sinceTime with sinceSeconds is refused as the API server does", async (t) => {
  const { api, apply } = await setup(t);
  await apply(deployment("web", { replicas: 1 }));
  const pod = await eventually(() => podsOf(api, "web").find(isReady) as Json | undefined, "a ready pod");
  const logOf = (query: string) => fetch(`${api.url}/api/v1/namespaces/apps/pods/${pod.metadata.name}/log?${query}`);
  api.writePodLog("apps", pod.metadata.name, "before");
  // The API keeps sinceTime to the second: wait for the next one.
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 10));
  const since = new Date().toISOString();
  api.writePodLog("apps", pod.metadata.name, "after");
  t.is(await (await logOf(`sinceTime=${encodeURIComponent(since)}`)).text(), "after\n");
  t.is(await (await logOf("")).text(), "before\nafter\n");
  const both = await logOf(`sinceTime=${encodeURIComponent(since)}&sinceSeconds=10`);
  t.is(both.status, 400);
  t.regex(((await both.json()) as Json).message, /at most one of `sinceTime` or `sinceSeconds`/);
});

function statefulSet(name: string, options: { replicas?: number; image?: string; partition?: number; parallel?: boolean } = {}): Json {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name, namespace: "apps" },
    spec: {
      replicas: options.replicas ?? 3,
      selector: { matchLabels: { app: name } },
      ...(options.parallel ? { podManagementPolicy: "Parallel" } : {}),
      updateStrategy: { type: "RollingUpdate", ...(options.partition !== undefined ? { rollingUpdate: { partition: options.partition } } : {}) },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "main", image: options.image ?? "app:v1" }] },
      },
    },
  };
}

const statefulSetStatus = (api: FakeKubeApi, name: string) => api.objects({ kind: "StatefulSet", namespace: "apps", name })[0]?.status as Json | undefined;

test("a StatefulSet makes pods <name>-0, -1, -2 in order, each once its predecessor is ready, and reports them in status", async (t) => {
  const { api, apply } = await setup(t);
  const created: string[] = [];
  const outOfOrder: string[] = [];
  await watchPods(t, api, (pods, type, pod) => {
    if (type !== "ADDED") return;
    created.push(pod.metadata.name);
    const ordinal = Number(pod.metadata.labels["apps.kubernetes.io/pod-index"]);
    if (ordinal > 0 && !isReady(pods.get(`db-${ordinal - 1}`) ?? {})) outOfOrder.push(pod.metadata.name);
  });
  await apply(statefulSet("db"));
  const status = await eventually(() => {
    const current = statefulSetStatus(api, "db");
    return current?.readyReplicas === 3 && current.currentRevision === current.updateRevision ? current : undefined;
  }, "three ready replicas");
  t.deepEqual(created, ["db-0", "db-1", "db-2"]);
  t.deepEqual(outOfOrder, [], "no pod started before its predecessor was ready");
  t.like(status, { replicas: 3, availableReplicas: 3, updatedReplicas: 3, currentReplicas: 3 });
  const pods = podsOf(api, "db") as Json[];
  t.true(pods.every((pod) => pod.metadata.labels["controller-revision-hash"] === status.updateRevision));
  t.true(
    pods.every((pod) => pod.metadata.labels["statefulset.kubernetes.io/pod-name"] === pod.metadata.name),
    "each pod is labelled with its own name, which a Service can select one pod by",
  );
  t.deepEqual(pods.map((pod) => pod.spec.nodeName).sort(), ["node-a", "node-b", "node-c"], "one pod per zone");

  // Scaling down removes the highest ordinals.
  await apply(statefulSet("db", { replicas: 1 }));
  await eventually(() => ((podsOf(api, "db") as Json[]).map((pod) => pod.metadata.name).join() === "db-0" ? true : undefined), "db-0 alone");
  t.like(await eventually(() => (statefulSetStatus(api, "db")?.replicas === 1 ? statefulSetStatus(api, "db") : undefined), "status at 1"), {
    readyReplicas: 1,
  });
});

test("a StatefulSet's rolling update replaces one pod at a time from the highest ordinal down to the partition", async (t) => {
  const { api, apply } = await setup(t);
  await apply(statefulSet("db", { parallel: true }));
  const first = await eventually(() => (statefulSetStatus(api, "db")?.readyReplicas === 3 ? statefulSetStatus(api, "db") : undefined), "v1 ready");
  const replaced: string[] = [];
  const violations: string[] = [];
  await watchPods(t, api, (pods, type, pod) => {
    if (type === "ADDED" && pod.spec.containers[0].image === "app:v2") replaced.push(pod.metadata.name);
    const down = [...pods.values()].filter((p) => p.metadata.deletionTimestamp !== undefined || !isReady(p)).length;
    if (pods.size >= 3 && down > 1) violations.push(`${down} pods down at once`);
  });
  await apply(statefulSet("db", { parallel: true, image: "app:v2", partition: 1 }));
  const partitioned = await eventually(() => {
    const current = statefulSetStatus(api, "db");
    return current?.updatedReplicas === 2 && current.readyReplicas === 3 ? current : undefined;
  }, "the pods at and above the partition updated");
  t.deepEqual(replaced, ["db-2", "db-1"]);
  t.is(partitioned.currentRevision, first.updateRevision, "the pod below the partition keeps the current revision");
  t.not(partitioned.updateRevision, first.updateRevision);
  t.is((podsOf(api, "db") as Json[]).find((pod) => pod.metadata.name === "db-0")!.spec.containers[0].image, "app:v1");

  await apply(statefulSet("db", { parallel: true, image: "app:v2", partition: 0 }));
  const done = await eventually(() => {
    const current = statefulSetStatus(api, "db");
    return current?.updatedReplicas === 3 && current.readyReplicas === 3 && current.currentRevision === current.updateRevision ? current : undefined;
  }, "every pod updated");
  t.is(done.currentReplicas, 3);
  t.deepEqual(replaced, ["db-2", "db-1", "db-0"]);
  t.deepEqual(violations, []);
});

test("a StatefulSet's update that never becomes ready stops after the first replaced pod", async (t) => {
  const { api, apply } = await setup(t, {
    podBehaviour: (pod) => ((pod as Json).spec.containers[0].image === "app:broken" ? { outcome: "never-ready" } : undefined),
  });
  await apply(statefulSet("db", { parallel: true }));
  await eventually(() => (statefulSetStatus(api, "db")?.readyReplicas === 3 ? true : undefined), "v1 ready");
  await apply(statefulSet("db", { parallel: true, image: "app:broken" }));
  await eventually(() => {
    const broken = (podsOf(api, "db") as Json[]).find((pod) => pod.metadata.name === "db-2" && pod.spec.containers[0].image === "app:broken");
    return broken?.status?.phase === "Running" ? true : undefined;
  }, "db-2 replaced and running");
  await eventually(() => (statefulSetStatus(api, "db")?.updatedReplicas === 1 ? true : undefined), "status counting the one updated pod");
  t.deepEqual((podsOf(api, "db") as Json[]).map((pod) => [pod.metadata.name, pod.spec.containers[0].image, isReady(pod)]).sort(), [
    ["db-0", "app:v1", true],
    ["db-1", "app:v1", true],
    ["db-2", "app:broken", false],
  ]);
  t.like(statefulSetStatus(api, "db"), { readyReplicas: 2, updatedReplicas: 1 });
});
