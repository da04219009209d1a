import test from "ava";
import { Code, type ConnectError } from "@connectrpc/connect";
import type { ExecutionContext } from "ava";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createLogger, processObjectName, teamNamespace } from "@berth/kit";
import { createFakeKubeApi, validateKubernetesObject } from "@berth/fake-kube-api";
import type { FakeKubeApi } from "@berth/fake-kube-api";
import { ReleaseStatus, RolloutState } from "@berth/proto/type/v1/release";
import { readSchedulerConfig, startScheduler } from "../src/index.js";
import { DEMO_DIR, eventually, followRollout, isolation, kinds, schedulerClient, testEnvironment } from "./support/scheduler-harness.js";

const NAMESPACE = teamNamespace("berth-apps", "acme");
const shop = (processType: string) => processObjectName("shop", processType);
type Stored = {
  kind: string;
  metadata: { name: string; generation: number; resourceVersion: string; labels?: Record<string, string> };
  spec: any;
  status?: any;
};

async function setup(t: ExecutionContext, overrides: Record<string, string> = {}) {
  // This test plays the cluster's controllers itself (it writes status), so the simulated ones stay off.
  const api = await createFakeKubeApi({ controllers: false });
  t.teardown(() => api.close());
  const place = await isolation(t);
  const config = readSchedulerConfig(testEnvironment(place.dataDir, place.schema, { BERTH_ENGINE: "kubernetes", ...overrides }));
  const scheduler = await startScheduler(config, { logger: createLogger("scheduler", { level: "error" }), kubeConfig: api.kubeConfig() });
  t.teardown(() => scheduler.drain(1000));
  const stored = (kind: string, name?: string) => api.objects({ kind, namespace: NAMESPACE, ...(name ? { name } : {}) }) as unknown as Stored[];
  return { api, client: schedulerClient(scheduler.url), stored, control: controllerOf(api, stored) };
}

/** Plays the cluster's controllers: writes the status a Job or Deployment would get. */
function controllerOf(api: FakeKubeApi, stored: (kind: string, name?: string) => Stored[]) {
  async function writeStatus(path: string, kind: string, name: string, status: (object: Stored) => unknown): Promise<void> {
    const object = stored(kind, name)[0]!;
    const response = await fetch(`${api.url}${path}/namespaces/${NAMESPACE}/${kind.toLowerCase()}s/${name}/status`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...object, status: status(object) }),
    });
    if (response.status !== 200) throw new Error(`status of ${kind}/${name}: ${response.status} ${await response.text()}`);
  }
  return {
    async finishJob(name: string, outcome: "Complete" | "Failed") {
      await eventually(async () => (stored("Job", name).length === 1 ? true : undefined), `Job ${name}`);
      await writeStatus("/apis/batch/v1", "Job", name, () => ({
        conditions: [
          {
            type: outcome,
            status: "True",
            ...(outcome === "Failed" ? { reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" } : {}),
          },
        ],
      }));
    },
    /** Every Deployment of the app is rolled out as its spec asks. */
    async rollOut(app: string) {
      for (const deployment of stored("Deployment").filter((d) => d.metadata.labels?.["app.kubernetes.io/name"] === app)) {
        const replicas = deployment.spec.replicas ?? 1;
        await writeStatus("/apis/apps/v1", "Deployment", deployment.metadata.name, (object) => ({
          observedGeneration: object.metadata.generation,
          replicas,
          updatedReplicas: replicas,
          readyReplicas: replicas,
          availableReplicas: replicas,
        }));
      }
    },
  };
}

const image = (version: number) => `registry.example.com/acme/shop:v${version}`;
const imageOf = (deployment: Stored) => deployment.spec.template.spec.containers[0].image as string;

test("on the kubernetes engine a deploy runs the release Job first, then applies schema-valid objects and follows their rollout", async (t) => {
  const { client, stored, control } = await setup(t);
  const procfile = await readFile(join(DEMO_DIR, "Procfile"), "utf8");
  await client.createApp({ team: "acme", name: "shop" });
  const refused = await t.throwsAsync(client.createRelease({ app: "shop", artifact: { source: { case: "sourceUploadId", value: "up-x" } }, procfile }));
  t.regex(refused!.message, /artifact\.image/);
  // No canary on a cluster yet: refused before anything is stored (the release below is still v1).
  const canary = await t.throwsAsync<ConnectError>(
    client.createRelease({ app: "shop", artifact: { source: { case: "image", value: image(1) } }, procfile, canary: { percent: 10 } }),
  );
  t.is(canary?.code, Code.FailedPrecondition);
  t.regex(canary!.message, /canary: the kubernetes engine cannot split/);

  const { rollout, release } = await client.createRelease({ app: "shop", artifact: { source: { case: "image", value: image(1) } }, procfile });
  t.is(release?.version, 1);
  await control.finishJob("shop-release-v1", "Complete");
  // No Deployment changes before the release Job succeeded.
  await eventually(async () => (stored("Deployment").length === 4 ? true : undefined), "the Deployments");
  // New apps run web=1 and every other type 0.
  t.deepEqual(
    stored("Deployment")
      .map((d) => [d.metadata.name, d.spec.replicas])
      .sort(),
    [
      [shop("admin-web"), 0],
      [shop("api-tcp"), 0],
      [shop("web"), 1],
      [shop("worker"), 0],
    ],
  );
  const following = followRollout(client, "shop", rollout!.id);
  await eventually(async () => {
    await control.rollOut("shop");
    return (await client.getRollout({ app: "shop", rolloutId: rollout!.id })).rollout?.state === RolloutState.SUCCEEDED ? true : undefined;
  }, "the rollout to succeed");
  const done = await following;
  t.deepEqual(kinds(done.events), ["ROLLOUT_STARTED", "RELEASE_PHASE_STARTED", "RELEASE_PHASE_SUCCEEDED", "ROLLOUT_SUCCEEDED", "TRAFFIC_COUNTED"]);
  for (const kind of ["Deployment", "Service", "Job"]) {
    for (const object of stored(kind)) t.deepEqual((await validateKubernetesObject(object as never)).violations, [], `${kind}/${object.metadata.name}`);
  }
  t.is(stored("Deployment", shop("web"))[0]!.spec.replicas, 1);
  t.is(imageOf(stored("Deployment", shop("web"))[0]!), image(1));

  // Scaling and autoscaling apply at once: web=3 spreads over zones, an HPA governs the worker.
  await client.updateFormation({
    app: "shop",
    changes: [
      { processType: "web", replicas: 3 },
      { processType: "api-tcp", replicas: 1 },
    ],
  });
  await client.setAutoscale({ app: "shop", rule: { processType: "worker", minReplicas: 1, maxReplicas: 4, targetCpuPercent: 60 } });
  const web = await eventually(async () => {
    const deployment = stored("Deployment", shop("web"))[0]!;
    return deployment.spec.replicas === 3 ? deployment : undefined;
  }, "web at 3 replicas");
  t.is(web.spec.template.spec.topologySpreadConstraints[0].topologyKey, "topology.kubernetes.io/zone");
  const tcp = await eventually(async () => stored("Service", "shop-api-tcp")[0], "the api-tcp Service, named <app>-<type>: its internal hostname");
  t.deepEqual((await validateKubernetesObject(tcp as never)).violations, []);
  const hpa = await eventually(async () => stored("HorizontalPodAutoscaler", shop("worker"))[0], "the worker's HPA");
  t.like(hpa.spec, { minReplicas: 1, maxReplicas: 4 });
  t.deepEqual((await validateKubernetesObject(hpa as never)).violations, []);

  await client.deleteApp({ name: "shop" });
  t.deepEqual([...stored("Deployment"), ...stored("Service"), ...stored("HorizontalPodAutoscaler"), ...stored("Job")], []);
});

test("on the kubernetes engine a name Kubernetes would refuse is INVALID_ARGUMENT before anything is stored or applied", async (t) => {
  const { client, api } = await setup(t);
  const app = `a${"b".repeat(53)}`;
  await client.createApp({ team: "acme", name: app });
  const refused = await t.throwsAsync(
    client.createRelease({ app, artifact: { source: { case: "image", value: image(1) } }, procfile: "web: node web.js\nadmin-web: node admin.js\n" }),
  );
  t.is((refused as ConnectError).code, Code.InvalidArgument);
  // Process objects' names are cut to fit; the release's config Secret is named after the app alone.
  t.regex(refused!.message, /app: on Kubernetes, "ab+-config-v1" is longer than 63 characters/);
  t.is((await client.listReleases({ app })).releases.length, 0, "no release was stored");
  t.deepEqual(
    api.requests.filter((request) => request.verb === "apply" || request.verb === "create"),
    [],
    "nothing was applied",
  );
});

test("on the kubernetes engine two apps of a team whose <app>-<type> collide get distinct objects and neither touches the other's; a colliding tcp hostname is refused", async (t) => {
  const { client, control, stored } = await setup(t);
  await client.createApp({ team: "acme", name: "a" });
  await client.createApp({ team: "acme", name: "a-b" });
  const deploy = async (app: string, procfile: string, version: number) => {
    await client.createRelease({ app, artifact: { source: { case: "image", value: image(version) } }, procfile });
    await eventually(async () => {
      await control.rollOut(app);
      return (await client.getApp({ name: app })).app?.currentReleaseVersion === version ? true : undefined;
    }, `app ${app} at v${version}`);
  };
  // Workers: `a-b-worker` either way (a web's platform hostname would be refused as ALREADY_EXISTS first).
  await deploy("a", "b-worker: node worker.js\nb-api-tcp: node tcp.js\n", 1);
  const ofApp = (app: string) => stored("Deployment").filter((deployment) => deployment.metadata.labels?.["app.kubernetes.io/name"] === app);
  const workerOf = (app: string) => ofApp(app).find((deployment) => deployment.metadata.labels?.["app.kubernetes.io/component"]?.endsWith("worker"));
  const before = ofApp("a");
  const theirs = workerOf("a");

  // The internal hostname a-b-api-tcp is app a's: a real conflict, refused before anything is applied.
  const refused = await t.throwsAsync(
    client.createRelease({ app: "a-b", artifact: { source: { case: "image", value: image(1) } }, procfile: "worker: node worker.js\napi-tcp: node tcp.js\n" }),
  );
  t.is((refused as ConnectError).code, Code.InvalidArgument);
  t.regex(refused!.message, /"a-b-api-tcp", the internal hostname of process "api-tcp", is already app "a"'s process "b-api-tcp"/);

  await deploy("a-b", "worker: node worker.js\n", 1);
  const ours = workerOf("a-b");
  t.not(ours!.metadata.name, theirs!.metadata.name, "distinct Deployments");
  t.true(ours!.metadata.name.startsWith("a-b-worker-") && theirs!.metadata.name.startsWith("a-b-worker-"));
  await client.updateFormation({ app: "a-b", changes: [{ processType: "worker", replicas: 3 }] });
  await eventually(async () => (ofApp("a-b")[0]?.spec.replicas === 3 ? true : undefined), "a-b's worker at 3");
  await deploy("a-b", "worker: node worker.js\n", 2);
  await client.deleteApp({ name: "a-b" });
  await eventually(async () => (ofApp("a-b").length === 0 ? true : undefined), "a-b's objects gone");
  t.deepEqual(ofApp("a"), before, "app a's Deployments untouched by a-b's scale, deploy and deletion");
  t.deepEqual(
    stored("Service").map((service) => service.metadata.name),
    ["a-b-api-tcp"],
    "app a's tcp Service, by its internal hostname",
  );
});

test("on the kubernetes engine a failed release Job aborts the deploy and a rollout that makes no progress is rolled back", async (t) => {
  const { client, stored, control } = await setup(t, { BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "1500" });
  const procfile = "web: bin/web\nrelease: bin/migrate\n";
  await client.createApp({ team: "acme", name: "shop" });
  const first = await client.createRelease({ app: "shop", artifact: { source: { case: "image", value: image(1) } }, procfile });
  await control.finishJob("shop-release-v1", "Complete");
  await eventually(async () => {
    await control.rollOut("shop");
    return (await client.getRollout({ app: "shop", rolloutId: first.rollout!.id })).rollout?.state === RolloutState.SUCCEEDED ? true : undefined;
  }, "v1 to roll out");

  const second = await client.createRelease({ app: "shop", artifact: { source: { case: "image", value: image(2) } }, procfile });
  await control.finishJob("shop-release-v2", "Failed");
  const failed = await followRollout(client, "shop", second.rollout!.id);
  t.is(failed.rollout.state, RolloutState.FAILED);
  t.is(failed.rollout.reason, "RELEASE_PHASE_FAILED");
  t.regex((await client.getRelease({ app: "shop", version: 2 })).release!.failureMessage, /BackoffLimitExceeded/);
  t.is(imageOf(stored("Deployment", shop("web"))[0]!), image(1));

  // v3's pods never become available: the progress deadline passes and v1 is applied again.
  const third = await client.createRelease({ app: "shop", artifact: { source: { case: "image", value: image(3) } }, procfile });
  await control.finishJob("shop-release-v3", "Complete");
  await eventually(async () => (imageOf(stored("Deployment", shop("web"))[0]!) === image(3) ? true : undefined), "v3 applied");
  await eventually(async () => (imageOf(stored("Deployment", shop("web"))[0]!) === image(1) ? true : undefined), "v1 applied again");
  const following = followRollout(client, "shop", third.rollout!.id);
  await eventually(async () => {
    await control.rollOut("shop");
    return (await client.getRollout({ app: "shop", rolloutId: third.rollout!.id })).rollout?.state === RolloutState.ROLLED_BACK ? true : undefined;
  }, "the rollback to finish");
  const rolledBack = await following;
  t.is(rolledBack.rollout.reason, "PROGRESS_DEADLINE_EXCEEDED");
  t.is((await client.getRelease({ app: "shop", version: 3 })).release?.status, ReleaseStatus.ROLLED_BACK);
  t.is((await client.getApp({ name: "shop" })).app?.currentReleaseVersion, 1);
});
