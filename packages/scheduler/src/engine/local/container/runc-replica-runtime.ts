import { rm } from "node:fs/promises";
import type { Logger } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { effectiveResources } from "../../../formation.js";
import { DEFAULT_POD_SIZE } from "../../../pod-sizes.js";
import type { ReplicaRun, ReplicaRuntime, ReplicaSpec } from "../replica-runtime.js";
import type { Subnet } from "./address-plan.js";
import { parseSubnet } from "./address-plan.js";
import { createBridgeNetwork } from "./bridge-network.js";
import { cgroupVersion, createCgroupReader } from "./cgroups.js";
import { createContainerRuntime } from "./container-runtime.js";
import type { ContainerExit, ContainerRun, ContainerRuntime } from "./container-runtime.js";
import { createRunc, runcSupportsSeccomp } from "./runc.js";

/** How long a container's processes may take to disappear after SIGKILL. */
const KILL_WAIT_MS = 5000;
/** The first uid given to an app's containers; the next app gets the next one. */
export const FIRST_APP_UID = 200_000;

/** The names one berth network uses on the host, derived from its subnet so two platforms on different subnets never share any. */
export function hostNames(subnet: Subnet): { bridge: string; table: string; netnsPrefix: string; cgroupParent: string; runcRoot: string } {
  const tag = subnet.network.toString(16).padStart(8, "0");
  return { bridge: `berth${tag}`, table: `berth_${tag}`, netnsPrefix: `berth${tag}-`, cgroupParent: `/berth-${tag}`, runcRoot: `/run/berth/${tag}` };
}

/**
 * Removes everything a platform's container runtime has on the host: any
 * container still there, the namespaces, the bridge, the nft table, the
 * parent cgroup and runc's state directory (uninstall, tests, benchmarks).
 */
export async function removeHostNetwork(subnetText: string): Promise<void> {
  const subnet = parseSubnet(subnetText);
  if (typeof subnet === "string") throw new Error(subnet);
  const names = hostNames(subnet);
  const runc = createRunc(names.runcRoot);
  for (const container of await runc.list().catch(() => [])) await runc.delete(container.id);
  const network = createBridgeNetwork({ bridge: names.bridge, table: names.table, subnet, netnsPrefix: names.netnsPrefix });
  for (const name of await network.attached()) await network.detach(name);
  await network.teardown();
  await createCgroupReader(cgroupVersion()).removeEmpty(names.cgroupParent);
  await rm(names.runcRoot, { recursive: true, force: true });
}

/** A run of the runc runtime: a ReplicaRun that knows its container. */
interface ContainerReplicaRun extends ReplicaRun {
  readonly container: ContainerRun;
}

/** Opens the container runtime of a platform: its state under `directory`, its network on `subnet`. */
export async function openContainerRuntime(options: { directory: string; subnet: Subnet; logger: Logger }): Promise<ContainerRuntime> {
  const names = hostNames(options.subnet);
  return createContainerRuntime({
    directory: options.directory,
    runc: createRunc(names.runcRoot),
    cgroups: createCgroupReader(cgroupVersion()),
    cgroupParent: names.cgroupParent,
    network: createBridgeNetwork({ bridge: names.bridge, table: names.table, subnet: options.subnet, netnsPrefix: names.netnsPrefix }),
    subnet: options.subnet,
    seccomp: await runcSupportsSeccomp(),
    firstUid: FIRST_APP_UID,
    logger: options.logger,
  });
}

/**
 * Replicas as runc containers: the ReplicaRuntime the local engine uses
 * where runc runs. Each run is a container of its own with its address on
 * the bridge; readiness moves it behind its process's virtual address.
 */
export function createRuncReplicaRuntime(containers: ContainerRuntime): ReplicaRuntime {
  const asRun = (container: ContainerRun): ContainerReplicaRun => ({
    container,
    runtimeId: container.runtimeId,
    label: `container ${container.name} at ${container.address}`,
    host: container.address,
    port: container.port,
    exited: container.exited.then((exit: ContainerExit) => exit.code),
    exitReason: container.exited.then((exit) => (exit.oomKilled ? "OOMKilled" : undefined)),
  });
  const nameOf = (run: ReplicaRun) => (run as ContainerReplicaRun).container.name;
  const ended = (run: ReplicaRun, ms: number) => Promise.race([run.exited.then(() => true), new Promise<boolean>((done) => setTimeout(() => done(false), ms))]);

  return {
    async spawn(spec: ReplicaSpec, directory: string) {
      const container = await containers.start({
        name: spec.name,
        app: spec.app,
        team: spec.team,
        processType: spec.processType,
        routingClass: spec.routingClass,
        command: spec.command,
        env: spec.env,
        workDir: spec.workDir,
        cpuMillis: spec.cpuMillis,
        memoryMb: spec.memoryMb,
        logDirectory: directory,
      });
      return asRun(container);
    },
    async adopt(runtimeId) {
      const container = await containers.adopt(runtimeId);
      return container && asRun(container);
    },
    async stop(run, graceMs) {
      if (!(await containers.signal(nameOf(run), "TERM"))) return true;
      return ended(run, graceMs);
    },
    async kill(run) {
      await containers.signal(nameOf(run), "KILL");
      await ended(run, KILL_WAIT_MS);
    },
    async cpuMs(run) {
      return (await containers.cpuMs(nameOf(run))) ?? 0;
    },
    readinessChanged: (run, ready) => containers.setReady(nameOf(run), ready),

    isolation: "container",

    removeStrays: async (keep) => {
      await containers.removeStrays(keep);
    },

    async taskCommand(task) {
      const resources = task.resources ?? effectiveResources({ size: DEFAULT_POD_SIZE, cpuMillis: null, memoryMb: null });
      const prepared = await containers.prepare({
        name: task.name,
        app: task.app,
        team: task.team,
        processType: "release",
        routingClass: RoutingClass.RELEASE,
        command: task.command,
        env: task.env,
        workDir: task.workDir,
        ...resources,
        logDirectory: "",
        writableDirs: task.writableDirs,
      });
      return prepared.runArgs;
    },

    execCommand(run, _spec, command) {
      // runc itself sets the container's environment; it only needs to be found.
      return { argv: containers.execArgs(nameOf(run), command), cwd: "/", env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" } };
    },

    async taskEnded(task) {
      return (await containers.remove(task.name)).oomKilled ? "OOMKilled" : undefined;
    },
  };
}
