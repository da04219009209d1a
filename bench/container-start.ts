/**
 * Where a runc container's start spends its time: the breakdown behind the
 * runc overhead of bench/scheduler-rollout.ts.
 *
 *   npx tsx bench/container-start.ts [starts, default 8] [cpuMillis, default 256: standard-1x]
 *
 * Starts the demo's web process (no boot delay) as a container, one after
 * the other, the way a rolling update does: start, wait for its first
 * healthy answer on its bridge address, mark it ready, stop the one before.
 * Every call the runtime makes to runc, to the network (ip, nft) and to the
 * cgroup reader is timed through a wrapper, so the median of each step is
 * printed beside the whole start and beside the same app run as a plain
 * process. A large cpuMillis (4096) shows what the pod size's CPU quota
 * costs the app's boot. Needs root and runc; uses its own subnet, bridge
 * and nft table and removes them afterwards.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { silentLogger } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { parseSubnet } from "../packages/scheduler/src/engine/local/container/address-plan.js";
import type { Subnet } from "../packages/scheduler/src/engine/local/container/address-plan.js";
import { createBridgeNetwork } from "../packages/scheduler/src/engine/local/container/bridge-network.js";
import { cgroupVersion, createCgroupReader } from "../packages/scheduler/src/engine/local/container/cgroups.js";
import { CONTAINER_PORT, createContainerRuntime } from "../packages/scheduler/src/engine/local/container/container-runtime.js";
import type { ContainerRun } from "../packages/scheduler/src/engine/local/container/container-runtime.js";
import { createRunc, runcSupportsSeccomp, runcUsable } from "../packages/scheduler/src/engine/local/container/runc.js";
import { hostNames, removeHostNetwork } from "../packages/scheduler/src/engine/local/container/runc-replica-runtime.js";

const DEMO_DIR = resolve(import.meta.dirname, "../examples/demo");
const BENCH_SUBNET = "10.86.0.0/16";
const starts = Number(process.argv[2] ?? 8);
const cpuMillis = Number(process.argv[3] ?? 256);

/** Durations of every timed call, by step name. */
const timings = new Map<string, number[]>();

function record(step: string, ms: number): void {
  timings.set(step, [...(timings.get(step) ?? []), ms]);
}

/** `target` with every method timed under `<prefix>.<method>`. */
function timed<T extends object>(prefix: string, target: T): T {
  return new Proxy(target, {
    get(object, key, receiver) {
      const value = Reflect.get(object, key, receiver) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const started = performance.now();
        const result = (value as (...a: unknown[]) => unknown).apply(receiver, args);
        if (result instanceof Promise) return result.finally(() => record(`${prefix}.${String(key)}`, performance.now() - started));
        record(`${prefix}.${String(key)}`, performance.now() - started);
        return result;
      };
    },
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function healthy(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    http
      .get({ host, port, path: "/health", agent: false, timeout: 1000 }, (response) => {
        response.resume();
        done(response.statusCode === 200);
      })
      .on("timeout", function (this: http.ClientRequest) {
        this.destroy();
      })
      .on("error", () => done(false));
  });
}

async function untilHealthy(host: string, port: number): Promise<void> {
  while (!(await healthy(host, port))) await new Promise((r) => setTimeout(r, 2));
}

/** The same app as a plain child process: spawn to first healthy answer. */
async function processReadinessMs(): Promise<number> {
  const port = 20_000 + (process.pid % 10_000);
  const started = performance.now();
  const child = spawn(process.execPath, ["web.js"], { cwd: DEMO_DIR, env: { PATH: process.env.PATH, PORT: String(port) }, stdio: "ignore" });
  await untilHealthy("127.0.0.1", port);
  const elapsed = performance.now() - started;
  child.kill("SIGKILL");
  await new Promise((done) => child.once("exit", done));
  return elapsed;
}

async function main(): Promise<void> {
  const usable = await runcUsable();
  if (!usable.usable) {
    console.log(`not measured: ${usable.reason}`);
    return;
  }
  const plain: number[] = [];
  for (let i = 0; i < 5; i += 1) plain.push(await processReadinessMs());

  const subnet = parseSubnet(BENCH_SUBNET) as Subnet;
  const names = hostNames(subnet);
  const directory = mkdtempSync(join(tmpdir(), "berth-bench-containers-"));
  const runtime = timed(
    "runtime",
    createContainerRuntime({
      directory,
      runc: timed("runc", createRunc(names.runcRoot)),
      cgroups: timed("cgroups", createCgroupReader(cgroupVersion())),
      cgroupParent: names.cgroupParent,
      network: timed("network", createBridgeNetwork({ bridge: names.bridge, table: names.table, subnet, netnsPrefix: names.netnsPrefix })),
      subnet,
      seccomp: await runcSupportsSeccomp(),
      firstUid: 210_000,
      logger: silentLogger,
    }),
  );
  try {
    let previous: ContainerRun | undefined;
    for (let i = 0; i < starts; i += 1) {
      const started = performance.now();
      const run = await runtime.start({
        name: `bench-web-${i}`,
        app: "bench",
        team: "bench",
        processType: "web",
        routingClass: RoutingClass.WEB,
        command: "node web.js",
        env: {},
        workDir: DEMO_DIR,
        cpuMillis,
        memoryMb: 512,
        logDirectory: join(directory, "logs", String(i)),
      });
      const returned = performance.now();
      await untilHealthy(run.address, CONTAINER_PORT);
      record("healthy after start() returned", performance.now() - returned);
      record("start() to healthy", performance.now() - started);
      await runtime.setReady(run.name, true);
      if (previous !== undefined) {
        await runtime.signal(previous.name, "TERM");
        const stopping = performance.now();
        await previous.exited;
        record("TERM to released", performance.now() - stopping);
      }
      previous = run;
    }
    if (previous !== undefined) {
      await runtime.signal(previous.name, "KILL");
      await previous.exited;
    }
  } finally {
    await removeHostNetwork(BENCH_SUBNET);
    rmSync(directory, { recursive: true, force: true });
  }

  // The first start creates the bridge: it is left out of the medians of steps that run once per start.
  console.log(
    `load average ${loadavg()
      .map((load) => load.toFixed(2))
      .join(" ")}; ${starts} container starts of the demo web process at ${cpuMillis} millicores`,
  );
  console.log(`plain process, spawn to healthy: ${median(plain).toFixed(0)} ms`);
  for (const [step, values] of [...timings].sort(([a], [b]) => a.localeCompare(b))) {
    const steady = values.length === starts ? values.slice(1) : values;
    console.log(
      `${step.padEnd(34)} median ${median(steady).toFixed(1).padStart(7)} ms  max ${Math.max(...steady)
        .toFixed(1)
        .padStart(7)} ms  (${values.length} calls)`,
    );
  }
}

await main();
