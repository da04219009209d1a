import test from "ava";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLogger } from "@berth/kit";
import { LogStream, ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import { createReplicaSupervisor } from "../src/engine/local/replica-supervisor.js";
import type { ReplicaStatus, ReplicaSupervisor } from "../src/engine/local/replica-supervisor.js";
import type { ReplicaSpec } from "../src/engine/local/replica-runtime.js";
import { isSameProcessAlive } from "../src/engine/local/process-table.js";
import { DEFAULT_HEALTH, resolveHealth } from "../src/health-settings.js";
import { routingClassOf } from "@berth/kit";

const demo = resolve(import.meta.dirname, "../../../examples/demo");
const fastHealth = { ...DEFAULT_HEALTH, intervalMs: 200, timeoutMs: 1000, startTimeoutMs: 20_000, workerMinReadyMs: 300 };

async function makeEngine(t: import("ava").ExecutionContext, directory?: string): Promise<{ engine: ReplicaSupervisor; directory: string }> {
  const dir = directory ?? (await mkdtemp(join(tmpdir(), "berth-engine-")));
  const engine = createReplicaSupervisor({
    directory: dir,
    host: "127.0.0.1",
    baseEnv: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    restartBackoffMs: 100,
    maxRestartBackoffMs: 1000,
    logLinesPerReplica: 500,
    logFileMaxBytes: 1 << 20,
    taskKillGraceMs: 1000,
    logger: createLogger("scheduler-test", { level: "error" }),
  });
  t.teardown(async () => {
    await engine.close(2000);
    if (directory === undefined) await rm(dir, { recursive: true, force: true });
  });
  return { engine, directory: dir };
}

let counter = 0;
function spec(processType: string, command: string, env: Record<string, string> = {}): ReplicaSpec {
  counter += 1;
  const routingClass = routingClassOf(processType);
  return {
    name: `demo-${processType}-v1-${process.pid}x${counter}`,
    app: "demo",
    team: "team-demo",
    processType,
    routingClass,
    index: 0,
    releaseVersion: 1,
    command,
    workDir: demo,
    env: { BERTH_APP: "demo", BERTH_RELEASE: "1", ...env },
    health: resolveHealth(routingClass, { path: "/health" }, fastHealth),
    zone: "zone-a",
    cpuMillis: 256,
    memoryMb: 512,
  };
}

function waitFor(engine: ReplicaSupervisor, name: string, predicate: (status: ReplicaStatus) => boolean, timeoutMs = 30_000): Promise<ReplicaStatus> {
  return new Promise((resolve, reject) => {
    const current = engine.replicaStatus(name);
    if (current && predicate(current)) return resolve(current);
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for ${name}; last status ${JSON.stringify(engine.replicaStatus(name))}`));
    }, timeoutMs);
    const stop = engine.onReplicaChange((status) => {
      if (status.name === name && predicate(status)) {
        clearTimeout(timer);
        stop();
        resolve(status);
      }
    });
  });
}

function get(port: number, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent: false }, (response) => {
        let body = "";
        response.on("data", (chunk) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

test("a web replica gets PORT and BERTH_* variables, becomes UP once its HTTP check passes, and stops on SIGTERM", async (t) => {
  const { engine } = await makeEngine(t);
  const web = spec("web", "node web.js", { GREETING: "hi", BERTH_REPLICA_NAME: "r1" });
  const started = await engine.startReplica(web);
  t.is(started.state, ReplicaState.STARTING);
  t.false(started.ready);
  const up = await waitFor(engine, web.name, (s) => s.ready);
  t.is(up.state, ReplicaState.UP);
  const { body } = await get(up.port);
  t.like(JSON.parse(body), { app: "demo", process: "web", release: "1", greeting: "hi", replica: "r1" });
  const states: ReplicaState[] = [];
  engine.onReplicaChange((s) => s.name === web.name && states.push(s.state));
  await engine.stopReplica(web.name, 5000);
  t.deepEqual(states, [ReplicaState.STOPPING, ReplicaState.STOPPED]);
  t.is(engine.replicaStatus(web.name), undefined);
  await t.throwsAsync(get(up.port));
  const lines = engine.logs.tail({ app: "demo", replica: web.name }, 100).map((l) => l.text);
  t.true(lines.includes("web got SIGTERM, closing"), lines.join("\n"));
});

test("a replica whose health path fails never becomes ready", async (t) => {
  const { engine } = await makeEngine(t);
  const web = spec("web", "node web.js", { HEALTH_STATUS: "503" });
  web.health = { ...web.health, startTimeoutMs: 60_000 };
  await engine.startReplica(web);
  const listening = await new Promise<boolean>((resolve) => {
    const stop = engine.logs.follow({ app: "demo", replica: web.name }, (line) => {
      if (line.text.startsWith("web listening")) {
        stop();
        resolve(true);
      }
    });
  });
  t.true(listening);
  // Give the probe several rounds against the listening server.
  const { port } = engine.replicaStatus(web.name)!;
  t.is((await get(port, "/health")).status, 503);
  await new Promise((r) => setTimeout(r, 1000));
  t.false(engine.replicaStatus(web.name)!.ready);
  t.is(engine.replicaStatus(web.name)!.state, ReplicaState.STARTING);
});

test("a tcp replica is checked by connecting, a worker by staying up", async (t) => {
  const { engine } = await makeEngine(t);
  const tcp = spec("api-tcp", "node api-tcp.js");
  const worker = spec("worker", "node worker.js");
  await engine.startReplica(tcp);
  await engine.startReplica(worker);
  const up = await waitFor(engine, tcp.name, (s) => s.ready);
  const echoed = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(up.port, "127.0.0.1", () => socket.write("ping\n"));
    socket.on("data", (data) => {
      resolve(data.toString());
      socket.end();
    });
    socket.on("error", reject);
  });
  t.is(echoed, "echo ping\n");
  const workerUp = await waitFor(engine, worker.name, (s) => s.ready);
  t.true(Date.now() - workerUp.startedAt!.getTime() >= 300);
  const workerLine = await new Promise<string>((resolve) => {
    engine.logs.follow({ app: "demo", processType: "worker" }, (line) => line.stream === LogStream.STDOUT && resolve(line.text));
  });
  t.regex(workerLine, /^worker finished job \d+$/);
});

test("a crashed replica is restarted with a new incarnation and counts the restart", async (t) => {
  const { engine } = await makeEngine(t);
  const crashy = spec("web", `node -e "require('http').createServer((q,s)=>s.end('ok')).listen(process.env.PORT); setTimeout(()=>process.exit(3), 700)"`);
  await engine.startReplica(crashy);
  await waitFor(engine, crashy.name, (s) => s.ready);
  const crashed = await waitFor(engine, crashy.name, (s) => s.state === ReplicaState.CRASHED);
  t.false(crashed.ready);
  const back = await waitFor(engine, crashy.name, (s) => s.ready && s.restarts >= 1);
  t.is(back.state, ReplicaState.UP);
  const lines = engine.logs.tail({ app: "demo", replica: crashy.name }, 100).map((l) => l.text);
  t.true(lines.includes("exited with code 3"), lines.join("\n"));
});

test("a replica that ignores SIGTERM is killed after the grace period", async (t) => {
  const { engine } = await makeEngine(t);
  const stubborn = spec("worker", `node -e "process.on('SIGTERM',()=>console.log('ignoring SIGTERM')); console.log('armed'); setInterval(()=>{},1000)"`);
  const armed = new Promise<void>((resolve) => {
    engine.logs.follow({ app: "demo", processType: "worker" }, (line) => line.text === "armed" && resolve());
  });
  await engine.startReplica(stubborn);
  await armed;
  await engine.stopReplica(stubborn.name, 500);
  const lines = engine.logs.tail({ app: "demo", replica: stubborn.name }, 100).map((l) => l.text);
  t.true(lines.includes("ignoring SIGTERM"), lines.join("\n"));
  t.true(lines.includes("still running after the grace period: SIGKILL"), lines.join("\n"));
});

test("a new engine on the same directory adopts a running replica and can stop it", async (t) => {
  const directory = await mkdtemp(join(tmpdir(), "berth-engine-"));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const first = createReplicaSupervisor({
    directory,
    host: "127.0.0.1",
    baseEnv: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    restartBackoffMs: 100,
    maxRestartBackoffMs: 1000,
    logLinesPerReplica: 100,
    logFileMaxBytes: 1 << 20,
    taskKillGraceMs: 1000,
    logger: createLogger("scheduler-test", { level: "error" }),
  });
  const web = spec("web", "node web.js");
  await first.startReplica(web);
  const up = await waitFor(first, web.name, (s) => s.ready);
  // The first engine is left running its replica, as a crashed scheduler would leave it.
  const { engine: second } = await makeEngine(t, directory);
  t.teardown(() => first.close(100));
  t.is(await second.adoptReplica(web, "local:999999:1:1"), undefined);
  const adopted = await second.adoptReplica(web, up.runtimeId);
  t.is(adopted?.port, up.port);
  const ready = await waitFor(second, web.name, (s) => s.ready);
  t.is(ready.runtimeId, up.runtimeId);
  t.is((await get(up.port)).status, 200);
  await second.stopReplica(web.name, 5000);
  await t.throwsAsync(get(up.port));
});

test("a release task reports its exit code and last lines; a slow one times out", async (t) => {
  const { engine, directory } = await makeEngine(t);
  const marker = join(directory, "marker");
  const ok = await engine.startReleaseTask({
    name: "demo-release-v1",
    app: "demo",
    team: "team-demo",
    releaseVersion: 1,
    command: "node release.js",
    workDir: demo,
    env: { BERTH_RELEASE: "1", RELEASE_MARKER: marker },
    timeoutMs: 30_000,
  });
  t.deepEqual(await ok.result, { exitCode: 0, timedOut: false, logTail: ["release phase of v1: migrating", "migration done"] });
  t.is(await readFile(marker, "utf8"), "v1\n");
  const failing = await engine.startReleaseTask({
    name: "demo-release-v2",
    app: "demo",
    team: "team-demo",
    releaseVersion: 2,
    command: "node release.js",
    workDir: demo,
    env: { BERTH_RELEASE: "2", RELEASE_EXIT_CODE: "7" },
    timeoutMs: 30_000,
  });
  const failed = await failing.result;
  t.is(failed.exitCode, 7);
  // stdout and stderr are separate files: lines of different streams may come in either order.
  t.deepEqual([...failed.logTail].sort(), ["migration failed with code 7", "release phase of v2: migrating"]);
  const slow = await engine.startReleaseTask({
    name: "demo-release-v3",
    app: "demo",
    team: "team-demo",
    releaseVersion: 3,
    command: "node release.js",
    workDir: demo,
    env: { RELEASE_SLEEP_MS: "60000" },
    timeoutMs: 500,
  });
  t.like(await slow.result, { exitCode: null, timedOut: true });
});

test("a release task started before a restart is awaited, not run again", async (t) => {
  const { engine, directory } = await makeEngine(t);
  const marker = join(directory, "marker");
  const taskSpec = {
    name: "demo-release-v4",
    app: "demo",
    team: "team-demo",
    releaseVersion: 4,
    command: "node release.js",
    workDir: demo,
    env: { BERTH_RELEASE: "4", RELEASE_MARKER: marker, RELEASE_SLEEP_MS: "500" },
    timeoutMs: 30_000,
  };
  const running = await engine.startReleaseTask(taskSpec);
  const { engine: second } = await makeEngine(t, directory);
  // Found by its name, as when the scheduler died before recording the task's handle.
  const resumed = await second.resumeReleaseTask(taskSpec, "", new Date(Date.now() + 30_000));
  t.is(resumed?.runtimeId, running.runtimeId);
  t.is((await resumed!.result).exitCode, 0);
  await running.result;
  t.is(await readFile(marker, "utf8"), "v4\n");
  // Resuming a finished task reads its recorded result.
  t.is((await (await second.resumeReleaseTask(taskSpec, running.runtimeId, new Date(Date.now() + 1000)))!.result).exitCode, 0);
  // A task that never started is reported as such, so it may be started.
  t.is(await second.resumeReleaseTask({ ...taskSpec, name: "demo-release-v5" }, "", new Date()), undefined);
});

test("after a restart, replicas a previous run started but never recorded are stopped", async (t) => {
  const { engine: first, directory } = await makeEngine(t);
  const known = spec("worker", "node worker.js");
  const stray = spec("worker", "node worker.js");
  await first.startReplica(known);
  await first.startReplica(stray);
  const strayPort = (await waitFor(first, stray.name, (s) => s.ready)).runtimeId;
  const { engine: second } = await makeEngine(t, directory);
  await second.adoptReplica(known, "");
  t.deepEqual(await second.stopStrays(new Set([known.name]), 1000), [stray.name]);
  const [, pid, startTime] = strayPort.split(":");
  t.false(await isSameProcessAlive(Number(pid), Number(startTime)));
  t.truthy(second.replicaStatus(known.name));
});

test("CPU use of a burning replica is sampled from /proc", async (t) => {
  const { engine } = await makeEngine(t);
  const web = spec("web", "node web.js");
  await engine.startReplica(web);
  const up = await waitFor(engine, web.name, (s) => s.ready);
  t.is(await engine.sampleCpuMillis(web.name), undefined);
  await get(up.port, "/burn?ms=5000");
  // Sampled every half second until the burn shows, however loaded the machine is.
  let busy: number | undefined;
  for (let attempt = 0; attempt < 20 && !(busy !== undefined && busy > 300); attempt += 1) {
    await new Promise((r) => setTimeout(r, 500));
    busy = await engine.sampleCpuMillis(web.name);
  }
  t.true(busy !== undefined && busy > 300, `sampled ${busy} millicores`);
  t.is(await engine.sampleCpuMillis("nope"), undefined);
  t.is(routingClassOf("web"), RoutingClass.WEB);
});
