import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { readdir, readlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@berth/proto/grpc/health/v1/health";
import { freePort } from "@berth/kit";
import { removeHostNetwork, runcUsable } from "@berth/scheduler";

export { freePort };

const root = fileURLToPath(new URL("../..", import.meta.url));

/** The five services, in start order (peers before the services that call them). */
export const SERVICES = ["scheduler", "router", "turn-allocator", "netpol", "api"] as const;
export type PlatformService = (typeof SERVICES)[number];

/** A running platform: each service a separate OS process on its own port. */
export interface PlatformProcesses {
  urls: Record<PlatformService, string>;
  ports: Record<PlatformService, number>;
  env: Record<string, string>;
  dataDir: string;
  /** Everything each service printed, for assertions and failure reports. */
  output: Record<PlatformService, string[]>;
  /** Kills one service with a signal (SIGKILL for crash tests) and waits for it to exit. */
  kill(service: PlatformService, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a killed service again with the same configuration and waits until it serves. */
  restart(service: PlatformService): Promise<void>;
  stop(): Promise<void>;
}

/** Kills every process (and its process group) whose working directory is under `directory`. */
async function killProcessesUnder(directory: string): Promise<void> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => "");
    if (!cwd.startsWith(directory)) continue;
    for (const target of [-Number(entry), Number(entry)]) {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // already gone, or not a group leader
      }
    }
  }
}

/** Waits until `url` answers its gRPC health check SERVING; fails early if `child` exits. */
export async function waitServing(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const health = createClient(Health, createGrpcTransport({ baseUrl: url, defaultTimeoutMs: 1000 }));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url} exited with code ${child.exitCode} before serving`);
    try {
      if ((await health.check({ service: "" })).status === Status.SERVING) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not serve within ${timeoutMs} ms`);
}

/** The environment of a platform on `dataDir` with every service on a free port of its own. */
export async function platformEnvironment(dataDir: string) {
  const ports = {} as Record<PlatformService, number>;
  for (const service of SERVICES) ports[service] = await freePort();
  const urls = {} as Record<PlatformService, string>;
  const env: Record<string, string> = {
    BERTH_DATA_DIR: dataDir,
    BERTH_INTERNAL_TOKEN: "platform-test-internal-token",
    BERTH_LOG_LEVEL: "info",
    // Containers where runc runs (the default), on a subnet of this run's own: other platforms may run beside it.
    BERTH_LOCAL_SUBNET: `10.${110 + (process.pid % 40)}.${Math.floor(Math.random() * 250)}.0/24`,
    // The test's final stop leaves no replica behind; a test of restarts sets it to "false".
    BERTH_SCHEDULER_DRAIN_ON_SHUTDOWN: "true",
  };
  for (const service of SERVICES) {
    const name = service.toUpperCase().replace(/-/g, "_");
    urls[service] = `http://127.0.0.1:${ports[service]}`;
    env[`BERTH_${name}_PORT`] = String(ports[service]);
    env[`BERTH_${name}_URL`] = urls[service];
  }
  return { env, ports, urls };
}

/** Removes what the platform's containers left on the host (the network outlives a platform, as on a real host; a test's must not). */
export async function removeContainerNetwork(env: Record<string, string>): Promise<void> {
  if ((await runcUsable()).usable) await removeHostNetwork(env.BERTH_LOCAL_SUBNET!);
}

/**
 * Starts the five services as separate processes on the embedded defaults
 * (one embedded PostgreSQL cluster, in-process coordination) in a fresh data directory.
 */
export async function startPlatformProcesses(extraEnv: Record<string, string> = {}): Promise<PlatformProcesses> {
  const dataDir = mkdtempSync(join(tmpdir(), "berth-platform-"));
  const { env, ports, urls } = await platformEnvironment(dataDir);
  Object.assign(env, extraEnv);
  const output = Object.fromEntries(SERVICES.map((s) => [s, [] as string[]])) as Record<PlatformService, string[]>;
  const children = new Map<PlatformService, ChildProcess>();

  const launch = async (service: PlatformService) => {
    const child = spawn(process.execPath, ["--import=tsx", join(root, "packages", service, "src/main.ts")], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (chunk: Buffer) => output[service].push(...chunk.toString().split("\n").filter(Boolean));
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    children.set(service, child);
    await waitServing(urls[service], child, 60_000);
  };
  const kill = async (service: PlatformService, signal: NodeJS.Signals = "SIGTERM") => {
    const child = children.get(service);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    // A service that does not finish its graceful stop in time is killed: tests must end.
    const escalate = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(escalate);
  };
  const stop = async () => {
    for (const service of [...SERVICES].reverse()) await kill(service);
    // Replicas a stop left running (BERTH_SCHEDULER_DRAIN_ON_SHUTDOWN=false) go with the test.
    await killProcessesUnder(dataDir);
    await removeContainerNetwork(env);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    for (const service of SERVICES) await launch(service);
  } catch (error) {
    await stop();
    const report = SERVICES.map((s) => `--- ${s}\n${output[s].slice(-20).join("\n")}`).join("\n");
    throw new Error(`${(error as Error).message}\n${report}`);
  }
  return { urls, ports, env, dataDir, output, kill, restart: launch, stop };
}
