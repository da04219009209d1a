import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { systemBinary } from "./system-binaries.js";

const run = promisify(execFile);
/** How often `runc state` is asked before a container counts as gone. */
const STATE_ATTEMPTS = 3;

/** What `runc state` says about a container. */
export interface RuncState {
  id: string;
  /** `created`, `running`, `paused` or `stopped`. */
  status: string;
  /** Its process 1 on the host (0 once stopped). */
  pid: number;
  bundle: string;
}

/**
 * The runc command line with its own state directory, so berth's containers
 * never mix with anyone else's on the host and one listing finds them all.
 */
export interface Runc {
  readonly root: string;
  /** The runc executable. */
  readonly binary: string;
  /**
   * Starts `runc run --keep` as a detached child (its own process group, so a
   * scheduler killed with -9 leaves it running to be adopted). The container's
   * stdout and stderr are appended to `stdout.log`/`stderr.log` in `logDirectory`;
   * its stdin is the child's, a pipe the caller writes to and ends.
   * `--keep` leaves the stopped container (and its cgroup) to read the OOM
   * count after the exit; `delete` removes it.
   */
  start(id: string, bundle: string, logDirectory: string): Promise<ChildProcess>;
  state(id: string): Promise<RuncState | undefined>;
  list(): Promise<RuncState[]>;
  /** Sends a signal to every process of the container; false when it is not running. */
  kill(id: string, signal: "TERM" | "KILL"): Promise<boolean>;
  /** Removes a container (killing it first when it still runs); no error when it is gone. */
  delete(id: string): Promise<void>;
  /**
   * The command line that runs `argv` inside the running container `id`:
   * `runc exec` takes the container's own process settings (user,
   * capabilities, environment, working directory) and forwards signals.
   */
  execArgs(id: string, argv: string[]): string[];
}

/** A runc with its state under `root`. */
export function createRunc(root: string, binary = systemBinary("runc") ?? "runc"): Runc {
  const runc = (...args: string[]) => run(binary, ["--root", root, ...args], { maxBuffer: 16 << 20 });
  return {
    root,
    binary,
    async start(id, bundle, logDirectory) {
      const out = openSync(join(logDirectory, "stdout.log"), "a");
      const err = openSync(join(logDirectory, "stderr.log"), "a");
      let child: ChildProcess;
      try {
        child = spawn(binary, ["--root", root, "run", "--keep", "--bundle", bundle, id], { stdio: ["pipe", out, err], detached: true });
      } finally {
        closeSync(out);
        closeSync(err);
      }
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", reject);
      });
      return child;
    },
    async state(id) {
      // A container that does not exist says so; any other failure (a busy
      // host, a state file being rewritten) is asked again before giving up.
      for (let attempt = 1; ; attempt += 1) {
        try {
          const { stdout } = await runc("state", id);
          return JSON.parse(stdout) as RuncState;
        } catch (error) {
          if (/does not exist/.test(String((error as { stderr?: string }).stderr)) || attempt === STATE_ATTEMPTS) return undefined;
          await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
        }
      }
    },
    async list() {
      const { stdout } = await runc("list", "--format", "json");
      return (JSON.parse(stdout || "null") as RuncState[] | null) ?? [];
    },
    async kill(id, signal) {
      try {
        await runc("kill", "--all", id, signal);
        return true;
      } catch {
        return false;
      }
    },
    execArgs(id, argv) {
      return [binary, "--root", root, "exec", id, ...argv];
    },
    async delete(id) {
      try {
        await runc("delete", "--force", id);
      } catch (error) {
        if ((await this.state(id)) !== undefined) throw error;
      }
    },
  };
}

/** True when runc can run containers here: the binary answers and we are root. */
export async function runcUsable(binary = systemBinary("runc") ?? "runc"): Promise<{ usable: boolean; reason: string }> {
  if (process.getuid?.() !== 0) return { usable: false, reason: "not running as root" };
  try {
    await run(binary, ["--version"]);
    return { usable: true, reason: "" };
  } catch {
    return { usable: false, reason: `${binary} not found` };
  }
}

/** True when this runc was built with seccomp (`runc features` lists it). */
export async function runcSupportsSeccomp(binary = systemBinary("runc") ?? "runc"): Promise<boolean> {
  try {
    const { stdout } = await run(binary, ["features"]);
    return (JSON.parse(stdout) as { linux?: { seccomp?: { enabled?: boolean } } }).linux?.seccomp?.enabled === true;
  } catch {
    return false;
  }
}
