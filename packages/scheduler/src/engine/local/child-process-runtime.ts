import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "@berth/kit";
import { isProcessGroupOfAlive, processGroupCpuMs, processStartTime, signalProcessGroup, waitForProcessGroupExit } from "./process-table.js";
import type { ReplicaRun, ReplicaRuntime } from "./replica-runtime.js";

/** How often an adopted process (not our child) is checked for having exited. */
const ADOPTED_EXIT_POLL_MS = 250;
/** How long a process group may take to disappear after SIGKILL. */
const KILL_WAIT_MS = 5000;

/** The runtime id of a process group: `local:<pid>:<start time>:<port>`. */
export function processRuntimeId(run: { pid: number; startTime: number; port: number }): string {
  return `local:${run.pid}:${run.startTime}:${run.port}`;
}

/** The process group a runtime id names; undefined for an id of another runtime. */
export function parseProcessRuntimeId(runtimeId: string): { pid: number; startTime: number; port: number } | undefined {
  const match = /^local:(\d+):(\d+):(\d+)$/.exec(runtimeId);
  if (!match) return undefined;
  return { pid: Number(match[1]), startTime: Number(match[2]), port: Number(match[3]) };
}

/**
 * A command without shell control characters is run with `exec`, so the
 * app itself leads its process group and receives signals first-hand.
 */
function shellCommand(command: string): string {
  return /^[^;&|<>()`\n]*$/.test(command) ? `exec ${command}` : command;
}

/** Spawns `sh -c args` in a new process group with output appended to the directory's log files. */
export async function spawnInGroup(
  directory: string,
  shellArgs: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<{ child: ChildProcess; pid: number; startTime: number }> {
  mkdirSync(directory, { recursive: true });
  const out = openSync(join(directory, "stdout.log"), "a");
  const err = openSync(join(directory, "stderr.log"), "a");
  let child: ChildProcess;
  try {
    child = spawn("/bin/sh", ["-c", ...shellArgs], { cwd, env, stdio: ["ignore", out, err], detached: true });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  child.unref();
  const pid = await new Promise<number>((resolve, reject) => {
    child.once("spawn", () => resolve(child.pid!));
    child.once("error", reject);
  });
  return { child, pid, startTime: (await processStartTime(pid)) ?? 0 };
}

/** Resolves with a child's exit code once it exited. */
export function childExit(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
}

/** Resolves with null once the process group of a process that is not our child has gone. */
export function pollUntilGone(pid: number, startTime: number): Promise<number | null> {
  return new Promise((resolve) => {
    const check = async () => {
      if (await isProcessGroupOfAlive(pid, startTime)) setTimeout(check, ADOPTED_EXIT_POLL_MS).unref();
      else resolve(null);
    };
    void check();
  });
}

/** Kills a process group and waits (boundedly) until it is gone. */
export async function killProcessGroup(pid: number): Promise<void> {
  if (signalProcessGroup(pid, "SIGKILL")) await waitForProcessGroupExit(pid, KILL_WAIT_MS);
}

/**
 * Replicas as child processes of the scheduler, each in its own process
 * group (`sh -c`, or `exec` of a simple command), so that a stop or a kill
 * reaches everything the command started.
 */
export function createChildProcessRuntime(options: {
  /** The address replicas listen on. */
  host: string;
  /** The environment every process starts from (PATH, HOME, ...); config vars go on top. */
  baseEnv: Record<string, string>;
}): ReplicaRuntime {
  const { host } = options;
  // The process group (its leader's pid) of every run this runtime started or adopted.
  const groups = new WeakMap<ReplicaRun, number>();
  const groupOf = (run: ReplicaRun) => {
    const group = groups.get(run);
    if (group === undefined) throw new Error(`replica run ${run.runtimeId} is not a child process of this runtime`);
    return group;
  };
  return {
    async spawn(spec, directory) {
      const port = await freePort(host);
      const env = { ...options.baseEnv, ...spec.env, HOST: host, PORT: String(port) };
      const { child, pid, startTime } = await spawnInGroup(directory, [shellCommand(spec.command)], spec.workDir, env);
      const run: ReplicaRun = { label: `pid ${pid}`, host, port, runtimeId: processRuntimeId({ pid, startTime, port }), exited: childExit(child) };
      groups.set(run, pid);
      return run;
    },

    async adopt(runtimeId) {
      const found = parseProcessRuntimeId(runtimeId);
      // The group, not its leader: a replica whose shell SIGTERM ended while its app ignored it is still running.
      if (found === undefined || !(await isProcessGroupOfAlive(found.pid, found.startTime))) return undefined;
      const run: ReplicaRun = { label: `pid ${found.pid}`, host, port: found.port, runtimeId, exited: pollUntilGone(found.pid, found.startTime) };
      groups.set(run, found.pid);
      return run;
    },

    async stop(run, graceMs) {
      // The whole group is waited for: a shell running a compound command
      // dies of SIGTERM at once while the app in it is still shutting down.
      if (!signalProcessGroup(groupOf(run), "SIGTERM")) return true;
      return waitForProcessGroupExit(groupOf(run), graceMs);
    },

    kill(run) {
      return killProcessGroup(groupOf(run));
    },

    cpuMs(run) {
      return processGroupCpuMs(groupOf(run));
    },

    isolation: "none",

    async taskCommand(task) {
      return ["sh", "-c", task.command];
    },

    async taskEnded() {
      return undefined;
    },

    execCommand(run, spec, command) {
      return { argv: ["/bin/sh", "-c", command], cwd: spec.workDir, env: { ...options.baseEnv, ...spec.env, HOST: run.host, PORT: String(run.port) } };
    },
  };
}
