import test from "ava";
import type { WatchAppsResponse } from "@berth/proto/api/v1/apps";
import { Code, ConnectError } from "@connectrpc/connect";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { RolloutState } from "@berth/proto/type/v1/release";
import { deployDirectory, eventually, followRolloutThroughApi, startPlatformHarness } from "./support/platform-harness.js";

/** Reads a stream in the background; `seen` holds every message so far. */
function collect(stream: AsyncIterable<WatchAppsResponse>) {
  const seen: WatchAppsResponse[] = [];
  const done = (async () => {
    for await (const message of stream) seen.push(message);
  })().catch((error: unknown) => ConnectError.from(error));
  return { seen, done };
}

const names = (message: WatchAppsResponse) => message.apps.map((change) => `${change.app?.name}${change.deleted ? " deleted" : ""}`);

test("WatchApps shows a team its own apps live (snapshot, a rollout, ready replicas, deletion) and never another team's", async (t) => {
  const h = await startPlatformHarness(t);
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  await acme.clients.apps.createApp({ name: "before" });
  await globex.clients.apps.createApp({ name: "rival" });

  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const watch = collect(acme.clients.apps.watchApps({}, { signal: abort.signal }));
  await eventually(async () => watch.seen[0], "the snapshot");
  t.true(watch.seen[0]!.snapshot);
  t.deepEqual(names(watch.seen[0]!), ["before"], "the snapshot holds the team's apps only");

  await globex.clients.apps.createApp({ name: "rival-two" });
  await acme.clients.apps.createApp({ name: "shop" });
  await eventually(async () => watch.seen.some((message) => names(message).includes("shop")) || undefined, "the new app");

  const deployed = await deployDirectory(acme.clients, "shop");
  const rolloutId = deployed.rollout!.id;
  // The rollout shows up while it runs, then the web process with its URL and ready replica once it ends.
  await eventually(
    async () => watch.seen.some((message) => message.apps.some((change) => change.app?.activeRolloutId === rolloutId)) || undefined,
    "the active rollout",
  );
  t.is((await followRolloutThroughApi(acme.clients, "shop", rolloutId)).rollout.state, RolloutState.SUCCEEDED);
  const settled = await eventually(async () => {
    const last = watch.seen.flatMap((message) => message.apps).findLast((change) => change.app?.name === "shop");
    const web = last?.processes.find((process) => process.processType === "web");
    // The route comes once the replica is ready: the app is sent again with its URL then.
    const routed = web?.urls.some((url) => url.startsWith("https://shop.berth.localhost"));
    return last?.app?.activeRolloutId === "" && web?.readyReplicas === 1 && routed ? last : undefined;
  }, "the rollout's end with a ready, routed web replica");
  const web = settled.processes.find((process) => process.processType === "web")!;
  t.is(web.routingClass, RoutingClass.WEB);
  t.true(
    web.urls.some((url) => url.startsWith("https://shop.berth.localhost")),
    `URLs as GetFormation shows them: ${web.urls.join(", ")}`,
  );
  t.is(settled.app!.currentReleaseVersion, 1);

  await globex.clients.apps.deleteApp({ app: "rival" });
  await acme.clients.apps.deleteApp({ app: "before" }, { timeoutMs: 60_000 });
  await eventually(async () => watch.seen.some((message) => names(message).includes("before deleted")) || undefined, "the deletion");

  const everything = watch.seen.flatMap(names);
  t.false(
    everything.some((name) => name.startsWith("rival")),
    `another team's apps never appear, created or deleted: ${everything.join(", ")}`,
  );
  abort.abort();
  t.is((await watch.done)?.code ?? Code.Canceled, Code.Canceled);
});

test("WatchApps refuses an admin token: apps belong to teams", async (t) => {
  const h = await startPlatformHarness(t);
  const error = await t.throwsAsync(async () => {
    for await (const _ of h.admin.apps.watchApps({})) break;
  });
  t.is(ConnectError.from(error).code, Code.PermissionDenied);
});
