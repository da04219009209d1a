import test from "ava";
import type { ExecutionContext } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { createLogger, processObjectName, teamNamespace } from "@berth/kit";
import { createFakeKubeApi } from "@berth/fake-kube-api";
import { RolloutState } from "@berth/proto/type/v1/release";
import { readSchedulerConfig, startScheduler } from "../src/index.js";
import { eventually, followRollout, isolation, schedulerClient, testEnvironment } from "./support/scheduler-harness.js";
import { startTestRegistry } from "./support/oci-registry.js";

const NAMESPACE = teamNamespace("berth-apps", "acme");

async function setup(t: ExecutionContext, env: Record<string, string> = {}) {
  const registry = await startTestRegistry({ bearer: true });
  t.teardown(() => registry.close());
  const api = await createFakeKubeApi({ podTimings: { startMs: 10, readyMs: 10 } });
  t.teardown(() => api.close());
  const place = await isolation(t);
  const config = readSchedulerConfig(
    testEnvironment(place.dataDir, place.schema, {
      BERTH_ENGINE: "kubernetes",
      BERTH_RESOLVE_IMAGE_DIGESTS: "true",
      BERTH_INSECURE_REGISTRIES: registry.host,
      ...env,
    }),
  );
  const scheduler = await startScheduler(config, { logger: createLogger("scheduler", { level: "error" }), kubeConfig: api.kubeConfig() });
  t.teardown(() => scheduler.drain(1000));
  const client = schedulerClient(scheduler.url);
  type Deployment = { spec: { template: { spec: { containers: { image: string }[] } } } };
  const webImage = () => {
    const [deployment] = api.objects({ kind: "Deployment", namespace: NAMESPACE, name: processObjectName("shop", "web") }) as Deployment[];
    return deployment?.spec.template.spec.containers[0]?.image;
  };
  return { registry, client, webImage, api };
}

test("a release of an image tag records the registry's digest and its pods run name@digest: a moved tag changes neither a scale-up nor a rollback", async (t) => {
  const { registry, client, webImage } = await setup(t);
  const first = registry.push("acme/shop", "v1");
  const image = `${registry.host}/acme/shop:v1`;
  await client.createApp({ team: "acme", name: "shop" });

  const { release, rollout } = await client.createRelease({ app: "shop", artifact: { source: { case: "image", value: image } } });
  t.is(release!.artifact!.source.value, image, "the release shows the reference as given");
  t.is(release!.artifact!.digest, first, "and records the digest the tag pointed at");
  t.is((await followRollout(client, "shop", rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  t.is(webImage(), `${registry.host}/acme/shop@${first}`);

  // The tag moves on the registry: what v1 runs does not.
  const second = registry.push("acme/shop", "v1");
  await client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 3 }] });
  await eventually(
    async () => ((await client.getFormation({ app: "shop" })).processes.find((p) => p.processType === "web")?.replicas === 3 ? true : undefined),
    "web=3",
  );
  t.is(webImage(), `${registry.host}/acme/shop@${first}`, "a scale-up runs the released bytes, not the moved tag");

  const v2 = await client.createRelease({ app: "shop", artifact: { source: { case: "image", value: image } } });
  t.is(v2.release!.artifact!.digest, second, "a new release of the same tag pins what the tag points at now");
  t.is((await followRollout(client, "shop", v2.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  t.is(webImage(), `${registry.host}/acme/shop@${second}`);

  const back = await client.rollback({ app: "shop", version: 1 });
  t.is(back.release!.artifact!.digest, first);
  t.is((await followRollout(client, "shop", back.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  t.is(webImage(), `${registry.host}/acme/shop@${first}`, "a rollback runs v1's bytes although the tag moved since");
});

test("an image the registry does not have is refused with INVALID_ARGUMENT on artifact.image before anything is stored; a digest given is checked", async (t) => {
  const { registry, client } = await setup(t);
  await client.createApp({ team: "acme", name: "shop" });
  const missing = ConnectError.from(
    await t.throwsAsync(client.createRelease({ app: "shop", artifact: { source: { case: "image", value: `${registry.host}/acme/shop:nope` } } })),
  );
  t.is(missing.code, Code.InvalidArgument);
  t.regex(missing.message, /artifact\.image.*has no image/);
  const badDigest = ConnectError.from(
    await t.throwsAsync(
      client.createRelease({ app: "shop", artifact: { source: { case: "image", value: `${registry.host}/acme/shop:v1` }, digest: "sha256:1234" } }),
    ),
  );
  t.is(badDigest.code, Code.InvalidArgument);
  t.regex(badDigest.message, /artifact\.digest/);
  t.deepEqual((await client.listReleases({ app: "shop" })).releases, []);

  // A reference pinned already needs no registry at all.
  const pinned = `${registry.host}/acme/other@sha256:${"b".repeat(64)}`;
  const before = registry.requests.length;
  const { release } = await client.createRelease({ app: "shop", artifact: { source: { case: "image", value: pinned } } });
  t.is(release!.artifact!.digest, `sha256:${"b".repeat(64)}`);
  t.is(registry.requests.length, before);
});

test("with no registry to ask, a release runs by tag and is pinned to the digest its first pod pulled (the runtime's name@sha256 image ID)", async (t) => {
  const { client, webImage, api } = await setup(t, { BERTH_RESOLVE_IMAGE_DIGESTS: "false" });
  const image = "registry.internal.example/acme/shop:v1";
  await client.createApp({ team: "acme", name: "shop" });
  const { release, rollout } = await client.createRelease({ app: "shop", artifact: { source: { case: "image", value: image } } });
  t.is(release!.artifact!.digest, "", "nothing known at release time");
  t.is((await followRollout(client, "shop", rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  const pulled = await eventually(async () => {
    const pod = api.objects({ kind: "Pod", namespace: NAMESPACE }).find((candidate) => (candidate as any).status?.containerStatuses?.[0]?.imageID);
    return (pod as any)?.status.containerStatuses[0].imageID as string | undefined;
  }, "a pod reporting the image it pulled");
  const digest = pulled.slice(pulled.indexOf("@") + 1);
  t.regex(digest, /^sha256:[0-9a-f]{64}$/);
  const pinned = await eventually(async () => {
    const found = (await client.getRelease({ app: "shop", version: 1 })).release;
    return found?.artifact?.digest ? found : undefined;
  }, "the release pinned");
  t.is(pinned.artifact!.digest, digest);
  t.is(pinned.artifact!.source.value, image, "the reference as given stays");
  await eventually(async () => (webImage() === `registry.internal.example/acme/shop@${digest}` ? true : undefined), "the Deployment pinned");
});
