import test from "ava";
import { createFakeKubeApi, validateKubernetesObject } from "@berth/fake-kube-api";
import { processObjectName, silentLogger } from "@berth/kit";
import { coturnObjects } from "../src/gateway/kubernetes/coturn-objects.js";
import { createKubernetesGateways } from "../src/gateway/kubernetes/kubernetes-gateways.js";
import type { GatewaySpec } from "../src/gateway/gateway-spec.js";
import { startTestAllocator, testConfig } from "./support/allocator.js";

const NAMESPACE = "berth-apps";
const settings = { namespace: NAMESPACE, image: "coturn/coturn:4.6.3" };
const spec = (app: string, port: number, secrets: string[]): GatewaySpec => ({
  name: `${app}-sfu-rtc`,
  routeToken: `${app}token`,
  team: "acme",
  app,
  processType: "sfu-rtc",
  port,
  relayRange: { first: 50000, last: 50255 },
  realm: "berth.example",
  secrets,
});
const managed = "app.kubernetes.io/managed-by=berth-turn-allocator";
/** The name of a gateway's objects. */
const turn = (app: string, processType: string) => `${processObjectName(app, processType)}-turn`;
/** What the allocator applies; the simulated cluster adds ReplicaSets and pods carrying the same labels. */
const applied = (object: Record<string, unknown>) => ["Secret", "Deployment", "Service"].includes(object.kind as string);

test("a gateway is a schema-valid coturn Deployment, UDP Service and Secret", async (t) => {
  const objects = coturnObjects(spec("shop", 40001, ["s1"]), settings);
  t.deepEqual(
    objects.map((object) => `${object.kind}/${object.metadata!.name}`),
    [`Secret/${turn("shop", "sfu-rtc")}`, `Deployment/${turn("shop", "sfu-rtc")}`, `Service/${turn("shop", "sfu-rtc")}`],
  );
  for (const object of objects) {
    const result = await validateKubernetesObject(object as never);
    t.deepEqual(result.violations, [], `${object.kind} is not schema-valid`);
  }
  const deployment = objects[1] as unknown as {
    metadata: { namespace: string };
    spec: { template: { metadata: { labels: Record<string, string> }; spec: { hostNetwork: boolean; containers: { args?: string[] }[] } } };
  };
  // What the netpol service admits into the rtc process (kubernetes-policies.ts): its app's `<type>-gateway` pods of the base namespace.
  t.like(deployment.spec.template.metadata.labels, { "app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "sfu-rtc-gateway" });
  t.is(deployment.metadata.namespace, settings.namespace);
  const args = deployment.spec.template.spec.containers[0]!.args!;
  t.true(
    args.includes("--listening-port=40001") && args.includes("--min-port=50000") && args.includes("--max-port=50255") && args.includes("--use-auth-secret"),
  );
  t.false(JSON.stringify(deployment).includes("s1"), "a secret leaked into the Deployment");
  const service = objects[2] as unknown as { spec: { ports: { port: number; protocol: string }[] } };
  t.deepEqual(
    service.spec.ports.map((port) => `${port.protocol}/${port.port}`),
    ["UDP/40001", "TCP/40001"],
  );
});

test("gateways are applied idempotently, rotated without touching the Deployment, and pruned", async (t) => {
  // Resource versions are compared: no simulated controller may write status in between.
  const api = await createFakeKubeApi({ controllers: false });
  t.teardown(() => api.close());
  const engine = createKubernetesGateways({ kubeConfig: api.kubeConfig(), settings, logger: silentLogger });
  const versions = () =>
    Object.fromEntries(
      api
        .objects({ labelSelector: managed })
        .filter(applied)
        .map((o) => [`${o.kind}/${(o.metadata as { name: string }).name}`, (o.metadata as { resourceVersion: string }).resourceVersion]),
    );

  await engine.apply([spec("shop", 40001, ["s1"]), spec("blog", 40002, ["b1"])]);
  const first = versions();
  t.is(Object.keys(first).length, 6);
  await engine.apply([spec("shop", 40001, ["s1"]), spec("blog", 40002, ["b1"])]);
  t.deepEqual(versions(), first, "applying the same gateways again changed something");

  await engine.apply([spec("shop", 40001, ["s2", "s1"]), spec("blog", 40002, ["b1"])]);
  const rotated = versions();
  t.not(rotated[`Secret/${turn("shop", "sfu-rtc")}`], first[`Secret/${turn("shop", "sfu-rtc")}`]);
  t.is(rotated[`Deployment/${turn("shop", "sfu-rtc")}`], first[`Deployment/${turn("shop", "sfu-rtc")}`], "a rotation restarted the gateway");

  await engine.apply([spec("shop", 40001, ["s2"])]);
  t.deepEqual(Object.keys(versions()).sort(), [
    `Deployment/${turn("shop", "sfu-rtc")}`,
    `Secret/${turn("shop", "sfu-rtc")}`,
    `Service/${turn("shop", "sfu-rtc")}`,
  ]);
});

test("on the kubernetes engine an allocation brings its coturn objects and releasing the app prunes them", async (t) => {
  const api = await createFakeKubeApi();
  t.teardown(() => api.close());
  const config = testConfig(t, { BERTH_ENGINE: "kubernetes", BERTH_KUBERNETES_NAMESPACE: NAMESPACE });
  const { client } = await startTestAllocator(t, config, { kubeConfig: api.kubeConfig() });
  await client.ensureAllocation({ team: "acme", app: "shop", processType: "sfu-rtc", replicas: 1 });
  await client.ensureAllocation({ team: "acme", app: "shop", processType: "voice-rtc", replicas: 1 });
  const names = () => api.objects({ labelSelector: managed, kind: "Deployment" }).map((o) => (o.metadata as { name: string }).name);
  const until = async (wanted: string[]) => {
    for (let i = 0; i < 100 && JSON.stringify(names()) !== JSON.stringify(wanted); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    return names();
  };
  t.deepEqual(await until([turn("shop", "sfu-rtc"), turn("shop", "voice-rtc")]), [turn("shop", "sfu-rtc"), turn("shop", "voice-rtc")]);
  await client.releaseAllocation({ app: "shop", processType: "voice-rtc" });
  t.deepEqual(await until([turn("shop", "sfu-rtc")]), [turn("shop", "sfu-rtc")]);
  await client.releaseApp({ app: "shop" });
  t.deepEqual(await until([]), []);
  for (let i = 0; i < 100 && api.objects({ labelSelector: managed }).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(api.objects({ labelSelector: managed }), []);
});
