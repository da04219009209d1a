import test from "ava";
import { execFileSync } from "node:child_process";
import type { V1Container, V1Pod, V1Secret, V1StatefulSet } from "@kubernetes/client-node";
import type { KubernetesObject } from "@kubernetes/client-node";
import { silentLogger } from "@berth/kit";
import { createFakeKubeApi, validateKubernetesObject } from "@berth/fake-kube-api";
import { createKubernetesDeployer } from "../src/engine/kubernetes/kubernetes-deployer.js";
import { appObjects } from "../src/engine/kubernetes/manifests.js";
import { TURN_ENV_HASH_ANNOTATION, rtcReplicaPrelude, turnSecretName } from "../src/engine/kubernetes/rtc-statefulset.js";
import { DEMO_SETTINGS, NAMESPACE, demoApp, formationEntry, objectName } from "./support/kubernetes-demo-app.js";

const SECRET = "s3cret-turn-shared-value";
const turnEnv = (secret = SECRET) => ({
  TURN_SHARED_SECRET: secret,
  TURN_HOSTNAME: "k3x9q.turn.apps.example.net",
  TURN_PORT: "40001",
  TURN_REALM: "apps.example.net",
  BERTH_RTC_PROCESS: "sfu-rtc",
  BERTH_RTC_REPLICA: "01",
  BERTH_RTC_HOSTNAME: "k3x9q-01.apps.example.net",
});
const processes = [
  { processType: "web", command: "node web.js" },
  { processType: "sfu-rtc", command: 'exec node sfu.js --announce "$BERTH_RTC_HOSTNAME"' },
];
const rtcApp = (options: { secret?: string; replicas?: number; processes?: typeof processes } = {}) => ({
  ...demoApp({
    release: { processes: options.processes ?? processes },
    formation: [formationEntry("web", { replicas: 1 }), formationEntry("sfu-rtc", { replicas: options.replicas ?? 3 })],
  }),
  rtc: new Map([["sfu-rtc", turnEnv(options.secret)]]),
});
const find = <T>(objects: KubernetesObject[], kind: string, name: string) =>
  objects.find((object) => object.kind === kind && object.metadata!.name === name) as T;

test("each rtc replica numbers itself from its StatefulSet ordinal: BERTH_RTC_REPLICA 01, 02, … and its own hostname", (t) => {
  const prelude = rtcReplicaPrelude(turnEnv());
  for (const [pod, replica] of [
    [`${objectName("sfu-rtc")}-0`, "01"],
    [`${objectName("sfu-rtc")}-1`, "02"],
    [`${objectName("sfu-rtc")}-11`, "12"],
    [`${objectName("sfu-rtc")}-99`, "100"],
  ] as const) {
    const printed = execFileSync("/bin/sh", ["-c", `${prelude}\necho "$BERTH_RTC_REPLICA $BERTH_RTC_HOSTNAME"`], {
      env: { BERTH_REPLICA_NAME: pod },
      encoding: "utf8",
    });
    t.is(printed.trim(), `${replica} k3x9q-${replica}.apps.example.net`, pod);
  }
});

test("an rtc type runs a schema-valid StatefulSet whose TURN variables come from a Secret, never the spec", async (t) => {
  const objects = appObjects(rtcApp(), DEMO_SETTINGS);
  const name = objectName("sfu-rtc");
  t.deepEqual(
    objects.map((object) => `${object.kind}/${object.metadata!.name}`),
    [
      "Secret/demo-config-v1",
      `Secret/${turnSecretName(name)}`,
      `Deployment/${objectName("web")}`,
      `StatefulSet/${name}`,
      `Service/${objectName("web")}`,
      `PodDisruptionBudget/${name}`,
    ],
  );
  for (const object of objects) {
    const validation = await validateKubernetesObject(object as Record<string, unknown>);
    t.true(validation.schemaChecked, `${object.kind} is checked against its schema`);
    t.deepEqual(validation.violations, [], `${object.kind}/${object.metadata!.name}`);
  }
  const statefulSet = find<V1StatefulSet>(objects, "StatefulSet", name);
  t.is(statefulSet.spec!.replicas, 3);
  t.is(statefulSet.spec!.podManagementPolicy, "Parallel");
  const container: V1Container = statefulSet.spec!.template.spec!.containers[0]!;
  t.deepEqual(container.envFrom, [{ secretRef: { name: "demo-config-v1" } }, { secretRef: { name: turnSecretName(name) } }]);
  t.is(container.command![0], "/bin/sh");
  t.true(container.command![2]!.endsWith('\nexec node sfu.js --announce "$BERTH_RTC_HOSTNAME"'), "the prelude, then the Procfile command");
  t.deepEqual(container.readinessProbe!.tcpSocket, { port: 5000 });
  t.false(JSON.stringify(statefulSet).includes(SECRET), "the shared secret is not in the StatefulSet");
  const secret = find<V1Secret>(objects, "Secret", turnSecretName(name));
  t.deepEqual(Object.keys(secret.data!), ["BERTH_RTC_PROCESS", "TURN_HOSTNAME", "TURN_PORT", "TURN_REALM", "TURN_SHARED_SECRET"]);
  t.is(Buffer.from(secret.data!.TURN_SHARED_SECRET!, "base64").toString(), SECRET);
  t.false(
    objects.some((object) => object.kind === "Service" && object.metadata!.name === name),
    "the TURN allocator exposes rtc types, not a Service",
  );
  t.throws(() => appObjects(demoApp({ release: { processes } }), DEMO_SETTINGS), { message: /no TURN variables/ });
});

test("on the API server the StatefulSet and TURN Secret apply idempotently, a rotation rolls the pods, and a removed rtc process leaves nothing", async (t) => {
  const api = await createFakeKubeApi({ controllers: false });
  t.teardown(() => api.close());
  const deployer = createKubernetesDeployer({ kubeConfig: api.kubeConfig(), settings: DEMO_SETTINGS, logger: silentLogger });
  const name = objectName("sfu-rtc");
  const stored = (kind: string) => api.objects({ kind, namespace: NAMESPACE }) as unknown as (V1StatefulSet & V1Secret)[];
  const hashOf = () => stored("StatefulSet")[0]!.spec!.template.metadata!.annotations![TURN_ENV_HASH_ANNOTATION];

  const first = await deployer.applyApp(rtcApp());
  t.true(first.applied.includes(`StatefulSet/${NAMESPACE}/${name}`));
  t.true(first.applied.includes(`Secret/${NAMESPACE}/${turnSecretName(name)}`));
  const again = await deployer.applyApp(rtcApp());
  t.deepEqual(again.applied, [], "applying the same release again changes nothing");
  const before = hashOf();

  await deployer.applyApp(rtcApp({ secret: "rotated-secret" }));
  t.not(hashOf(), before, "a rotated secret changes the pod template, so the StatefulSet rolls its pods");
  t.is(
    Buffer.from(stored("Secret").find((secret) => secret.metadata!.name === turnSecretName(name))!.data!.TURN_SHARED_SECRET!, "base64").toString(),
    "rotated-secret",
  );

  const removed = await deployer.applyApp(rtcApp({ processes: processes.slice(0, 1) }));
  t.true(removed.pruned.includes(`StatefulSet/${NAMESPACE}/${name}`));
  t.true(removed.pruned.includes(`Secret/${NAMESPACE}/${turnSecretName(name)}`));
  t.deepEqual(stored("StatefulSet"), []);
  t.deepEqual(
    stored("Secret").map((secret) => secret.metadata!.name),
    ["demo-config-v1"],
  );
});

test("on a cluster an rtc rollout waits for the StatefulSet's updated pods to be ready, and one that never gets there stalls naming the StatefulSet", async (t) => {
  let firstHash: string | undefined;
  const api = await createFakeKubeApi({
    // The rotated template's pods never become ready.
    podBehaviour: (pod) => {
      const hash = (pod as V1Pod).metadata?.annotations?.[TURN_ENV_HASH_ANNOTATION];
      return hash !== undefined && firstHash !== undefined && hash !== firstHash ? { outcome: "never-ready" } : undefined;
    },
  });
  t.teardown(() => api.close());
  const deployer = createKubernetesDeployer({ kubeConfig: api.kubeConfig(), settings: DEMO_SETTINGS, logger: silentLogger });
  const name = objectName("sfu-rtc");
  const set = () => api.objects({ kind: "StatefulSet", namespace: NAMESPACE, name })[0] as unknown as V1StatefulSet;
  const pods = () => api.objects({ kind: "Pod", namespace: NAMESPACE, labelSelector: "app.kubernetes.io/component=sfu-rtc" }) as unknown as V1Pod[];
  const ready = (pod: V1Pod) => pod.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true;

  await deployer.applyApp(rtcApp());
  firstHash = set().spec!.template.metadata!.annotations![TURN_ENV_HASH_ANNOTATION];
  t.deepEqual(await deployer.waitForRollout({ app: "demo", namespace: NAMESPACE }), { ok: true });
  t.like(set().status, { readyReplicas: 3, updatedReplicas: 3 });
  t.deepEqual(
    pods()
      .filter(ready)
      .map((pod) => pod.metadata!.name)
      .sort(),
    [`${name}-0`, `${name}-1`, `${name}-2`],
    "every replica ready under its stable name when the rollout resolved",
  );

  await deployer.applyApp(rtcApp({ secret: "rotated-secret" }));
  const outcome = await deployer.waitForRollout({ app: "demo", namespace: NAMESPACE, progressDeadlineMs: 1500 });
  t.like(outcome, { ok: false, reason: "PROGRESS_DEADLINE_EXCEEDED", pending: [name] });
  t.regex(outcome.ok ? "" : outcome.message, new RegExp(`^no replica became available for 2 s: ${name} \\(1 of 3 updated, 2 ready, 2 available, 3 in all\\)$`));
  t.deepEqual(
    pods()
      .map((pod) => [pod.metadata!.name, ready(pod)])
      .sort(),
    [
      [`${name}-0`, true],
      [`${name}-1`, true],
      [`${name}-2`, false],
    ],
    "the rollout replaced the highest ordinal only",
  );
});
