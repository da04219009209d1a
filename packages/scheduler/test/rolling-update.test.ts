import test from "ava";
import { LogStream } from "@berth/proto/type/v1/process";
import { ReleaseStatus, RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import type { WatchEndpointsResponse } from "@berth/proto/scheduler/v1/scheduler";
import { appGone, deployDemo, eventually, followRollout, httpGet, kinds, readyReplicas, startTestScheduler } from "./support/scheduler-harness.js";

test("web=3 gives three healthy replicas over both zones, and scaling down leaves one", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  await deployDemo(client, "shop");
  const { processes } = await client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 3 }] });
  t.is(processes.find((p) => p.processType === "web")?.replicas, 3);
  const three = await eventually(async () => {
    const ready = await readyReplicas(client, "shop", "web");
    return ready.length === 3 ? ready : undefined;
  }, "three ready web replicas");
  t.deepEqual(three.map((r) => r.index).sort(), [0, 1, 2]);
  t.deepEqual(new Set(three.map((r) => r.zone)), new Set(["zone-a", "zone-b"]));
  const answers = await Promise.all(three.map(async (replica) => JSON.parse((await httpGet(replica.port)).body).replica as string));
  t.deepEqual(answers.sort(), three.map((r) => r.name).sort());
  t.is((await client.getFormation({ app: "shop" })).processes.find((p) => p.processType === "web")?.readyReplicas, 3);

  await client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 1 }] });
  const one = await eventually(async () => {
    const { replicas } = await client.listReplicas({ app: "shop", processType: "web" });
    return replicas.length === 1 && replicas[0]!.ready ? replicas : undefined;
  }, "one web replica left");
  t.is(JSON.parse((await httpGet(one[0]!.port)).body).replica, one[0]!.name);
});

test("a replica is never signalled before every endpoint consumer acknowledged its removal", async (t) => {
  const { client } = await startTestScheduler(t, { BERTH_SCHEDULER_DRAIN_TIMEOUT_MS: "20000" });
  await client.createApp({ team: "acme", name: "shop" });
  await deployDemo(client, "shop");
  const [old] = await readyReplicas(client, "shop", "web");

  // A consumer that reports removed replicas drained at once (it holds no connection to them) but takes
  // 1.5 s to acknowledge each generation: only the acknowledgement gate can then hold the SIGTERM back.
  const consumer = new AbortController();
  t.teardown(() => consumer.abort());
  const ackedAt = new Map<bigint, number>();
  const messages: WatchEndpointsResponse[] = [];
  const stream = client.watchEndpoints({ consumer: "slow-router" }, { signal: consumer.signal, timeoutMs: 0 });
  let firstMessage!: () => void;
  const connected = new Promise<void>((resolve) => (firstMessage = resolve));
  const consuming = (async () => {
    const known = new Set<string>();
    for await (const message of stream) {
      messages.push(message);
      firstMessage();
      const removed = [...known].filter(
        (name) => !message.processes.some((set) => set.endpoints.some((e) => e.replica === name)) && message.processes.some((set) => set.processType === "web"),
      );
      for (const set of message.processes) for (const endpoint of set.endpoints) known.add(endpoint.replica);
      if (removed.length > 0) await client.reportDrained({ consumer: "slow-router", replicas: removed });
      setTimeout(() => {
        ackedAt.set(message.generation, Date.now());
        void client.ackEndpoints({ consumer: "slow-router", generation: message.generation });
      }, 1500);
    }
  })().catch((error: unknown) => {
    if (!consumer.signal.aborted) throw error;
  });
  await connected;
  t.true(messages[0]!.snapshot);
  t.is(messages[0]!.processes.find((set) => set.processType === "web")?.endpoints[0]?.replica, old!.name);

  const { rollout } = await client.restartProcess({ app: "shop", processType: "web" });
  const done = await followRollout(client, "shop", rollout!.id);
  t.is(done.rollout.state, RolloutState.SUCCEEDED);
  t.true(kinds(done.events).includes("REPLICA_DRAINING"));

  // The generation that no longer lists the old replica, and when the consumer acknowledged it.
  const removal = messages.find(
    (message) => !message.snapshot && message.processes.some((set) => set.processType === "web" && !set.endpoints.some((e) => e.replica === old!.name)),
  );
  t.truthy(removal);
  const sigterm = await eventually(async () => {
    const lines: { time: number; text: string }[] = [];
    for await (const { line } of client.streamLogs({ app: "shop", replica: old!.name, tailLines: 100 })) {
      if (line!.stream === LogStream.SYSTEM) lines.push({ time: Number(line!.time!.seconds) * 1000 + line!.time!.nanos / 1e6, text: line!.text });
    }
    return lines.find((line) => line.text.startsWith("stopping: SIGTERM"));
  }, "the old replica's SIGTERM");
  const acked = ackedAt.get(removal!.generation);
  t.truthy(acked, "the consumer acknowledged the removal");
  t.true(sigterm.time >= acked!, `SIGTERM at ${sigterm.time}, acknowledged at ${acked}`);
  consumer.abort();
  await consuming;
});

test("a release whose web never gets healthy is rolled back automatically and the old release keeps serving", async (t) => {
  const { client } = await startTestScheduler(t, { BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "3000" });
  await client.createApp({ team: "acme", name: "shop" });
  await client.updateFormation({ app: "shop", changes: [{ processType: "web", health: { path: "/health" } }] });
  await deployDemo(client, "shop");
  const { rollout } = await client.updateConfig({ app: "shop", set: { HEALTH_STATUS: "503" } });
  const outcome = await followRollout(client, "shop", rollout!.id);
  t.is(outcome.rollout.state, RolloutState.ROLLED_BACK);
  t.is(outcome.rollout.reason, "PROGRESS_DEADLINE_EXCEEDED");
  t.deepEqual(
    kinds(outcome.events)
      .filter((kind) => kind !== "REPLICA_STOPPED")
      .slice(-2),
    ["ROLLOUT_ROLLED_BACK", "TRAFFIC_COUNTED"],
  );
  const unhealthy = outcome.events.find((event) => event.kind === RolloutEventKind.REPLICA_UNHEALTHY && event.reason === "PROGRESS_DEADLINE_EXCEEDED");
  t.regex(unhealthy?.message ?? "", /rolling back to v1/);
  const { release } = await client.getRelease({ app: "shop", version: 2 });
  t.is(release?.status, ReleaseStatus.ROLLED_BACK);
  t.is(release?.failureReason, "PROGRESS_DEADLINE_EXCEEDED");
  t.is((await client.getApp({ name: "shop" })).app?.currentReleaseVersion, 1);
  const replicas = await eventually(async () => {
    const { replicas } = await client.listReplicas({ app: "shop" });
    return replicas.length === 1 ? replicas : undefined;
  }, "only the v1 replica left");
  t.is(replicas[0]!.releaseVersion, 1);
  t.is(JSON.parse((await httpGet(replicas[0]!.port)).body).release, "1");
  // The lease is free again: the next deploy goes ahead.
  const { rollout: next } = await client.updateConfig({ app: "shop", unset: ["HEALTH_STATUS"] });
  t.is((await followRollout(client, "shop", next!.id)).rollout.state, RolloutState.SUCCEEDED);
});

test("right after an automatic rollback, deleting an app does not wait the drain timeout for replicas that never served", async (t) => {
  // The drain timeout is far longer than the call's deadline: a deletion that waits for it fails.
  const { client } = await startTestScheduler(t, { BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "3000", BERTH_SCHEDULER_DRAIN_TIMEOUT_MS: "600000" });
  // A router: acknowledges every generation and reports replicas drained once they leave its endpoints.
  const consumer = new AbortController();
  t.teardown(() => consumer.abort());
  const consuming = (async () => {
    const known = new Set<string>();
    for await (const message of client.watchEndpoints({ consumer: "router-0" }, { signal: consumer.signal, timeoutMs: 0 })) {
      const current = new Set(message.processes.flatMap((set) => set.endpoints.map((endpoint) => endpoint.replica)));
      const removed = [...known].filter((name) => !current.has(name));
      for (const name of current) known.add(name);
      for (const name of removed) known.delete(name);
      await client.ackEndpoints({ consumer: "router-0", generation: message.generation });
      if (removed.length > 0) await client.reportDrained({ consumer: "router-0", replicas: removed });
    }
  })().catch((error: unknown) => {
    if (!consumer.signal.aborted) throw error;
  });
  await client.createApp({ team: "acme", name: "shop" });
  await client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 2, health: { path: "/health" } }] });
  await deployDemo(client, "shop");
  const { rollout } = await client.updateConfig({ app: "shop", set: { HEALTH_STATUS: "503" } });
  t.is((await followRollout(client, "shop", rollout!.id)).rollout.state, RolloutState.ROLLED_BACK);
  await client.deleteApp({ name: "shop" });
  // Within a tenth of the drain timeout: a deletion that waited for it would not be done.
  await eventually(async () => ((await appGone(client, "shop")) ? true : undefined), "the app gone", 60_000);
  consumer.abort();
  await consuming;
});

test("deleting an app stops its processes, then forgets it", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "gone" });
  await deployDemo(client, "gone");
  const [web] = await readyReplicas(client, "gone", "web");
  // The answer comes once the replicas left the endpoints; the app goes once they stopped.
  t.true((await client.deleteApp({ name: "gone" })).deletionContinues);
  await eventually(async () => ((await appGone(client, "gone")) ? true : undefined), "the app gone");
  await t.throwsAsync(httpGet(web!.port));
  await client.createApp({ team: "acme", name: "gone" });
});
