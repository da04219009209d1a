import { execFile } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { isSameProcessAlive, processStartTime } from "../process-table.js";
import type { Subnet } from "./address-plan.js";
import { nextReplicaAddress, nextServiceAddress, serviceRange, subnetText } from "./address-plan.js";
import type { BridgeNetwork } from "./bridge-network.js";
import type { CgroupReader } from "./cgroups.js";
import { createNetworkPool } from "./network-pool.js";
import type { AppAllow, NetworkEndpoint, ServiceAddress } from "./nft-ruleset.js";
import { renderRuleset } from "./nft-ruleset.js";
import { containerSpec, SYSTEM_DIRECTORIES } from "./oci-spec.js";
import type { Runc } from "./runc.js";

/** `$PORT` of every container: each has an address of its own, so they can all listen on the same port. */
export const CONTAINER_PORT = 5000;

/** The environment every container starts from; nothing of the platform's own. */
const CONTAINER_BASE_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/tmp", TMPDIR: "/tmp", LANG: "C.UTF-8" };

/** How often a container not started by this scheduler (adopted after a restart) is checked for having exited. */
const ADOPTED_EXIT_POLL_MS = 250;

/**
 * Network namespaces kept ready for the next starts: a rolling update starts
 * one replica at a time, a scale-up a few at once; the rest make their own.
 */
export const NETWORK_POOL_SIZE = 2;

/** What one container runs and may use. */
export interface ContainerLaunch {
  /** Unique; the container's id, hostname and directory name. */
  name: string;
  app: string;
  /** The owner team: never reaches another team's containers. */
  team: string;
  processType: string;
  routingClass: RoutingClass;
  command: string;
  /** Config vars; the runtime adds PORT and a minimal base environment. */
  env: Record<string, string>;
  /** The release's source, visible read-only. */
  workDir: string;
  cpuMillis: number;
  memoryMb: number;
  /** Where stdout.log and stderr.log are appended. */
  logDirectory: string;
  /** Host directories it may write to (a build's source directory): they are given to the app's uid. */
  writableDirs?: string[];
}

/** How a container's run ended. */
export interface ContainerExit {
  /** The command's exit code; null when it was killed by a signal or its end was not observed. */
  code: number | null;
  /** The kernel's OOM killer killed a process of it: it used more memory than its pod size. */
  oomKilled: boolean;
}

/** A container that runs (or ran). */
export interface ContainerRun {
  name: string;
  /** `runc:<name>`: finds it again after a scheduler restart. */
  runtimeId: string;
  /** Its address on the bridge, where health checks and the router reach it. */
  address: string;
  port: number;
  /** Resolves once it ended and everything it held (cgroup, namespace, address, rules) is released. */
  exited: Promise<ContainerExit>;
}

/** A container prepared to be run by someone else's process (a release task's shell): the command line that runs it. */
export interface PreparedContainer {
  runtimeId: string;
  address: string;
  /** `runc --root … run --keep --bundle … <name>`: exits with the command's exit code. */
  runArgs: string[];
}

/** Settings of the container runtime. */
export interface ContainerRuntimeOptions {
  /** Where bundles and the runtime's small state files live. */
  directory: string;
  runc: Runc;
  cgroups: CgroupReader;
  /** The cgroup every container's cgroup is created under, e.g. `/berth`. */
  cgroupParent: string;
  network: BridgeNetwork;
  subnet: Subnet;
  seccomp: boolean;
  /** The first uid handed to an app; each app gets its own uid from here on. */
  firstUid: number;
  logger: Logger;
}

/** Runs replicas and tasks as runc containers on a private bridge, with the firewall and virtual addresses kept in step. */
export interface ContainerRuntime {
  start(launch: ContainerLaunch): Promise<ContainerRun>;
  /** Builds the bundle and network of a container that another process will run (see PreparedContainer). */
  prepare(launch: ContainerLaunch): Promise<PreparedContainer>;
  /** The container `runtimeId` names when it still runs; undefined otherwise (or for an id of another runtime). */
  adopt(runtimeId: string): Promise<ContainerRun | undefined>;
  /** Sends a signal to every process of a container; false when it does not run. */
  signal(name: string, signal: "TERM" | "KILL"): Promise<boolean>;
  /** CPU time its processes used so far, in milliseconds (from its cgroup); undefined when it is gone. */
  cpuMs(name: string): Promise<number | undefined>;
  /** Whether it passes its health check: only ready containers are behind their process's virtual address. */
  setReady(name: string, ready: boolean): Promise<void>;
  /** The trust model's app-to-app allows (the netpol service's compiled local policy). */
  setAllows(allows: readonly AppAllow[]): Promise<void>;
  /** Ends a container run by another process and releases what it held; says whether the OOM killer struck. */
  remove(name: string): Promise<{ oomKilled: boolean }>;
  /** Removes every container, namespace and bundle not among `keep` (left by a scheduler that died); returns the containers' names. */
  removeStrays(keep: ReadonlySet<string>): Promise<string[]>;
  /** The address of `<app>-<processType>`, when that tcp process has one. */
  serviceAddress(app: string, processType: string): string | undefined;
  /** The command line that runs a shell command inside the running container `name`. */
  execArgs(name: string, command: string): string[];
}

/** What is kept on disk for each container, to adopt it after a restart. */
interface ContainerRecord {
  name: string;
  app: string;
  team: string;
  processType: string;
  routingClass: RoutingClass;
  address: string;
  /** Its network namespace (under the network's prefix): its own name, or the pooled one it took. Absent in older records: its own name. */
  netns?: string;
}

const RUNTIME_ID = /^runc:([a-z0-9][a-z0-9.-]*)$/;

function readJson<T>(path: string, fallback: T): T {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return fallback;
  }
}

/** The container runtime; its state (addresses, uids, virtual addresses) survives restarts in `directory`. */
export function createContainerRuntime(options: ContainerRuntimeOptions): ContainerRuntime {
  const { directory, runc, cgroups, network, subnet, logger } = options;
  mkdirSync(join(directory, "bundles"), { recursive: true });
  const bundle = (name: string) => join(directory, "bundles", name);
  const recordPath = (name: string) => join(bundle(name), "container.json");
  const cgroupsPath = (name: string) => `${options.cgroupParent}/${name}`;
  const hostsFile = join(directory, "hosts");
  const uidsFile = join(directory, "uids.json");
  const servicesFile = join(directory, "services.json");
  const systemDirectories = SYSTEM_DIRECTORIES.filter((path) => existsSync(path));

  const uids = readJson<Record<string, number>>(uidsFile, {});
  const services = readJson<ServiceAddress[]>(servicesFile, []);
  /** Every container with a bundle: running, adopted, or left behind to be cleaned up; their addresses are taken. */
  const records = new Map<string, ContainerRecord>();
  for (const name of readdirSync(join(directory, "bundles"))) {
    const record = readJson<ContainerRecord | undefined>(recordPath(name), undefined);
    if (record !== undefined) records.set(name, record);
  }
  /** The containers on the network now (started or adopted by this scheduler), and whether each is ready. */
  const live = new Map<string, boolean>();
  let allows: readonly AppAllow[] = [];
  const netnsOf = (name: string) => records.get(name)?.netns ?? name;

  function freeAddress(): string | undefined {
    return nextReplicaAddress(subnet, new Set([...[...records.values()].map((record) => record.address), ...pool.addresses()]));
  }
  const pool = createNetworkPool({ network, size: NETWORK_POOL_SIZE, nextAddress: freeAddress, logger });

  function uidOf(app: string): number {
    let uid = uids[app];
    if (uid === undefined) {
      uid = options.firstUid + Object.keys(uids).length;
      uids[app] = uid;
      writeFileSync(uidsFile, JSON.stringify(uids));
    }
    return uid;
  }

  function endpoints(): NetworkEndpoint[] {
    return [...live].flatMap(([name, ready]) => {
      const record = records.get(name);
      return record === undefined ? [] : [{ ...record, port: CONTAINER_PORT, ready }];
    });
  }

  /** Virtual addresses follow the tcp processes that have containers: one appears with the first, goes with the last. */
  function updateServices(): boolean {
    const wanted = new Set(
      endpoints()
        .filter((endpoint) => endpoint.routingClass === RoutingClass.TCP)
        .map((endpoint) => `${endpoint.app}\n${endpoint.processType}`),
    );
    let changed = false;
    for (let index = services.length - 1; index >= 0; index -= 1) {
      const service = services[index]!;
      if (!wanted.delete(`${service.app}\n${service.processType}`)) {
        services.splice(index, 1);
        changed = true;
      }
    }
    for (const key of wanted) {
      const [app, processType] = key.split("\n") as [string, string];
      const address = nextServiceAddress(subnet, new Set(services.map((service) => service.address)));
      if (address === undefined) {
        logger.warn("no virtual address left in the subnet", { app, processType });
        continue;
      }
      services.push({ app, processType, address, port: CONTAINER_PORT });
      changed = true;
    }
    return changed;
  }

  async function writeServices(): Promise<void> {
    writeFileSync(servicesFile, JSON.stringify(services));
    const lines = ["127.0.0.1\tlocalhost", ...services.map((service) => `${service.address}\t${service.app}-${service.processType}`), ""];
    // Rewritten in place: containers see this very file (inode) through a bind mount.
    await writeFile(hostsFile, lines.join("\n"));
  }

  // The ruleset last applied: a change that renders the same rules (a web or worker replica turning
  // ready, which no rule depends on) runs no nft at all.
  let applied: string | undefined;
  async function applyNow(): Promise<void> {
    if (updateServices()) await writeServices();
    const ruleset = renderRuleset({
      table: network.table,
      bridge: network.bridge,
      subnet: subnetText(subnet),
      serviceRange: serviceRange(subnet),
      endpoints: endpoints(),
      services,
      allows,
    });
    if (ruleset === applied) return;
    applied = undefined;
    await network.applyRuleset(ruleset);
    applied = ruleset;
  }

  // Changes are applied one at a time, and a change that arrives while one is
  // being applied is folded into the next one (it renders the latest state).
  let queued: Promise<void> | undefined;
  let current: Promise<void> = Promise.resolve();
  function sync(): Promise<void> {
    if (queued !== undefined) return queued;
    const next = current
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return applyNow();
      });
    queued = next;
    current = next;
    return next;
  }

  /**
   * Writes a container's bundle on a network namespace of its own, and has
   * the firewall learn its address: `firewall` settles once nft knows it
   * (the caller lets the command run only then). A gated container's init
   * waits for the go-ahead on stdin (see initArgs).
   */
  async function prepareBundle(launch: ContainerLaunch, gated: boolean): Promise<{ record: ContainerRecord; firewall: Promise<void> }> {
    if (!existsSync(hostsFile)) await writeServices();
    await network.ensureBridge();
    // Every time, not once: a cheap write, and the parent may have been removed with the last container (tests, uninstall).
    await cgroups.prepareParent(options.cgroupParent).catch((error: unknown) => {
      logger.warn("could not give the containers' cgroup its CPU weight: containers may get less than their pod size on a busy host", { error });
    });
    const pooled = pool.take();
    const address = pooled?.address ?? freeAddress();
    if (address === undefined) throw new Error(`no free address left in ${subnetText(subnet)} for ${launch.name}`);
    const record: ContainerRecord = {
      name: launch.name,
      app: launch.app,
      team: launch.team,
      processType: launch.processType,
      routingClass: launch.routingClass,
      address,
      netns: pooled?.namespace ?? launch.name,
    };
    records.set(launch.name, record);
    pool.refill();
    // Only a run that died half-way left a container of this name behind (a task run again after a crash).
    if (existsSync(join(runc.root, launch.name))) await runc.delete(launch.name);
    // The private /tmp takes the mode of its mount point: writable by the app, sticky.
    mkdirSync(join(bundle(launch.name), "rootfs", "tmp"), { recursive: true });
    chmodSync(join(bundle(launch.name), "rootfs", "tmp"), 0o1777);
    writeFileSync(recordPath(launch.name), JSON.stringify(record));
    // The command runs as the app's uid, which must own what it may write (a build's source, node_modules restored by the host).
    for (const dir of launch.writableDirs ?? []) await promisify(execFile)("chown", ["-R", `${uidOf(launch.app)}:${uidOf(launch.app)}`, dir]);
    live.set(launch.name, false);
    // The firewall learns the new address while the namespace is made (when the pool had none ready) and runc sets the container up.
    const firewall = sync();
    // Awaited by the caller; not left unhandled when making the namespace fails first.
    firewall.catch(() => undefined);
    const netnsPath = pooled?.path ?? (await network.attach(launch.name, address));
    const spec = containerSpec({
      command: launch.command,
      // HOST: a container is reached at its own address, so the app listens on every interface of its namespace.
      env: { ...CONTAINER_BASE_ENV, ...launch.env, HOST: "0.0.0.0", PORT: String(CONTAINER_PORT) },
      sourceDir: launch.workDir,
      uid: uidOf(launch.app),
      hostname: launch.name.slice(0, 63),
      cpuMillis: launch.cpuMillis,
      memoryMb: launch.memoryMb,
      cgroupsPath: cgroupsPath(launch.name),
      netnsPath,
      hostsFile,
      writableDirs: launch.writableDirs ?? [],
      seccomp: options.seccomp,
      gated,
      systemDirectories,
    });
    writeFileSync(join(bundle(launch.name), "config.json"), JSON.stringify(spec));
    return { record, firewall };
  }

  async function release(name: string): Promise<{ oomKilled: boolean }> {
    const oomKilled = ((await cgroups.oomKills(cgroupsPath(name))) ?? 0) > 0;
    live.delete(name);
    await runc.delete(name);
    await network.detach(netnsOf(name));
    await rm(bundle(name), { recursive: true, force: true });
    records.delete(name);
    await sync();
    // A run's end leaves nothing under way: whoever tears the network down next finds every namespace the pool made.
    await pool.settled();
    return { oomKilled };
  }

  function watchAdopted(name: string, pid: number, startTime: number): Promise<ContainerExit> {
    return new Promise((resolve) => {
      const check = async () => {
        if (await isSameProcessAlive(pid, startTime)) {
          setTimeout(check, ADOPTED_EXIT_POLL_MS);
          return;
        }
        resolve({ code: null, ...(await release(name)) });
      };
      void check();
    });
  }

  return {
    async start(launch) {
      let prepared: Awaited<ReturnType<typeof prepareBundle>>;
      let child: ChildProcess;
      try {
        prepared = await prepareBundle(launch, true);
        mkdirSync(launch.logDirectory, { recursive: true });
        child = await runc.start(launch.name, bundle(launch.name), launch.logDirectory);
      } catch (error) {
        await release(launch.name);
        throw error;
      }
      // A go-ahead a container no longer reads (runc failed) is no error of its own: the exit tells.
      child.stdin?.on("error", () => undefined);
      const exited = new Promise<ContainerExit>((resolve) => {
        child.once("exit", (code) => {
          void release(launch.name).then(({ oomKilled }) => resolve({ code: oomKilled ? null : code, oomKilled }));
        });
      });
      try {
        await prepared.firewall;
      } catch (error) {
        // Its command never ran: the container goes, and its exit releases the rest.
        await runc.delete(launch.name);
        await exited;
        throw error;
      }
      child.stdin?.end("\n");
      const { record } = prepared;
      return { name: launch.name, runtimeId: `runc:${launch.name}`, address: record.address, port: CONTAINER_PORT, exited };
    },

    execArgs(name, command) {
      return runc.execArgs(name, ["/bin/sh", "-c", command]);
    },

    async prepare(launch) {
      const { record, firewall } = await prepareBundle(launch, false);
      await firewall;
      return {
        runtimeId: `runc:${launch.name}`,
        address: record.address,
        runArgs: [runc.binary, "--root", runc.root, "run", "--keep", "--bundle", bundle(launch.name), launch.name],
      };
    },

    async adopt(runtimeId) {
      const name = RUNTIME_ID.exec(runtimeId)?.[1];
      const record = name === undefined ? undefined : records.get(name);
      if (name === undefined || record === undefined) return undefined;
      const state = await runc.state(name);
      const startTime = state?.status === "running" ? await processStartTime(state.pid) : undefined;
      if (state === undefined || startTime === undefined) return undefined;
      live.set(name, false);
      await sync();
      return { name, runtimeId, address: record.address, port: CONTAINER_PORT, exited: watchAdopted(name, state.pid, startTime) };
    },

    signal: (name, signal) => runc.kill(name, signal),

    cpuMs: (name) => cgroups.cpuMs(cgroupsPath(name)),

    async setReady(name, ready) {
      if (!live.has(name) || live.get(name) === ready) return;
      live.set(name, ready);
      await sync();
    },

    async setAllows(next) {
      allows = next;
      await sync();
    },

    remove: release,

    async removeStrays(keep) {
      const containers = (await runc.list()).map((state) => state.id);
      const names = new Set([...containers, ...records.keys()]);
      const strays = [...names].filter((name) => !keep.has(name) && !live.has(name));
      for (const name of strays) {
        await runc.delete(name);
        await network.detach(netnsOf(name));
        await rm(bundle(name), { recursive: true, force: true });
        records.delete(name);
      }
      // Namespaces of no container: the pool of a scheduler that died, or a start that died before its record.
      const inUse = new Set([...keep, ...[...records.keys()].map(netnsOf)]);
      for (const namespace of await network.attached()) {
        if (!inUse.has(namespace) && !pool.owns(namespace)) await network.detach(namespace);
      }
      if (strays.length > 0) await sync();
      return strays;
    },

    serviceAddress: (app, processType) => services.find((service) => service.app === app && service.processType === processType)?.address,
  };
}
