import test from "ava";
import { ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import { ReleaseStatus, RolloutState } from "@berth/proto/type/v1/release";
import { deployDemo, httpGet, kinds, readyReplicas, startTestScheduler } from "./support/scheduler-harness.js";

test("deploys the demo app: the release phase runs, then web serves its release over HTTP", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  const { rollout, events, version } = await deployDemo(client, "shop");
  t.is(rollout.state, RolloutState.SUCCEEDED, `${rollout.reason} ${rollout.message}`);
  t.deepEqual(kinds(events).slice(0, 3), ["ROLLOUT_STARTED", "RELEASE_PHASE_STARTED", "RELEASE_PHASE_SUCCEEDED"]);
  t.true(kinds(events).includes("REPLICA_HEALTHY"));
  t.deepEqual(kinds(events).slice(-2), ["ROLLOUT_SUCCEEDED", "TRAFFIC_COUNTED"]);
  const [web] = await readyReplicas(client, "shop", "web");
  t.is(web?.state, ReplicaState.UP);
  const { body } = await httpGet(web!.port);
  t.like(JSON.parse(body), { app: "shop", process: "web", release: String(version) });
  const { release } = await client.getRelease({ app: "shop", version });
  t.is(release?.status, ReleaseStatus.SUCCEEDED);
  t.deepEqual(
    release?.processes.map((p) => [p.processType, p.routingClass]),
    [
      ["web", RoutingClass.WEB],
      ["admin-web", RoutingClass.WEB],
      ["worker", RoutingClass.WORKER],
      ["release", RoutingClass.RELEASE],
      ["api-tcp", RoutingClass.TCP],
    ],
  );
  const { app } = await client.getApp({ name: "shop" });
  t.is(app?.currentReleaseVersion, version);
  const { processes } = await client.getFormation({ app: "shop" });
  t.deepEqual(
    processes.map((p) => [p.processType, p.replicas, p.readyReplicas, p.size]),
    [
      ["web", 1, 1, "standard-1x"],
      ["admin-web", 0, 0, "standard-1x"],
      ["worker", 0, 0, "standard-1x"],
      ["api-tcp", 0, 0, "standard-1x"],
    ],
  );
});
