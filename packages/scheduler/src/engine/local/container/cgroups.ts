import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** `v2`: one unified hierarchy; `v1`: one hierarchy per controller (also hybrid hosts, whose v2 mount has no controllers). */
export type CgroupVersion = "v1" | "v2";

/** What runc's cgroups look like on this host. */
export function cgroupVersion(root = "/sys/fs/cgroup"): CgroupVersion {
  return existsSync(join(root, "cgroup.controllers")) ? "v2" : "v1";
}

/** Usage counters of one container's cgroup, read from the files runc's cgroup driver writes. */
export interface CgroupReader {
  /** CPU time used by every process of the cgroup so far, in milliseconds; undefined when the cgroup is gone. */
  cpuMs(cgroupsPath: string): Promise<number | undefined>;
  /** How many times the kernel's OOM killer killed a process of the cgroup; undefined when the cgroup is gone. */
  oomKills(cgroupsPath: string): Promise<number | undefined>;
  /** Removes an empty cgroup (the parent of berth's containers) from every hierarchy; no error when it is gone. */
  removeEmpty(cgroupsPath: string): Promise<void>;
  /**
   * Creates the parent of berth's containers with the highest CPU weight.
   * Left at the default, all containers together would weigh as much as one
   * host process, and on a busy host every container would get a sliver of
   * its pod size (and start several times slower than the same app as a
   * plain process). With it, each container gets its size under contention,
   * and never more: its CPU quota caps it.
   */
  prepareParent(cgroupsPath: string): Promise<void>;
}

/** cgroup v1's highest `cpu.shares` and v2's highest `cpu.weight`. */
const MAX_CPU_SHARES = 262_144;
const MAX_CPU_WEIGHT = 10_000;

async function writeWeight(directory: string, file: string, value: number): Promise<void> {
  await mkdir(directory, { recursive: true });
  await writeFile(join(directory, file), String(value));
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The number after `key` in a flat keyed file (`cpu.stat`, `memory.events`, `memory.oom_control`). */
export function keyedValue(text: string, key: string): number | undefined {
  const line = text.split("\n").find((entry) => entry.startsWith(`${key} `));
  return line === undefined ? undefined : Number(line.slice(key.length + 1));
}

async function removeDirectory(path: string): Promise<void> {
  try {
    await rmdir(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

/** Reads the counters for cgroup v1 or v2. */
export function createCgroupReader(version: CgroupVersion, root = "/sys/fs/cgroup"): CgroupReader {
  if (version === "v2") {
    return {
      removeEmpty: (path) => removeDirectory(join(root, path)),
      prepareParent: (path) => writeWeight(join(root, path), "cpu.weight", MAX_CPU_WEIGHT),
      async cpuMs(path) {
        const text = await readText(join(root, path, "cpu.stat"));
        const usec = text === undefined ? undefined : keyedValue(text, "usage_usec");
        return usec === undefined ? undefined : usec / 1000;
      },
      async oomKills(path) {
        const text = await readText(join(root, path, "memory.events"));
        return text === undefined ? undefined : (keyedValue(text, "oom_kill") ?? 0);
      },
    };
  }
  return {
    prepareParent: (path) => writeWeight(join(root, "cpu", path), "cpu.shares", MAX_CPU_SHARES),
    async removeEmpty(path) {
      // runc creates the path in every v1 hierarchy (and in the empty v2 one of a hybrid host).
      for (const hierarchy of await readdir(root)) await removeDirectory(join(root, hierarchy, path));
    },
    async cpuMs(path) {
      const text = await readText(join(root, "cpuacct", path, "cpuacct.usage"));
      return text === undefined ? undefined : Number(text) / 1e6;
    },
    async oomKills(path) {
      const text = await readText(join(root, "memory", path, "memory.oom_control"));
      return text === undefined ? undefined : (keyedValue(text, "oom_kill") ?? 0);
    },
  };
}
