import test from "ava";
import { CanaryState, RolloutState } from "@berth/proto/type/v1/release";
import { deployDemo, eventually, followRollout, isolation, startTestScheduler, uploadArchive, demoArchive } from "./support/scheduler-harness.js";

// admin-web stays scaled to zero: no canary replica, no split.
const PROCFILE = "web: node web.js\nadmin-web: node web.js\nworker: node worker.js\n";

test("a canary survives a scheduler restart: the next scheduler publishes its split at once, keeps its share and step, and promotes it; other types roll at the promotion", async (t) => {
  const place = await isolation(t);
  const first = await startTestScheduler(t, {}, place);
  await first.client.createApp({ team: "acme", name: "shop" });
  t.is((await deployDemo(first.client, "shop", { procfile: PROCFILE })).rollout.state, RolloutState.SUCCEEDED);
  await first.client.updateFormation({ app: "shop", changes: [{ processType: "worker", replicas: 1 }] });
  await eventually(async () => ((await first.client.listReplicas({ app: "shop", processType: "worker" })).replicas[0]?.ready ? true : undefined), "a worker");
  const uploadId = await uploadArchive(first.client, "shop", await demoArchive());
  const { rollout } = await first.client.createRelease({
    app: "shop",
    artifact: { source: { case: "sourceUploadId", value: uploadId } },
    procfile: PROCFILE,
    canary: { percent: 10, intervalMs: 600_000 },
  });
  const before = await eventually(async () => {
    const shown = (await first.client.getCanary({ app: "shop" })).rollout;
    return shown?.canary?.state === CanaryState.RUNNING ? shown : undefined;
  }, "the canary running");
  const replicasBefore = (await first.client.listReplicas({ app: "shop" })).replicas
    .map((replica) => [replica.processType, replica.name, replica.releaseVersion])
    .sort();
  // One canary replica beside the serving web (none for admin-web, at zero); the worker stays on v1 while the canary runs.
  t.deepEqual(
    replicasBefore.map(([type, , version]) => `${type} v${version}`),
    ["web v1", "web v2", "worker v1"],
  );
  await first.scheduler.close(1000);

  const second = await startTestScheduler(t, {}, place);
  // The first snapshot a router gets already splits the requests as before.
  for await (const message of second.client.watchEndpoints({ consumer: "router-test" })) {
    const web = message.processes.find((process) => process.app === "shop" && process.processType === "web");
    t.like(web?.canary, { releaseVersion: 2, percent: 10 });
    t.is(message.processes.find((process) => process.app === "shop" && process.processType === "admin-web")?.canary, undefined);
    break;
  }
  const after = (await second.client.getCanary({ app: "shop" })).rollout;
  t.is(after?.id, rollout!.id);
  t.like(after?.canary, { state: CanaryState.RUNNING, currentPercent: 10 });
  t.deepEqual(after?.canary?.stepStartedAt, before.canary?.stepStartedAt);
  const adopted = await eventually(async () => {
    const { replicas } = await second.client.listReplicas({ app: "shop" });
    return replicas.length === 3 && replicas.every((replica) => replica.ready) ? replicas : undefined;
  }, "the replicas adopted");
  t.deepEqual(adopted.map((replica) => [replica.processType, replica.name, replica.releaseVersion]).sort(), replicasBefore);

  await second.client.promoteCanary({ app: "shop" });
  const end = await followRollout(second.client, "shop", rollout!.id);
  t.is(end.rollout.state, RolloutState.SUCCEEDED);
  t.like(end.rollout.canary, { state: CanaryState.PROMOTED, byHand: true });
  const worker = (await second.client.listReplicas({ app: "shop", processType: "worker" })).replicas.filter((replica) => replica.ready);
  t.deepEqual(
    worker.map((replica) => replica.releaseVersion),
    [2],
  );
});
