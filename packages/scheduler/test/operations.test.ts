import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { LogStream, ReplicaState } from "@berth/proto/type/v1/process";
import { ReleaseStatus, RolloutState } from "@berth/proto/type/v1/release";
import type { WatchAppsResponse } from "@berth/proto/scheduler/v1/scheduler";
import {
  demoArchive,
  deployDemo,
  eventually,
  followRollout,
  httpGet,
  kinds,
  readyReplicas,
  appGone,
  deployStubborn,
  startTestScheduler,
  uploadArchive,
} from "./support/scheduler-harness.js";

test("logs: a replica's last lines, then new ones as they come", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  await deployDemo(client, "shop");
  await client.updateFormation({ app: "shop", changes: [{ processType: "worker", replicas: 1 }] });
  const [worker] = await eventually(async () => {
    const ready = await readyReplicas(client, "shop", "worker");
    return ready.length === 1 ? ready : undefined;
  }, "a ready worker");
  const tail = [];
  for await (const { line } of client.streamLogs({ app: "shop", replica: worker!.name, tailLines: 5 })) tail.push(line!);
  t.true(tail.length > 0 && tail.length <= 5);
  t.true(tail.every((line) => line.replica === worker!.name && line.processType === "worker" && line.releaseVersion === 1));
  t.true(tail.some((line) => line.stream === LogStream.SYSTEM && /^started: pid \d+/.test(line.text)));

  const controller = new AbortController();
  const followed: string[] = [];
  const stream = client.streamLogs({ app: "shop", processType: "worker", tailLines: 0, follow: true }, { signal: controller.signal, timeoutMs: 0 });
  try {
    for await (const { line } of stream) {
      if (line!.stream === LogStream.STDOUT) followed.push(line!.text);
      if (followed.length === 2) controller.abort();
    }
  } catch (error) {
    if (ConnectError.from(error).code !== Code.Canceled) throw error;
  }
  t.is(followed.length, 2);
  for (const text of followed) t.regex(text, /^worker finished job \d+$/);
});

test("WatchApps streams a snapshot, then each app's processes as they change, and deletions", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "one" });
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const messages: WatchAppsResponse[] = [];
  const watching = (async () => {
    for await (const message of client.watchApps({}, { signal: controller.signal, timeoutMs: 0 })) messages.push(message);
  })().catch((error: unknown) => {
    if (!controller.signal.aborted) throw error;
  });
  await eventually(async () => (messages.length > 0 ? true : undefined), "the snapshot");
  t.true(messages[0]!.snapshot);
  t.deepEqual(
    messages[0]!.apps.map((app) => [app.app?.name, app.processes.map((p) => p.processType)]),
    [["one", ["web"]]],
  );
  await client.createApp({ team: "acme", name: "two" });
  await deployDemo(client, "two");
  const { appVersion: written } = await client.updateFormation({ app: "two", changes: [{ processType: "api-tcp", replicas: 1 }] });
  const withTcp = await eventually(async () => {
    const last = messages.filter((m) => m.apps[0]?.app?.name === "two").at(-1);
    const tcp = last?.apps[0]?.processes.find((p) => p.processType === "api-tcp");
    return tcp?.replicas === 1 ? tcp : undefined;
  }, "two's api-tcp at one replica");
  t.is(withTcp.internalHostname, "two-api-tcp");
  // Every entry at the write's version or later holds the write (an entry read between commit and notify may hold it earlier).
  const atLeast = await eventually(async () => {
    const twos = messages.flatMap((m) => m.apps.filter((app) => app.app?.name === "two" && app.version!.generation >= written!.generation));
    return twos.length > 0 ? twos : undefined;
  }, "an entry of two at the write's version");
  t.true(atLeast.every((app) => app.version?.instance === written!.instance));
  t.true(atLeast.every((app) => app.processes.find((p) => p.processType === "api-tcp")?.replicas === 1));
  const { appVersion: next } = await client.setAutoscale({ app: "two", rule: { processType: "web", minReplicas: 1, maxReplicas: 2, targetCpuPercent: 80 } });
  t.true(next!.generation > written!.generation, "a later write answers a later version");
  await client.deleteApp({ name: "one" });
  await eventually(async () => (messages.some((m) => m.apps.some((app) => app.app?.name === "one" && app.deleted)) ? true : undefined), "one deleted");
  controller.abort();
  await watching;
});

test("WatchApps publishes every change of a type's ready replicas", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  await deployDemo(client, "shop");
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  // Every ready count of web the stream showed, in order.
  const shown: number[] = [];
  const watching = (async () => {
    for await (const message of client.watchApps({}, { signal: controller.signal, timeoutMs: 0 })) {
      const web = message.apps.find((app) => app.app?.name === "shop")?.processes.find((process) => process.processType === "web");
      if (web !== undefined) shown.push(web.readyReplicas);
    }
  })().catch((error: unknown) => {
    if (!controller.signal.aborted) throw error;
  });
  const shows = (counts: number[], from: number) => {
    let at = from;
    for (const count of counts) {
      at = shown.indexOf(count, at);
      if (at < 0) return undefined;
      at += 1;
    }
    return true;
  };
  await eventually(async () => (shown.at(-1) === 1 ? true : undefined), "one ready web replica in the snapshot");
  // Scaling answers at once; the new replica turns ready later, with no other change to the app.
  let mark = shown.length;
  await client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 2 }] });
  await eventually(async () => shows([2], mark), "two ready web replicas");
  mark = shown.length;
  const [first] = await readyReplicas(client, "shop", "web");
  await client.deleteReplica({ app: "shop", replica: first!.name });
  await eventually(async () => shows([1, 2], mark), "one ready web replica while the deleted one is replaced, then two again");
  controller.abort();
  await watching;
  t.true(shows([2, 1, 2], 0), `ready counts published in order: ${shown.join(",")}`);
});

test("a deleted replica is replaced; a rolling restart replaces every replica of a type", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  await deployDemo(client, "shop");
  const [first] = await readyReplicas(client, "shop", "web");
  await client.deleteReplica({ app: "shop", replica: first!.name });
  const [replacement] = await eventually(async () => {
    const { replicas } = await client.listReplicas({ app: "shop", processType: "web" });
    return replicas.length === 1 && replicas[0]!.name !== first!.name && replicas[0]!.ready ? replicas : undefined;
  }, "a replacement");
  t.is(replacement!.state, ReplicaState.UP);
  await t.throwsAsync(httpGet(first!.port));
  t.is(ConnectError.from(await t.throwsAsync(client.deleteReplica({ app: "shop", replica: "nope" }))).code, Code.NotFound);

  const { rollout } = await client.restartProcess({ app: "shop", processType: "web" });
  t.deepEqual(rollout?.processTypes, ["web"]);
  const done = await followRollout(client, "shop", rollout!.id);
  t.is(done.rollout.state, RolloutState.SUCCEEDED);
  // The old replica's stop may be recorded before the rollout ends or after it.
  t.deepEqual(
    kinds(done.events).filter((kind) => kind !== "REPLICA_STOPPED"),
    ["ROLLOUT_STARTED", "REPLICA_STARTED", "REPLICA_HEALTHY", "REPLICA_DRAINING", "ROLLOUT_SUCCEEDED", "TRAFFIC_COUNTED"],
  );
  const [restarted] = await readyReplicas(client, "shop", "web");
  t.not(restarted!.name, replacement!.name);
  t.is(restarted!.releaseVersion, 1);
  t.is(ConnectError.from(await t.throwsAsync(client.restartProcess({ app: "shop", processType: "release" }))).code, Code.InvalidArgument);
});

test("rollback makes a new release from an old one without its release phase; request ids make deploys idempotent", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  await client.updateConfig({ app: "shop", set: { GREETING: "first" } });
  const uploadId = await uploadArchive(client, "shop", await demoArchive());
  const request = { app: "shop", artifact: { source: { case: "sourceUploadId" as const, value: uploadId } }, requestId: "deploy-1" };
  const created = await client.createRelease(request);
  const retried = await client.createRelease(request);
  t.is(retried.release?.version, created.release?.version);
  t.is(retried.rollout?.id, created.rollout?.id);
  await followRollout(client, "shop", created.rollout!.id);
  const second = await client.updateConfig({ app: "shop", set: { GREETING: "second" } });
  await followRollout(client, "shop", second.rollout!.id);
  t.is(ConnectError.from(await t.throwsAsync(client.rollback({ app: "shop", version: 7 }))).code, Code.NotFound);

  const { release, rollout } = await client.rollback({ app: "shop", version: 0 });
  t.is(release?.version, 3);
  t.is(release?.rollbackOfVersion, 1);
  t.is(release?.description, "Rollback to v1");
  const done = await followRollout(client, "shop", rollout!.id);
  t.is(done.rollout.state, RolloutState.SUCCEEDED);
  t.false(kinds(done.events).includes("RELEASE_PHASE_STARTED"));
  const [web] = await readyReplicas(client, "shop", "web");
  t.like(JSON.parse((await httpGet(web!.port)).body), { release: "3", greeting: "first" });
  t.is((await client.getConfig({ app: "shop" })).config.GREETING, "first");
  const { releases } = await client.listReleases({ app: "shop" });
  t.deepEqual(
    releases.map((r) => [r.version, r.status]),
    [
      [3, ReleaseStatus.SUCCEEDED],
      [2, ReleaseStatus.SUCCEEDED],
      [1, ReleaseStatus.SUCCEEDED],
    ],
  );
  const { rollouts } = await client.listRollouts({ app: "shop", limit: 2 });
  t.deepEqual(
    rollouts.map((r) => r.releaseVersion),
    [3, 2],
  );
  t.is((await client.getRollout({ app: "shop", rolloutId: rollout!.id })).rollout?.previousReleaseVersion, 2);
});

test("one rollout per app at a time: a deploy during a rollout is refused", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  await client.updateConfig({ app: "shop", set: { RELEASE_SLEEP_MS: "1500" } });
  const uploadId = await uploadArchive(client, "shop", await demoArchive());
  const { rollout } = await client.createRelease({ app: "shop", artifact: { source: { case: "sourceUploadId", value: uploadId } } });
  const refused = ConnectError.from(await t.throwsAsync(client.updateConfig({ app: "shop", set: { X: "1" } })));
  t.is(refused.code, Code.FailedPrecondition);
  t.regex(refused.rawMessage, /rollout under way/);
  t.is((await client.getApp({ name: "shop" })).app?.activeRolloutId, rollout!.id);
  await followRollout(client, "shop", rollout!.id);
  t.is((await client.getApp({ name: "shop" })).app?.activeRolloutId, "");
});

test("DeleteApp of an app whose replica ignores SIGTERM answers once it left the endpoints; a second delete or a create of the name is refused until SIGKILL ended it", async (t) => {
  const { client } = await startTestScheduler(t, { BERTH_SCHEDULER_STOP_GRACE_MS: "15000" });
  await client.createApp({ team: "acme", name: "stubborn" });
  await deployStubborn(client, "stubborn");

  // No deadline: the answer must not wait for the stop's grace period.
  const answer = await client.deleteApp({ name: "stubborn" });
  t.true(answer.deletionContinues);
  t.true((await client.getApp({ name: "stubborn" })).app?.deleting, "the app shows it is being deleted");
  for (const again of [() => client.deleteApp({ name: "stubborn" }), () => client.createApp({ team: "acme", name: "stubborn" })]) {
    const refused = ConnectError.from(await t.throwsAsync(again()));
    t.is(refused.code, Code.FailedPrecondition);
    t.regex(refused.rawMessage, /being deleted: its replicas are still stopping/);
  }
  await eventually(async () => ((await appGone(client, "stubborn")) ? true : undefined), "the app gone once SIGKILL ended the worker");
  await client.createApp({ team: "acme", name: "stubborn" });

  // An app that stops at once is deleted within the call.
  await client.createApp({ team: "acme", name: "quick" });
  t.false((await client.deleteApp({ name: "quick" }, { timeoutMs: 5000 })).deletionContinues);
});
