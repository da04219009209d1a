import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Client } from "@connectrpc/connect";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import type { CommandOutput } from "@berth/proto/type/v1/process";
import { RolloutState } from "@berth/proto/type/v1/release";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { runcUsable } from "../src/engine/local/container/runc.js";
import { deployDemo, followRollout, readyReplicas, startRuncScheduler, startTestScheduler } from "./support/scheduler-harness.js";

const runc = await runcUsable();
// Containers need root and runc (as in CI); skipped elsewhere, loudly.
const rootTest = runc.usable ? test.serial : test.serial.skip;
if (!runc.usable) console.warn(`runc command tests skipped: ${runc.reason}`);

/** Runs a command through RunCommand to its end: what it printed and how it ended. */
async function runToEnd(client: Client<typeof SchedulerService>, request: { app: string; command: string; replica?: string }, signal?: AbortSignal) {
  const outputs: CommandOutput[] = [];
  for await (const { output } of client.runCommand(request, { signal, timeoutMs: 60_000 })) if (output) outputs.push(output);
  const text = (kind: "stdout" | "stderr") =>
    Buffer.concat(outputs.flatMap((output) => (output.output.case === kind ? [Buffer.from(output.output.value)] : []))).toString();
  const last = outputs.at(-1)?.output;
  return {
    started: outputs[0]?.output.case === "started" ? outputs[0].output.value : "",
    stdout: text("stdout"),
    stderr: text("stderr"),
    exit: last?.case === "exit" ? last.value : undefined,
  };
}

async function refusal(promise: Promise<unknown>): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => ConnectError.from(caught),
  );
  if (error === undefined) throw new Error("expected a refusal");
  return error;
}

test("run: a one-off with the current release's source and config streams its output and ends with its exit code", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ name: "shop", team: "acme" });
  t.is((await refusal(runToEnd(client, { app: "shop", command: "true" }))).code, Code.FailedPrecondition, "nothing to run before the first deploy");
  await client.updateConfig({ app: "shop", set: { GREETING: "from-config" } });
  await deployDemo(client, "shop", { procfile: "web: node web.js\n" });

  const run = await runToEnd(client, { app: "shop", command: 'echo "$GREETING v$BERTH_RELEASE"; ls web.js; echo oops >&2; exit 7' });
  t.regex(run.started, /^shop-run-[0-9a-f]{8}$/);
  t.is(run.stdout, "from-config v1\nweb.js\n");
  t.is(run.stderr, "oops\n");
  t.is(run.exit?.code, 7);
  t.is(run.exit?.reason, "");

  const many = await runToEnd(client, { app: "shop", command: "for i in $(seq 1 20000); do echo line-$i; done" });
  t.is(many.stdout.split("\n").length, 20001, "every line arrives, in order");
  t.true(many.stdout.endsWith("line-20000\n"));
  t.is(many.exit?.code, 0);
});

test("run: cancelling the call stops the command on the platform", async (t) => {
  const { client, dataDir } = await startTestScheduler(t);
  await client.createApp({ name: "shop", team: "acme" });
  await deployDemo(client, "shop", { procfile: "web: node web.js\n" });
  const marker = join(dataDir, "still-running");
  const interrupt = new AbortController();
  const outputs: string[] = [];
  const running = (async () => {
    for await (const { output } of client.runCommand({ app: "shop", command: `echo started; sleep 3; touch ${marker}` }, { signal: interrupt.signal })) {
      if (output?.output.case === "stdout") {
        outputs.push(Buffer.from(output.output.value).toString());
        interrupt.abort();
      }
    }
  })();
  await t.throwsAsync(running);
  t.deepEqual(outputs, ["started\n"]);
  await new Promise((resolve) => setTimeout(resolve, 4000));
  t.false(existsSync(marker), "the command was stopped before it could finish");
});

test("exec beside a replica runs with its environment; describe names the variables and never their values", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ name: "shop", team: "acme" });
  await client.updateConfig({ app: "shop", set: { DATABASE_PASSWORD: "hunter2-secret" } });
  await deployDemo(client, "shop", { procfile: "web: node web.js\nworker: node worker.js\n" });
  const [replica] = await readyReplicas(client, "shop", "web");
  t.truthy(replica);

  const exec = await runToEnd(client, { app: "shop", replica: replica!.name, command: 'echo "$BERTH_REPLICA_NAME $PORT $BERTH_RELEASE_VERSION"; exit 3' });
  t.is(exec.started, replica!.name);
  t.is(exec.stdout, `${replica!.name} ${replica!.port} v1\n`);
  t.is(exec.exit?.code, 3);

  const { description } = await client.describeReplica({ app: "shop", replica: replica!.name });
  t.is(description?.command, "node web.js");
  t.is(description?.size, "standard-1x");
  t.true((description?.memoryMb ?? 0) > 0);
  t.is(description?.health?.path, "/");
  t.true(description?.environmentNames.includes("DATABASE_PASSWORD"));
  t.true(description?.environmentNames.includes("PORT"));
  t.false(JSON.stringify(description?.environmentNames).includes("hunter2"), "names only");

  t.is((await refusal(client.describeReplica({ app: "shop", replica: "shop-web-v9-nope" }))).code, Code.NotFound);
  t.is((await refusal(runToEnd(client, { app: "shop", replica: "shop-web-v9-nope", command: "true" }))).code, Code.NotFound);
  const empty = await refusal(runToEnd(client, { app: "shop", command: "  " }));
  t.is(empty.code, Code.InvalidArgument);
  t.regex(empty.rawMessage, /command: must not be empty/);
});

test("a health check change is a new release whose rollout waits for the new check", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ name: "shop", team: "acme" });
  // `/health` answers 503 for 2.5 s after a start, `/` at once.
  await client.updateConfig({ app: "shop", set: { HEALTH_DELAY_MS: "2500" } });
  const first = await deployDemo(client, "shop", { procfile: "web: node web.js\nworker: node worker.js\n" });
  t.is(first.rollout.state, RolloutState.SUCCEEDED);

  const bad = await refusal(client.updateHealthCheck({ app: "shop", processType: "web", health: { intervalMs: 5, path: "no-slash" } }));
  t.is(bad.code, Code.InvalidArgument);
  t.regex(bad.rawMessage, /health\.path/);
  t.regex(bad.rawMessage, /health\.interval_ms/);
  const workerPath = await refusal(client.updateHealthCheck({ app: "shop", processType: "worker", health: { path: "/up" } }));
  t.is(workerPath.code, Code.InvalidArgument);
  t.regex(workerPath.rawMessage, /only web processes/);
  t.is((await refusal(client.updateHealthCheck({ app: "shop", processType: "nope", health: { intervalMs: 500 } }))).code, Code.InvalidArgument);
  t.is((await client.listReleases({ app: "shop" })).releases.length, 1, "a refusal makes no release");

  const changed = await client.updateHealthCheck({ app: "shop", processType: "web", health: { path: "/health", intervalMs: 300 } });
  t.is(changed.release?.version, 2);
  t.regex(changed.release?.description ?? "", /^Health check of web: path \/health, interval 300 ms$/);
  t.is(changed.process?.health?.path, "/health");
  const { rollout, events } = await followRollout(client, "shop", changed.rollout!.id);
  t.is(rollout.state, RolloutState.SUCCEEDED);
  const started = events.find((event) => event.kind === RolloutEventKind.REPLICA_STARTED && event.processType === "web");
  const healthy = events.find((event) => event.kind === RolloutEventKind.REPLICA_HEALTHY && event.replica === started?.replica);
  t.truthy(started && healthy);
  t.true(timestampMs(healthy!.time!) - timestampMs(started!.time!) >= 2000, "healthy only once /health answered");

  const reset = await client.updateHealthCheck({ app: "shop", processType: "web", reset: true });
  t.is(reset.process?.health?.path, "/");
  t.is((await followRollout(client, "shop", reset.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  const web = (await client.getFormation({ app: "shop" })).processes.find((process) => process.processType === "web");
  t.is(web?.health?.intervalMs, 200, "the test scheduler's default again");
});

rootTest("on runc, exec joins the replica's container and a one-off runs in a container of its own, as the app's user", async (t) => {
  const { client, dataDir } = await startRuncScheduler(t);
  await client.createApp({ name: "boxed", team: "acme" });
  await deployDemo(client, "boxed", { procfile: "web: node web.js\n" });
  const [replica] = await readyReplicas(client, "boxed", "web");
  t.is(replica?.isolation, "container");

  // The release's source is mounted at its own path under the data directory: nothing else of it may show.
  const secret = join(dataDir, "platform-secret");
  writeFileSync(secret, "internal token\n");
  const probe = `id -u; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; test -e ${secret} && echo sees-data-dir || echo no-data-dir`;
  const exec = await runToEnd(client, { app: "boxed", replica: replica!.name, command: probe });
  const [execUid, execHost, execInit, execData] = exec.stdout.split("\n");
  t.true(Number(execUid) >= 200_000, `an unprivileged uid, got ${execUid}`);
  t.regex(execInit ?? "", /berth-init node web\.js/, "the replica's own pid namespace: its command's init is process 1");
  t.is(execData, "no-data-dir");

  const run = await runToEnd(client, { app: "boxed", command: `${probe}; exit 4` });
  const [runUid, runHost, runInit, runData] = run.stdout.split("\n");
  t.is(runUid, execUid, "the app's uid");
  t.not(runHost, execHost, "a container of its own");
  t.notRegex(runInit ?? "", /web\.js/);
  t.is(runData, "no-data-dir");
  t.is(run.exit?.code, 4);
});
