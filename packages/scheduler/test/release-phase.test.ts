import test from "ava";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ReleaseStatus, RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import { demoArchive, deployDemo, followRollout, httpGet, kinds, readyReplicas, startTestScheduler, uploadArchive } from "./support/scheduler-harness.js";

test("the release phase runs once per release; a failing one aborts the deploy and the old release keeps serving", async (t) => {
  const { client, dataDir } = await startTestScheduler(t);
  const marker = join(dataDir, "release-runs");
  await client.createApp({ team: "acme", name: "shop" });
  // Before the first release, config vars are only stored.
  const before = await client.updateConfig({ app: "shop", set: { RELEASE_MARKER: marker, GREETING: "v1 says hi" } });
  t.is(before.release, undefined);
  const first = await deployDemo(client, "shop");
  t.is(first.rollout.state, RolloutState.SUCCEEDED);
  t.is(await readFile(marker, "utf8"), "v1\n");

  // A config change makes a release, and its release phase fails.
  const { release, rollout } = await client.updateConfig({ app: "shop", set: { RELEASE_EXIT_CODE: "3", GREETING: "v2 says hi" } });
  t.is(release?.version, 2);
  const failed = await followRollout(client, "shop", rollout!.id);
  t.is(failed.rollout.state, RolloutState.FAILED);
  t.is(failed.rollout.reason, "RELEASE_PHASE_FAILED");
  t.deepEqual(kinds(failed.events), ["ROLLOUT_STARTED", "RELEASE_PHASE_STARTED", "RELEASE_PHASE_FAILED", "ROLLOUT_FAILED", "TRAFFIC_COUNTED"]);
  const phaseFailed = failed.events.find((event) => event.kind === RolloutEventKind.RELEASE_PHASE_FAILED)!;
  // stdout and stderr are separate files: lines of different streams may come in either order.
  t.deepEqual([...phaseFailed.logTail].sort(), ["migration failed with code 3", "release phase of v2: migrating"]);
  const { release: stored } = await client.getRelease({ app: "shop", version: 2 });
  t.is(stored?.status, ReleaseStatus.FAILED);
  t.is(stored?.failureReason, "RELEASE_PHASE_FAILED");
  t.is(stored?.failureMessage, "the release command exited with code 3");
  t.deepEqual([...(stored?.failureLog ?? [])].sort(), ["migration failed with code 3", "release phase of v2: migrating"]);

  // v1 still serves, and each release phase ran exactly once.
  const [web] = await readyReplicas(client, "shop", "web");
  t.like(JSON.parse((await httpGet(web!.port)).body), { release: "1", greeting: "v1 says hi" });
  t.is((await client.getApp({ name: "shop" })).app?.currentReleaseVersion, 1);
  t.is(await readFile(marker, "utf8"), "v1\nv2\n");
});

test("a release phase that outlives its timeout fails the deploy as RELEASE_PHASE_TIMEOUT", async (t) => {
  const { client } = await startTestScheduler(t, { BERTH_SCHEDULER_RELEASE_TIMEOUT_MS: "500" });
  await client.createApp({ team: "acme", name: "slow" });
  await client.updateConfig({ app: "slow", set: { RELEASE_SLEEP_MS: "60000" } });
  const { rollout } = await deployDemo(client, "slow");
  t.is(rollout.state, RolloutState.FAILED);
  t.is(rollout.reason, "RELEASE_PHASE_TIMEOUT");
  t.deepEqual((await client.listReplicas({ app: "slow" })).replicas, []);
});

test("a Procfile without a release line rolls out without a release phase", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "plain" });
  const uploadId = await uploadArchive(client, "plain", await demoArchive());
  const { rollout, events } = await deployDemo(client, "plain", { uploadId, procfile: "web: node web.js\n" });
  t.is(rollout.state, RolloutState.SUCCEEDED);
  t.false(kinds(events).includes("RELEASE_PHASE_STARTED"));
});
