import test from "ava";
import type { V1Container, V1Deployment, V1Job, V1PodDisruptionBudget, V1Secret, V1Service, V2HorizontalPodAutoscaler } from "@kubernetes/client-node";
import type { KubernetesObject } from "@kubernetes/client-node";
import { validateKubernetesObject } from "@berth/fake-kube-api";
import { MAX_PROCESS_OBJECT_NAME, kubernetesNameProblem, processObjectName } from "@berth/kit";
import { appObjects, appPruneScopes, kubernetesNameProblems, releaseJobFor } from "../src/engine/kubernetes/manifests.js";
import { DEMO_SETTINGS, NAMESPACE, demoApp, formationEntry, objectName } from "./support/kubernetes-demo-app.js";

const names = (objects: KubernetesObject[]) => objects.map((object) => `${object.kind}/${object.metadata!.name}`);
const find = <T>(objects: KubernetesObject[], kind: string, name: string) =>
  objects.find((object) => object.kind === kind && object.metadata!.name === name) as T;
const deploymentOf = (objects: KubernetesObject[], type: string) => find<V1Deployment>(objects, "Deployment", objectName(type));
const containerOf = (deployment: V1Deployment): V1Container => deployment.spec!.template.spec!.containers[0]!;

test("the demo app is a Deployment per process type but release, a Service per web and tcp type, all schema-valid", async (t) => {
  const objects = [...appObjects(demoApp(), DEMO_SETTINGS), releaseJobFor(demoApp(), DEMO_SETTINGS)!];
  t.deepEqual(names(objects), [
    "Secret/demo-config-v1",
    ...["web", "admin-web", "worker", "api-tcp"].map((type) => `Deployment/${objectName(type)}`),
    ...["web", "admin-web"].map((type) => `Service/${objectName(type)}`),
    // A tcp Service is named by the internal hostname other apps resolve.
    "Service/demo-api-tcp",
    "Job/demo-release-v1",
  ]);
  t.true(
    objects.every((object) => object.metadata!.namespace === NAMESPACE),
    "everything in the team's namespace",
  );
  for (const object of objects) {
    const validation = await validateKubernetesObject(object as Record<string, unknown>);
    t.true(validation.schemaChecked, `${object.kind} is checked against its schema`);
    t.deepEqual(validation.violations, [], `${object.kind}/${object.metadata!.name}`);
  }
});

test("a Deployment rolls out without losing capacity and runs the release's image and Procfile command", (t) => {
  const web = deploymentOf(appObjects(demoApp({ version: 4 }), DEMO_SETTINGS), "web");
  t.deepEqual(web.spec!.strategy, { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } });
  t.deepEqual(web.spec!.selector, { matchLabels: { "app.kubernetes.io/name": "demo", "app.kubernetes.io/component": "web" } });
  t.is(web.spec!.progressDeadlineSeconds, 60);
  const container = containerOf(web);
  t.is(container.image, "registry.example.com/acme/demo:v4");
  t.deepEqual(container.command, ["/bin/sh", "-c", "node web.js"]);
  t.deepEqual(web.metadata!.labels, {
    "app.kubernetes.io/name": "demo",
    "app.kubernetes.io/instance": objectName("web"),
    "app.kubernetes.io/component": "web",
    "app.kubernetes.io/part-of": "berth",
    "app.kubernetes.io/managed-by": "berth-scheduler",
    "app.kubernetes.io/version": "v4",
    "berth.dev/team": "acme",
  });
  t.deepEqual(web.spec!.template.metadata!.labels, web.metadata!.labels);
});

test("config vars live in the release's immutable Secret, read with envFrom; only PORT and BERTH_* of the process are in the spec", (t) => {
  const input = demoApp({ version: 2, release: { config: { GREETING: "hello", DATABASE_PASSWORD: "s3cret-value" } } });
  const objects = [...appObjects(input, DEMO_SETTINGS), releaseJobFor(input, DEMO_SETTINGS)!];
  const secret = find<V1Secret>(objects, "Secret", "demo-config-v2");
  t.true(secret.immutable);
  t.deepEqual(Object.fromEntries(Object.entries(secret.data!).map(([key, value]) => [key, Buffer.from(value, "base64").toString()])), {
    BERTH_APP: "demo",
    BERTH_RELEASE: "2",
    BERTH_RELEASE_VERSION: "v2",
    DATABASE_PASSWORD: "s3cret-value",
    GREETING: "hello",
  });
  const variables = (type: string) =>
    Object.fromEntries(containerOf(deploymentOf(objects, type)).env!.map((env) => [env.name, env.value ?? env.valueFrom?.fieldRef?.fieldPath]));
  t.deepEqual(variables("web"), { BERTH_PROCESS_TYPE: "web", PORT: "5000", BERTH_REPLICA_NAME: "metadata.name" });
  t.deepEqual(variables("worker"), { BERTH_PROCESS_TYPE: "worker", BERTH_REPLICA_NAME: "metadata.name" });
  t.deepEqual(containerOf(deploymentOf(objects, "web")).envFrom, [{ secretRef: { name: "demo-config-v2" } }]);
  // No config value appears anywhere in a Deployment or Job.
  for (const workload of objects.filter((object) => object.kind === "Deployment" || object.kind === "Job")) {
    t.false(JSON.stringify(workload).includes("s3cret-value"), `${workload.kind}/${workload.metadata!.name}`);
    t.false(JSON.stringify(workload).includes("GREETING"), `${workload.kind}/${workload.metadata!.name}`);
  }
});

test("pods run restricted: no privilege escalation, no capabilities, RuntimeDefault seccomp; traffic types wait before SIGTERM", (t) => {
  const objects = appObjects(demoApp(), DEMO_SETTINGS);
  for (const type of ["web", "worker"]) {
    const deployment = deploymentOf(objects, type);
    t.deepEqual(deployment.spec!.template.spec!.securityContext, { seccompProfile: { type: "RuntimeDefault" } });
    t.deepEqual(containerOf(deployment).securityContext, {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
  }
  t.deepEqual(containerOf(deploymentOf(objects, "web")).lifecycle, { preStop: { sleep: { seconds: 5 } } });
  t.is(containerOf(deploymentOf(objects, "worker")).lifecycle, undefined);
});

const probeTable: [string, Partial<V1Container>, number][] = [
  [
    "web",
    {
      ports: [{ name: "http", containerPort: 5000, protocol: "TCP" }],
      startupProbe: { httpGet: { path: "/", port: 5000 }, periodSeconds: 1, timeoutSeconds: 5, failureThreshold: 30 },
      readinessProbe: { httpGet: { path: "/", port: 5000 }, periodSeconds: 1, timeoutSeconds: 5, successThreshold: 1, failureThreshold: 3 },
      // Liveness is slower and more tolerant than readiness.
      livenessProbe: { httpGet: { path: "/", port: 5000 }, periodSeconds: 2, timeoutSeconds: 10, successThreshold: 1, failureThreshold: 6 },
    },
    0,
  ],
  [
    "api-tcp",
    {
      ports: [{ name: "tcp", containerPort: 5000, protocol: "TCP" }],
      startupProbe: { tcpSocket: { port: 5000 }, periodSeconds: 1, timeoutSeconds: 5, failureThreshold: 30 },
      readinessProbe: { tcpSocket: { port: 5000 }, periodSeconds: 1, timeoutSeconds: 5, successThreshold: 1, failureThreshold: 3 },
      livenessProbe: { tcpSocket: { port: 5000 }, periodSeconds: 2, timeoutSeconds: 10, successThreshold: 1, failureThreshold: 6 },
    },
    0,
  ],
  ["worker", { ports: undefined, startupProbe: undefined, readinessProbe: undefined, livenessProbe: undefined }, 1],
];

for (const [type, expected, minReadySeconds] of probeTable) {
  test(`probes and ports of a ${type} type follow its routing class and the default health settings`, (t) => {
    const deployment = deploymentOf(appObjects(demoApp(), DEMO_SETTINGS), type);
    const container = containerOf(deployment);
    for (const [field, value] of Object.entries(expected)) t.deepEqual(container[field as keyof V1Container], value, field);
    t.is(deployment.spec!.minReadySeconds, minReadySeconds);
  });
}

test("a type's health overrides set the probe path, timing and thresholds and its minimum ready time", (t) => {
  const health = { path: "/health", intervalMs: 2000, timeoutMs: 2500, healthyThreshold: 2, unhealthyThreshold: 4, startTimeoutMs: 60_000, minReadyMs: 5000 };
  const formation = [formationEntry("web", { replicas: 1, health })];
  const deployment = deploymentOf(appObjects(demoApp({ formation }), DEMO_SETTINGS), "web");
  const container = containerOf(deployment);
  t.deepEqual(container.readinessProbe, {
    httpGet: { path: "/health", port: 5000 },
    periodSeconds: 2,
    timeoutSeconds: 3,
    successThreshold: 2,
    failureThreshold: 4,
  });
  t.deepEqual(container.startupProbe, { httpGet: { path: "/health", port: 5000 }, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 30 });
  t.is(deployment.spec!.minReadySeconds, 5);
});

const resourceTable: [string, Parameters<typeof formationEntry>[1], { cpu: string; memory: string }][] = [
  ["size standard-1x", { size: "standard-1x" }, { cpu: "256m", memory: "512Mi" }],
  ["size standard-4x", { size: "standard-4x" }, { cpu: "1024m", memory: "2048Mi" }],
  ["explicit overrides", { size: "standard-2x", cpuMillis: 100, memoryMb: 64 }, { cpu: "100m", memory: "64Mi" }],
];

for (const [label, entry, quantities] of resourceTable) {
  test(`resources of a type with ${label} are its pod size as requests and limits`, (t) => {
    const deployment = deploymentOf(appObjects(demoApp({ formation: [formationEntry("web", { replicas: 1, ...entry })] }), DEMO_SETTINGS), "web");
    t.deepEqual(containerOf(deployment).resources, { requests: quantities, limits: quantities });
  });
}

const spreadTable: [string, Parameters<typeof demoApp>[0], number | undefined, boolean][] = [
  ["one replica", { formation: [formationEntry("web", { replicas: 1 })] }, 1, false],
  ["zero replicas", { formation: [formationEntry("web", { replicas: 0 })] }, 0, false],
  ["two replicas", { formation: [formationEntry("web", { replicas: 2 })] }, 2, true],
  [
    "an autoscale rule up to 3",
    { formation: [formationEntry("web", { replicas: 1 })], autoscaleRules: [{ processType: "web", minReplicas: 1, maxReplicas: 3, targetCpuPercent: 70 }] },
    undefined,
    true,
  ],
  [
    "an autoscale rule of at most 1",
    { formation: [formationEntry("web", { replicas: 1 })], autoscaleRules: [{ processType: "web", minReplicas: 1, maxReplicas: 1, targetCpuPercent: 70 }] },
    undefined,
    false,
  ],
];

for (const [label, app, replicas, spread] of spreadTable) {
  test(`replicas and zone spread of a type with ${label}`, (t) => {
    const deployment = deploymentOf(appObjects(demoApp(app), DEMO_SETTINGS), "web");
    t.is(deployment.spec!.replicas, replicas);
    t.is("replicas" in deployment.spec!, replicas !== undefined, "an autoscaled type's replicas are left to its HPA");
    const constraints = deployment.spec!.template.spec!.topologySpreadConstraints;
    if (!spread) return t.is(constraints, undefined);
    t.deepEqual(
      constraints,
      ["topology.kubernetes.io/zone", "kubernetes.io/hostname"].map((topologyKey) => ({
        maxSkew: 1,
        topologyKey,
        whenUnsatisfiable: "ScheduleAnyway",
        labelSelector: { matchLabels: { "app.kubernetes.io/name": "demo", "app.kubernetes.io/component": "web" } },
        matchLabelKeys: ["pod-template-hash"],
      })),
    );
  });
}

test("a type of the formation the release does not run gets 0 replicas of the default size", (t) => {
  const deployment = deploymentOf(appObjects(demoApp({ formation: [] }), DEMO_SETTINGS), "admin-web");
  t.is(deployment.spec!.replicas, 0);
  t.deepEqual(containerOf(deployment).resources!.limits, { cpu: "256m", memory: "512Mi" });
});

test("an autoscale rule is an autoscaling/v2 HPA on CPU utilization targeting the type's Deployment", (t) => {
  const objects = appObjects(demoApp({ autoscaleRules: [{ processType: "worker", minReplicas: 2, maxReplicas: 6, targetCpuPercent: 65 }] }), DEMO_SETTINGS);
  const hpa = find<V2HorizontalPodAutoscaler>(objects, "HorizontalPodAutoscaler", objectName("worker"));
  t.deepEqual(hpa.spec, {
    scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: objectName("worker") },
    minReplicas: 2,
    maxReplicas: 6,
    metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 65 } } }],
  });
  t.is(deploymentOf(objects, "worker").spec!.replicas, undefined);
  t.is(deploymentOf(objects, "web").spec!.replicas, 1);
});

test("a rule for a type the release does not run makes no HPA", (t) => {
  const objects = appObjects(demoApp({ autoscaleRules: [{ processType: "gone", minReplicas: 1, maxReplicas: 2, targetCpuPercent: 50 }] }), DEMO_SETTINGS);
  t.false(objects.some((object) => object.kind === "HorizontalPodAutoscaler"));
});

test("a web Service listens on the router's service port, a tcp Service on $PORT, both forwarding to $PORT", (t) => {
  const objects = appObjects(demoApp(), DEMO_SETTINGS);
  const selector = (type: string) => ({ "app.kubernetes.io/name": "demo", "app.kubernetes.io/component": type });
  t.deepEqual(find<V1Service>(objects, "Service", objectName("admin-web")).spec, {
    type: "ClusterIP",
    selector: selector("admin-web"),
    ports: [{ name: "http", port: 80, targetPort: 5000, protocol: "TCP" }],
  });
  t.deepEqual(find<V1Service>(objects, "Service", "demo-api-tcp").spec, {
    type: "ClusterIP",
    selector: selector("api-tcp"),
    ports: [{ name: "tcp", port: 5000, targetPort: 5000, protocol: "TCP" }],
  });
});

test("a rolling restart changes the pod template and nothing else", (t) => {
  const before = deploymentOf(appObjects(demoApp(), DEMO_SETTINGS), "web");
  const after = deploymentOf(
    appObjects(
      demoApp({
        formation: ["web", "admin-web", "worker", "api-tcp"].map((type) =>
          formationEntry(type, { replicas: 1, ...(type === "web" ? { restartGeneration: 1, restartedAt: new Date("2026-12-03T08:00:00Z") } : {}) }),
        ),
      }),
      DEMO_SETTINGS,
    ),
    "web",
  );
  t.is(before.spec!.template.metadata!.annotations, undefined);
  t.deepEqual(
    after.spec!.template.metadata!.annotations,
    { "kubectl.kubernetes.io/restartedAt": "2026-12-03T08:00:00.000Z" },
    "as kubectl rollout restart does",
  );
  t.deepEqual({ ...after.spec!, template: undefined }, { ...before.spec!, template: undefined });
});

test("the release Job runs once per release: named per version, no retries, the release timeout as deadline, at the web process's size", (t) => {
  const job = releaseJobFor(demoApp({ version: 7 }), { ...DEMO_SETTINGS, releaseTimeoutMs: 90_500 }) as V1Job;
  t.is(job.metadata!.name, "demo-release-v7");
  t.is(job.spec!.backoffLimit, 0);
  t.is(job.spec!.activeDeadlineSeconds, 91);
  t.is(job.spec!.ttlSecondsAfterFinished, DEMO_SETTINGS.releaseJobTtlSeconds);
  t.is(job.spec!.template.spec!.restartPolicy, "Never");
  const container = job.spec!.template.spec!.containers[0]!;
  t.deepEqual(container.command, ["/bin/sh", "-c", "node release.js"]);
  t.is(container.image, "registry.example.com/acme/demo:v7");
  t.false(container.env!.some((env) => env.name === "PORT"));
  t.is(job.metadata!.labels!["app.kubernetes.io/component"], "release");
  const quantities = { cpu: "512m", memory: "1536Mi" };
  const sized = releaseJobFor(demoApp({ release: { formation: [formationEntry("web", { size: "standard-2x", memoryMb: 1536 })] } }), DEMO_SETTINGS) as V1Job;
  t.deepEqual(
    sized.spec!.template.spec!.containers[0]!.resources,
    { requests: quantities, limits: quantities },
    "at the web process's size, as on the local engine",
  );
});

test("a release whose Procfile has no release line has no Job", (t) => {
  t.is(releaseJobFor(demoApp({ release: { processes: [{ processType: "web", command: "node web.js" }] } }), DEMO_SETTINGS), undefined);
});

test("names Kubernetes cannot take and releases without an image are refused", (t) => {
  const long = "a".repeat(58);
  t.throws(() => appObjects(demoApp({ release: { app: long } }), DEMO_SETTINGS), { message: /longer than 63 characters/ });
  t.throws(() => appObjects(demoApp({ release: { app: "1shop" } }), DEMO_SETTINGS), { message: /start with a letter/ });
  t.throws(() => appObjects(demoApp({ release: { artifact: { digest: "" } } }), DEMO_SETTINGS), { message: /has no container image/ });
});

test("<app>-<type> collisions get distinct object names: a hash of app and type, the name cut to fit a StatefulSet's pods' labels", (t) => {
  const objectsOf = (app: string, processType: string) =>
    names(appObjects(demoApp({ release: { app, processes: [{ processType, command: "node worker.js" }] } }), DEMO_SETTINGS));
  const a = objectsOf("a", "b-worker");
  const ab = objectsOf("a-b", "worker");
  t.regex(a[1]!, /^Deployment\/a-b-worker-[0-9a-f]{10}$/);
  t.regex(ab[1]!, /^Deployment\/a-b-worker-[0-9a-f]{10}$/);
  t.deepEqual(
    a.filter((name) => ab.includes(name)),
    [],
    "no object of one is an object of the other",
  );
  const long = processObjectName("a".repeat(30), "b".repeat(30));
  t.is(long.length, MAX_PROCESS_OBJECT_NAME);
  t.not(long, processObjectName("a".repeat(30), "b".repeat(31)), "cut names stay apart");
  t.is(kubernetesNameProblem(long), undefined);
});

test("names Kubernetes cannot take are found before anything is built", (t) => {
  t.deepEqual(kubernetesNameProblems("demo", ["web", "release", "api-tcp"], 12), []);
  // A Deployment's name is cut to fit (its hash keeps it apart); a tcp Service's internal hostname, a release's Job and Secret cannot be.
  t.deepEqual(kubernetesNameProblems("a".repeat(56), ["web", "admin-web", "api-tcp", "release"], 12), [
    `"${"a".repeat(56)}-api-tcp" is longer than 63 characters: shorten the app or process type name`,
    `"${"a".repeat(56)}-release-v12" is longer than 63 characters: shorten the app or process type name`,
    `"${"a".repeat(56)}-config-v12" is longer than 63 characters: shorten the app or process type name`,
  ]);
  t.regex(kubernetesNameProblems("9lives", ["worker"], 1)[0]!, /"9lives-worker-[0-9a-f]{10}" must be lower-case letters, digits and '-', start with a letter/);
});

test("a type with 2 or more replicas gets a PodDisruptionBudget taking one pod at a time; an image without a Procfile runs its own entrypoint", (t) => {
  const objects = appObjects(demoApp({ formation: [formationEntry("web", { replicas: 2 }), formationEntry("worker", { replicas: 1 })] }), DEMO_SETTINGS);
  const budgets = objects.filter((object) => object.kind === "PodDisruptionBudget") as V1PodDisruptionBudget[];
  t.deepEqual(
    budgets.map((budget) => [budget.metadata!.name, budget.spec]),
    [[objectName("web"), { maxUnavailable: 1, selector: { matchLabels: { "app.kubernetes.io/name": "demo", "app.kubernetes.io/component": "web" } } }]],
  );
  const image = appObjects(demoApp({ release: { processes: [{ processType: "web", command: "" }] } }), DEMO_SETTINGS);
  t.false("command" in containerOf(deploymentOf(image, "web")), 'no sh -c "": the image\'s entrypoint and CMD run unmodified');
});

test("the prune scopes select the app's objects applied by the scheduler", (t) => {
  const selector = "app.kubernetes.io/name=demo,app.kubernetes.io/managed-by=berth-scheduler";
  t.deepEqual(appPruneScopes({ app: "demo", namespace: NAMESPACE }, DEMO_SETTINGS), [
    { apiVersion: "apps/v1", kind: "Deployment", namespace: NAMESPACE, labelSelector: selector },
    { apiVersion: "apps/v1", kind: "StatefulSet", namespace: NAMESPACE, labelSelector: selector },
    // The TURN Secrets of rtc types, not the release config Secrets (pruneReleaseSecrets keeps those).
    { apiVersion: "v1", kind: "Secret", namespace: NAMESPACE, labelSelector: `${selector},app.kubernetes.io/component=turn-env` },
    { apiVersion: "v1", kind: "Service", namespace: NAMESPACE, labelSelector: selector },
    { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", namespace: NAMESPACE, labelSelector: selector },
    { apiVersion: "policy/v1", kind: "PodDisruptionBudget", namespace: NAMESPACE, labelSelector: selector },
  ]);
});
