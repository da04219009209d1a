import test from "ava";
import { ReplicaState } from "@berth/proto/type/v1/process";
import { RolloutState } from "@berth/proto/type/v1/release";
import type { WatchEndpointsResponse } from "@berth/proto/scheduler/v1/scheduler";
import { deployDemo, eventually, httpGet, readyReplicas, startTestScheduler } from "./support/scheduler-harness.js";

test("a replica that turns unhealthy leaves the endpoints at once and is restarted", async (t) => {
  const { client } = await startTestScheduler(t, { BERTH_SCHEDULER_HEALTH_START_TIMEOUT_MS: "2000" });
  await client.createApp({ team: "acme", name: "shop" });
  await client.updateFormation({ app: "shop", changes: [{ processType: "web", health: { path: "/health" } }] });
  await deployDemo(client, "shop");
  await client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 2 }] });
  const [sick, well] = await eventually(async () => {
    const ready = await readyReplicas(client, "shop", "web");
    return ready.length === 2 ? ready : undefined;
  }, "two ready replicas");

  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const messages: WatchEndpointsResponse[] = [];
  const watching = (async () => {
    for await (const message of client.watchEndpoints({ consumer: "observer" }, { signal: controller.signal, timeoutMs: 0 })) {
      messages.push(message);
      await client.ackEndpoints({ consumer: "observer", generation: message.generation });
    }
  })().catch((error: unknown) => {
    if (!controller.signal.aborted) throw error;
  });
  const webOf = (message: WatchEndpointsResponse) => message.processes.find((set) => set.processType === "web");
  await eventually(async () => (messages.length > 0 ? true : undefined), "the snapshot");
  t.deepEqual(
    webOf(messages[0]!)
      ?.endpoints.map((e) => e.replica)
      .sort(),
    [sick!.name, well!.name].sort(),
  );

  await httpGet(sick!.port, "/health/fail");
  // Unhealthy after three failed checks: out of the endpoint set, the other replica still in.
  const without = await eventually(async () => {
    const last = messages.filter((m) => webOf(m) !== undefined).at(-1)!;
    return webOf(last)!.endpoints.length === 1 ? webOf(last)! : undefined;
  }, "the sick replica to leave the endpoints");
  t.deepEqual(
    without.endpoints.map((e) => e.replica),
    [well!.name],
  );
  const { replicas } = await client.listReplicas({ app: "shop", processType: "web" });
  t.true([ReplicaState.UNHEALTHY, ReplicaState.CRASHED, ReplicaState.STARTING].includes(replicas.find((r) => r.name === sick!.name)!.state));

  // Unhealthy past its start timeout, it is restarted, and comes back healthy.
  const back = await eventually(async () => {
    const replica = (await client.listReplicas({ app: "shop", processType: "web" })).replicas.find((r) => r.name === sick!.name);
    return replica?.ready && replica.restarts >= 1 ? replica : undefined;
  }, "the sick replica to be restarted");
  t.is(back.state, ReplicaState.UP);
  await eventually(
    async () => (webOf(messages.filter((m) => webOf(m) !== undefined).at(-1)!)!.endpoints.length === 2 ? true : undefined),
    "both replicas back in the endpoints",
  );
  controller.abort();
  await watching;
});

test("the embedded PostgreSQL store runs a deploy as an external PostgreSQL does", async (t) => {
  const { client } = await startTestScheduler(t, { DATABASE_URL: "" });
  await client.createApp({ team: "acme", name: "embedded" });
  const { rollout } = await deployDemo(client, "embedded");
  t.is(rollout.state, RolloutState.SUCCEEDED);
  const [web] = await readyReplicas(client, "embedded", "web");
  t.is(JSON.parse((await httpGet(web!.port)).body).app, "embedded");
});
