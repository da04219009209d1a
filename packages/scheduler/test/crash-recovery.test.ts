import test from "ava";
import type { ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import type { RolloutEvent } from "@berth/proto/type/v1/release";
import {
  appGone,
  demoArchive,
  deployStubborn,
  deployDemo,
  eventually,
  followRollout,
  httpGet,
  isolation,
  readyReplicas,
  schedulerClient,
  startTestScheduler,
  testEnvironment,
  uploadArchive,
} from "./support/scheduler-harness.js";
import { testRedisUrl } from "@berth/kit/testing";

const MAIN = resolve(import.meta.dirname, "../src/main.ts");

/** Runs the scheduler's main.ts as a child process, as `npm start` would; resolves with its URL once it serves. */
async function spawnScheduler(t: ExecutionContext, env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  // Drained at the end of the test, so that no replica outlives it; kill -9 leaves them running as a crash would.
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    env: { ...env, BERTH_LOG_LEVEL: "info", BERTH_SCHEDULER_DRAIN_ON_SHUTDOWN: "true" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    return new Promise<void>((done) => (child.exitCode !== null || child.signalCode !== null ? done() : child.once("exit", () => done())));
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    const lines = createInterface({ input: child.stderr! });
    lines.on("line", (line) => {
      if (process.env.DEBUG_SCHEDULER) console.error(line);
      if (!line.startsWith("{")) return;
      const entry = JSON.parse(line) as { message: string; port?: number; level: string };
      if (entry.message === "serving") resolveUrl(`http://127.0.0.1:${entry.port}`);
    });
    child.once("exit", (code) => reject(new Error(`scheduler exited with ${code} before serving`)));
  });
  return { child, url };
}

/** Processes whose working directory is under `directory`: the replicas running from it. */
async function processesUnder(directory: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => "");
    if (cwd.startsWith(directory)) pids.push(Number(entry));
  }
  return pids;
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    child.once("exit", () => done());
    child.kill("SIGKILL");
  });
}

/** Follows a rollout until `predicate` matches a step. */
async function waitForStep(url: string, app: string, rolloutId: string, predicate: (event: RolloutEvent) => boolean): Promise<void> {
  for await (const { event } of schedulerClient(url).watchRollout({ app, rolloutId })) {
    if (predicate(event!)) return;
  }
  throw new Error("the rollout ended first");
}

test("kill -9 of the scheduler mid-rollout: a restart on the same database adopts the replicas and finishes the rollout", async (t) => {
  const place = await isolation(t);
  const marker = join(place.dataDir, "release-runs");
  // Redis-backed leases: the dead scheduler's lease must expire before the new one takes the rollout over.
  const env = testEnvironment(place.dataDir, place.schema, { REDIS_URL: testRedisUrl, BERTH_SCHEDULER_LEASE_TTL_MS: "2000" });
  const first = await spawnScheduler(t, env);
  let client = schedulerClient(first.url);
  await client.createApp({ team: "acme", name: "shop" });
  await client.updateConfig({ app: "shop", set: { RELEASE_MARKER: marker } });
  t.is((await deployDemo(client, "shop")).rollout.state, RolloutState.SUCCEEDED);
  await client.updateFormation({
    app: "shop",
    changes: [
      { processType: "web", replicas: 2 },
      { processType: "worker", replicas: 1 },
    ],
  });
  const oldWeb = await eventually(async () => {
    const ready = await readyReplicas(client, "shop", "web");
    return ready.length === 2 ? ready : undefined;
  }, "two v1 web replicas");

  // v2 boots slowly; the scheduler dies once its first new replica started.
  const { rollout } = await client.updateConfig({ app: "shop", set: { BOOT_DELAY_MS: "1500" } });
  await waitForStep(first.url, "shop", rollout!.id, (event) => event.kind === RolloutEventKind.REPLICA_STARTED);
  await killed(first.child);
  // The old replicas outlived their scheduler and still serve.
  t.is(JSON.parse((await httpGet(oldWeb[0]!.port)).body).release, "1");

  const second = await spawnScheduler(t, env);
  client = schedulerClient(second.url);
  const outcome = await followRollout(client, "shop", rollout!.id);
  t.is(outcome.rollout.state, RolloutState.SUCCEEDED, `${outcome.rollout.reason} ${outcome.rollout.message}`);
  const web = await eventually(async () => {
    const { replicas } = await client.listReplicas({ app: "shop", processType: "web" });
    return replicas.length === 2 && replicas.every((r) => r.ready && r.releaseVersion === 2) ? replicas : undefined;
  }, "two v2 web replicas");
  for (const replica of web) t.is(JSON.parse((await httpGet(replica.port)).body).release, "2");
  const worker = await readyReplicas(client, "shop", "worker");
  t.deepEqual(
    worker.map((r) => r.releaseVersion),
    [2],
  );
  // The old replicas were stopped, not left behind.
  for (const replica of oldWeb) await t.throwsAsync(httpGet(replica.port));
  t.is(await readFile(marker, "utf8"), "v1\nv2\n");
  // Nothing runs but the three replicas it lists: no orphan of the killed scheduler is left.
  await eventually(async () => ((await processesUnder(place.dataDir)).length === 3 ? true : undefined), "exactly three processes");
});

test("kill -9 during the release phase: the restarted scheduler waits for the same task and never runs it twice", async (t) => {
  const place = await isolation(t);
  const marker = join(place.dataDir, "release-runs");
  const env = testEnvironment(place.dataDir, place.schema);
  const first = await spawnScheduler(t, env);
  let client = schedulerClient(first.url);
  await client.createApp({ team: "acme", name: "shop" });
  await client.updateConfig({ app: "shop", set: { RELEASE_MARKER: marker, RELEASE_SLEEP_MS: "2000" } });
  const { rollout } = await client.createRelease({
    app: "shop",
    artifact: { source: { case: "sourceUploadId", value: await uploadArchive(client, "shop", await demoArchive()) } },
  });
  await waitForStep(first.url, "shop", rollout!.id, (event) => event.kind === RolloutEventKind.RELEASE_PHASE_STARTED);
  await killed(first.child);

  const second = await spawnScheduler(t, env);
  client = schedulerClient(second.url);
  const outcome = await followRollout(client, "shop", rollout!.id);
  t.is(outcome.rollout.state, RolloutState.SUCCEEDED, `${outcome.rollout.reason} ${outcome.rollout.message}`);
  t.is(outcome.events.filter((event) => event.kind === RolloutEventKind.RELEASE_PHASE_STARTED).length, 1);
  t.is(await readFile(marker, "utf8"), "v1\n");
  const [web] = await readyReplicas(client, "shop", "web");
  t.is(JSON.parse((await httpGet(web!.port)).body).release, "1");
});

test("after a restart the first endpoint snapshot already holds every app's endpoints, also of an app in its release phase", async (t) => {
  const place = await isolation(t);
  const env = testEnvironment(place.dataDir, place.schema);
  const first = await spawnScheduler(t, env);
  let client = schedulerClient(first.url);
  await client.createApp({ team: "acme", name: "shop" });
  t.is((await deployDemo(client, "shop")).rollout.state, RolloutState.SUCCEEDED);
  const [v1] = await readyReplicas(client, "shop", "web");
  // v2's release phase is still running when the scheduler dies: no reconcile publishes shop for a while.
  const { rollout } = await client.updateConfig({ app: "shop", set: { RELEASE_SLEEP_MS: "3000" } });
  await waitForStep(first.url, "shop", rollout!.id, (event) => event.kind === RolloutEventKind.RELEASE_PHASE_STARTED);
  await killed(first.child);

  const second = await spawnScheduler(t, env);
  client = schedulerClient(second.url);
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  for await (const message of client.watchEndpoints({ consumer: "router-after-restart" }, { signal: controller.signal })) {
    t.true(message.snapshot);
    t.not(message.epoch, "");
    const web = message.processes.find((process) => process.app === "shop" && process.processType === "web");
    t.deepEqual(
      web?.endpoints.map((endpoint) => endpoint.replica),
      [v1!.name],
    );
    break;
  }
});

test("a clean stop (a restart, an upgrade) leaves replicas serving, the next scheduler adopts them, and only a drain stops them", async (t) => {
  const place = await isolation(t);
  const first = await startTestScheduler(t, {}, place);
  await first.client.createApp({ team: "acme", name: "shop" });
  t.is((await deployDemo(first.client, "shop")).rollout.state, RolloutState.SUCCEEDED);
  const [web] = await readyReplicas(first.client, "shop", "web");
  await first.scheduler.close(1000);
  t.is(JSON.parse((await httpGet(web!.port)).body).release, "1", "still serving with no scheduler");

  const second = await startTestScheduler(t, {}, place);
  const adopted = await eventually(async () => {
    const ready = await readyReplicas(second.client, "shop", "web");
    return ready.length === 1 ? ready : undefined;
  }, "the adopted web replica");
  t.deepEqual(
    adopted.map((replica) => [replica.name, replica.port]),
    [[web!.name, web!.port]],
  );
  await second.scheduler.drain(1000);
  await t.throwsAsync(httpGet(web!.port));
});

test("kill -9 while a deletion waits out a replica that ignores SIGTERM: the restarted scheduler kills it and forgets the app", async (t) => {
  const place = await isolation(t);
  const env = testEnvironment(place.dataDir, place.schema, { BERTH_SCHEDULER_STOP_GRACE_MS: "5000" });
  const first = await spawnScheduler(t, env);
  let client = schedulerClient(first.url);
  await client.createApp({ team: "acme", name: "stubborn" });
  await deployStubborn(client, "stubborn");
  t.true((await client.deleteApp({ name: "stubborn" })).deletionContinues);
  await killed(first.child);

  const second = await spawnScheduler(t, env);
  client = schedulerClient(second.url);
  t.true((await client.getApp({ name: "stubborn" })).app?.deleting, "still being deleted after the restart");
  await eventually(async () => ((await appGone(client, "stubborn")) ? true : undefined), "the app gone once SIGKILL ended the worker");
  t.deepEqual(await processesUnder(place.dataDir), [], "no replica outlived the deletion");
});
