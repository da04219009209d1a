import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@berth/kit";
import { LogStream, ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import type {
  LogEntry,
  ReleaseTaskResult,
  ReleaseTaskSpec,
  ReplicaEngine,
  ReplicaSpec,
  ReplicaStatus,
} from "../engine.js";
import { tailFile } from "./file-tail.js";
import type { FileTail } from "./file-tail.js";
import { createLogHub } from "./log-hub.js";
import { freePort, probeHttp, probeTcp } from "./probes.js";
import {
  isSameProcessAlive,
  processGroupCpuMs,
  processStartTime,
  signalProcessGroup,
  waitForProcessGroupExit,
} from "./process-table.js";

/** Settings of the local engine. */
export interface LocalEngineOptions {
  /** Where replica logs and task results live. */
  directory: string;
  /** The address replicas listen on. */
  host: string;
  /** The environment every process starts from (PATH, HOME, ...); config vars go on top. */
  baseEnv: Record<string, string>;
  /** First delay before restarting a crashed replica; doubles up to maxRestartBackoffMs. */
  restartBackoffMs: number;
  maxRestartBackoffMs: number;
  logLinesPerReplica: number;
  logFileMaxBytes: number;
  /** How long a timed-out release task gets between SIGTERM and SIGKILL. */
  taskKillGraceMs: number;
  logger: Logger;
}

/** While a replica has not been healthy yet, it is probed at least this often, so readiness is seen quickly. */
const STARTUP_PROBE_MS = 25;
/** How often an adopted process (not our child) is checked for having exited. */
const ADOPTED_EXIT_POLL_MS = 250;
const LOG_POLL_MS = 1000;
const TASK_LOG_TAIL_LINES = 20;
/** How long a release task's shell may take to record its pid after being spawned. */
const TASK_PID_WAIT_MS = 2000;
/** How long a process group may take to disappear after SIGKILL. */
const KILL_WAIT_MS = 5000;

/**
 * A command without shell control characters is run with `exec`, so the
 * app itself leads its process group and receives signals first-hand.
 */
function shellCommand(command: string): string {
  return /^[^;&|<>()`\n]*$/.test(command) ? `exec ${command}` : command;
}

/** One run of a replica's command. */
interface Incarnation {
  pid: number;
  startTime: number;
  port: number;
  child: ChildProcess | undefined;
  exited: Promise<number | null>;
}

interface Runtime {
  spec: ReplicaSpec;
  status: ReplicaStatus;
  incarnation: Incarnation | undefined;
  stopping: boolean;
  successes: number;
  failures: number;
  /** Since when the replica has been not ready (start, or the moment it turned unhealthy). */
  waitingSince: number;
  crashStreak: number;
  timer: NodeJS.Timeout | undefined;
  tails: FileTail[];
  cpuSample: { cpuMs: number; at: number } | undefined;
}

function runtimeIdOf(incarnation: Pick<Incarnation, "pid" | "startTime" | "port">): string {
  return `local:${incarnation.pid}:${incarnation.startTime}:${incarnation.port}`;
}

function parseRuntimeId(runtimeId: string): { pid: number; startTime: number; port: number } | undefined {
  const match = /^local:(\d+):(\d+):(\d+)$/.exec(runtimeId);
  if (!match) return undefined;
  return { pid: Number(match[1]), startTime: Number(match[2]), port: Number(match[3]) };
}

/** Resolves with the exit code once a process that is not our child has gone. */
function pollUntilGone(pid: number, startTime: number): Promise<number | null> {
  return new Promise((resolve) => {
    const check = async () => {
      if (await isSameProcessAlive(pid, startTime)) setTimeout(check, ADOPTED_EXIT_POLL_MS).unref();
      else resolve(null);
    };
    void check();
  });
}

/**
 * The local engine: replicas are supervised child processes in their own
 * process groups, with stdout/stderr appended to files under `directory` (so
 * they survive a scheduler crash and can be adopted), real health probes,
 * restarts with backoff, SIGTERM then SIGKILL.
 */
export function createLocalEngine(options: LocalEngineOptions): ReplicaEngine {
  const { logger, host } = options;
  const hub = createLogHub({ linesPerReplica: options.logLinesPerReplica, finishedReplicasKept: 200 });
  const runtimes = new Map<string, Runtime>();
  const listeners = new Set<(status: ReplicaStatus) => void>();
  const tasks = new Set<{ pid: number; startTime: number }>();

  const replicaDirectory = (name: string) => join(options.directory, "replicas", name);
  const taskDirectory = (name: string) => join(options.directory, "tasks", name);

  function emit(runtime: Runtime): void {
    const snapshot = { ...runtime.status };
    for (const listener of listeners) listener(snapshot);
  }

  function systemLine(spec: Pick<ReplicaSpec, "app" | "processType" | "name" | "releaseVersion">, text: string): void {
    hub.append({ time: new Date(), app: spec.app, processType: spec.processType, replica: spec.name, releaseVersion: spec.releaseVersion, stream: LogStream.SYSTEM, text });
  }

  function followLogs(spec: Pick<ReplicaSpec, "app" | "processType" | "name" | "releaseVersion">, directory: string): FileTail[] {
    const line = (stream: LogStream) => (text: string) =>
      hub.append({ time: new Date(), app: spec.app, processType: spec.processType, replica: spec.name, releaseVersion: spec.releaseVersion, stream, text });
    return [
      tailFile(join(directory, "stdout.log"), line(LogStream.STDOUT), { pollMs: LOG_POLL_MS, maxBytes: options.logFileMaxBytes }),
      tailFile(join(directory, "stderr.log"), line(LogStream.STDERR), { pollMs: LOG_POLL_MS, maxBytes: options.logFileMaxBytes }),
    ];
  }

  /** Spawns `sh -c args` in a new process group with output appended to the directory's log files. */
  async function spawnInGroup(directory: string, shellArgs: string[], cwd: string, env: Record<string, string>): Promise<{ child: ChildProcess; pid: number; startTime: number }> {
    mkdirSync(directory, { recursive: true });
    const out = openSync(join(directory, "stdout.log"), "a");
    const err = openSync(join(directory, "stderr.log"), "a");
    let child: ChildProcess;
    try {
      child = spawn("/bin/sh", ["-c", ...shellArgs], { cwd, env: { ...options.baseEnv, ...env }, stdio: ["ignore", out, err], detached: true });
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

  function childExit(child: ChildProcess): Promise<number | null> {
    return new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
      else child.once("exit", (code) => resolve(code));
    });
  }

  function setState(runtime: Runtime, state: ReplicaState, ready: boolean): void {
    if (runtime.status.state === state && runtime.status.ready === ready) return;
    runtime.status.state = state;
    runtime.status.ready = ready;
    emit(runtime);
  }

  function clearTimer(runtime: Runtime): void {
    if (runtime.timer) clearTimeout(runtime.timer);
    runtime.timer = undefined;
  }

  function schedule(runtime: Runtime, delayMs: number, action: () => void): void {
    clearTimer(runtime);
    runtime.timer = setTimeout(action, delayMs);
    runtime.timer.unref();
  }

  async function probe(runtime: Runtime, incarnation: Incarnation): Promise<boolean> {
    const { health, routingClass } = runtime.spec;
    if (routingClass === RoutingClass.WEB) return probeHttp(host, incarnation.port, health.path, health.timeoutMs);
    if (routingClass === RoutingClass.TCP || routingClass === RoutingClass.RTC) return probeTcp(host, incarnation.port, health.timeoutMs);
    return true;
  }

  async function checkHealth(runtime: Runtime, incarnation: Incarnation): Promise<void> {
    if (runtime.stopping || runtime.incarnation !== incarnation) return;
    const ok = await probe(runtime, incarnation);
    if (runtime.stopping || runtime.incarnation !== incarnation) return;
    const { health } = runtime.spec;
    const now = Date.now();
    if (ok) {
      runtime.successes += 1;
      runtime.failures = 0;
    } else {
      runtime.failures += 1;
      runtime.successes = 0;
    }
    const age = now - (runtime.status.startedAt?.getTime() ?? now);
    if (runtime.status.ready) {
      if (!ok && runtime.failures >= health.unhealthyThreshold) {
        runtime.waitingSince = now;
        systemLine(runtime.spec, `health check failed ${runtime.failures} times in a row: unhealthy`);
        setState(runtime, ReplicaState.UNHEALTHY, false);
      }
    } else if (ok && runtime.successes >= health.healthyThreshold && age >= health.minReadyMs) {
      runtime.crashStreak = 0;
      systemLine(runtime.spec, "healthy");
      setState(runtime, ReplicaState.UP, true);
    } else if (now - runtime.waitingSince > health.startTimeoutMs) {
      systemLine(runtime.spec, `not healthy within ${health.startTimeoutMs} ms: restarting`);
      setState(runtime, ReplicaState.UNHEALTHY, false);
      restart(runtime, incarnation);
      return;
    }
    const everHealthy = runtime.status.ready || runtime.status.state === ReplicaState.UNHEALTHY;
    let delay = everHealthy ? health.intervalMs : Math.min(health.intervalMs, STARTUP_PROBE_MS);
    if (ok && !runtime.status.ready && age < health.minReadyMs) delay = Math.min(delay, health.minReadyMs - age);
    schedule(runtime, delay, () => void checkHealth(runtime, incarnation));
  }

  async function launch(runtime: Runtime): Promise<void> {
    const { spec } = runtime;
    const port = await freePort(host);
    const { child, pid, startTime } = await spawnInGroup(replicaDirectory(spec.name), [shellCommand(spec.command)], spec.workDir, { ...spec.env, PORT: String(port) });
    const incarnation: Incarnation = { pid, startTime, port, child, exited: childExit(child) };
    // Written at once, so that a scheduler that dies before recording the replica can still find it.
    writeFileSync(join(replicaDirectory(spec.name), "runtime-id"), runtimeIdOf(incarnation));
    begin(runtime, incarnation, new Date());
    systemLine(spec, `started: pid ${pid}, port ${port}, release v${spec.releaseVersion}`);
  }

  function begin(runtime: Runtime, incarnation: Incarnation, startedAt: Date): void {
    if (runtime.stopping) {
      // Stopped while this incarnation was being spawned.
      signalProcessGroup(incarnation.pid, "SIGKILL");
      return;
    }
    runtime.incarnation = incarnation;
    runtime.successes = 0;
    runtime.failures = 0;
    runtime.waitingSince = Date.now();
    runtime.cpuSample = undefined;
    runtime.status = {
      ...runtime.status,
      state: ReplicaState.STARTING,
      ready: false,
      startedAt,
      host,
      port: incarnation.port,
      runtimeId: runtimeIdOf(incarnation),
    };
    emit(runtime);
    void incarnation.exited.then((code) => onExit(runtime, incarnation, code));
    void checkHealth(runtime, incarnation);
  }

  function onExit(runtime: Runtime, incarnation: Incarnation, code: number | null): void {
    if (runtime.incarnation !== incarnation || runtime.stopping) return;
    // Whatever the crashed command left behind in its group goes with it.
    signalProcessGroup(incarnation.pid, "SIGKILL");
    clearTimer(runtime);
    systemLine(runtime.spec, `exited with ${code === null ? "a signal" : `code ${code}`}`);
    setState(runtime, ReplicaState.CRASHED, false);
    const delay = Math.min(options.restartBackoffMs * 2 ** runtime.crashStreak, options.maxRestartBackoffMs);
    runtime.crashStreak += 1;
    schedule(runtime, delay, () => void relaunch(runtime));
  }

  async function relaunch(runtime: Runtime): Promise<void> {
    if (runtime.stopping) return;
    runtime.status.restarts += 1;
    try {
      await launch(runtime);
    } catch (error) {
      logger.error("could not restart replica", { replica: runtime.spec.name, error });
      runtime.crashStreak += 1;
      schedule(runtime, options.maxRestartBackoffMs, () => void relaunch(runtime));
    }
  }

  /** Kills an incarnation that is unhealthy; its exit triggers the restart with backoff. */
  function restart(runtime: Runtime, incarnation: Incarnation): void {
    clearTimer(runtime);
    signalProcessGroup(incarnation.pid, "SIGKILL");
  }

  function newRuntime(spec: ReplicaSpec): Runtime {
    const runtime: Runtime = {
      spec,
      status: { name: spec.name, app: spec.app, state: ReplicaState.STARTING, ready: false, restarts: 0, startedAt: undefined, host, port: 0, runtimeId: "" },
      incarnation: undefined,
      stopping: false,
      successes: 0,
      failures: 0,
      waitingSince: Date.now(),
      crashStreak: 0,
      timer: undefined,
      tails: followLogs(spec, replicaDirectory(spec.name)),
      cpuSample: undefined,
    };
    runtimes.set(spec.name, runtime);
    return runtime;
  }

  async function awaitTask(spec: ReleaseTaskSpec, pid: number, startTime: number, exited: Promise<number | null>, deadline: Date): Promise<ReleaseTaskResult> {
    const handle = { pid, startTime };
    tasks.add(handle);
    const tails = followLogs({ app: spec.app, processType: "release", name: spec.name, releaseVersion: spec.releaseVersion }, taskDirectory(spec.name));
    let timedOut = false;
    const killer = setTimeout(() => {
      timedOut = true;
      systemLine({ app: spec.app, processType: "release", name: spec.name, releaseVersion: spec.releaseVersion }, `timed out after ${spec.timeoutMs} ms: stopping`);
      signalProcessGroup(pid, "SIGTERM");
      setTimeout(() => signalProcessGroup(pid, "SIGKILL"), options.taskKillGraceMs).unref();
    }, Math.max(0, deadline.getTime() - Date.now()));
    try {
      await exited;
    } finally {
      clearTimeout(killer);
      tasks.delete(handle);
      signalProcessGroup(pid, "SIGKILL");
    }
    await Promise.all(tails.map((tail) => tail.close()));
    const recorded = await readFile(join(taskDirectory(spec.name), "exit-code"), "utf8").catch(() => "");
    const exitCode = /^\d+\s*$/.test(recorded) && !timedOut ? Number(recorded) : null;
    systemLine({ app: spec.app, processType: "release", name: spec.name, releaseVersion: spec.releaseVersion }, `release task ended: ${exitCode === null ? "killed" : `exit code ${exitCode}`}`);
    const logTail = hub
      .tail({ app: spec.app, replica: spec.name }, TASK_LOG_TAIL_LINES + 1)
      .filter((entry: LogEntry) => entry.stream !== LogStream.SYSTEM)
      .slice(-TASK_LOG_TAIL_LINES)
      .map((entry) => entry.text);
    hub.retire(spec.name);
    return { exitCode, timedOut, logTail };
  }

  return {
    async startReplica(spec) {
      if (runtimes.has(spec.name)) throw new Error(`replica ${spec.name} is already running`);
      const runtime = newRuntime(spec);
      try {
        await launch(runtime);
      } catch (error) {
        runtimes.delete(spec.name);
        await Promise.all(runtime.tails.map((tail) => tail.close()));
        throw error;
      }
      return { ...runtime.status };
    },

    async adoptReplica(spec, runtimeId) {
      const recorded = runtimeId || (await readFile(join(replicaDirectory(spec.name), "runtime-id"), "utf8").catch(() => ""));
      const found = parseRuntimeId(recorded);
      if (found === undefined || runtimes.has(spec.name)) return undefined;
      if (!(await isSameProcessAlive(found.pid, found.startTime))) return undefined;
      const runtime = newRuntime(spec);
      const incarnation: Incarnation = { ...found, child: undefined, exited: pollUntilGone(found.pid, found.startTime) };
      begin(runtime, incarnation, new Date());
      systemLine(spec, `adopted after a scheduler restart: pid ${found.pid}, port ${found.port}`);
      return { ...runtime.status };
    },

    async stopReplica(name, graceMs) {
      const runtime = runtimes.get(name);
      if (runtime === undefined) return;
      if (runtime.stopping) {
        await runtime.incarnation?.exited;
        return;
      }
      runtime.stopping = true;
      clearTimer(runtime);
      const incarnation = runtime.incarnation;
      setState(runtime, ReplicaState.STOPPING, false);
      // The whole group is waited for: a shell running a compound command
      // dies of SIGTERM at once while the app in it is still shutting down.
      if (incarnation !== undefined && signalProcessGroup(incarnation.pid, "SIGTERM")) {
        systemLine(runtime.spec, `stopping: SIGTERM, SIGKILL after ${graceMs} ms`);
        if (!(await waitForProcessGroupExit(incarnation.pid, graceMs))) {
          systemLine(runtime.spec, "still running after the grace period: SIGKILL");
          signalProcessGroup(incarnation.pid, "SIGKILL");
          await waitForProcessGroupExit(incarnation.pid, KILL_WAIT_MS);
        }
        await incarnation.exited;
      }
      systemLine(runtime.spec, "stopped");
      await Promise.all(runtime.tails.map((tail) => tail.close()));
      runtimes.delete(name);
      hub.retire(name);
      await rm(replicaDirectory(name), { recursive: true, force: true });
      setState(runtime, ReplicaState.STOPPED, false);
    },

    async stopStrays(known, graceMs) {
      const names = await readdir(join(options.directory, "replicas")).catch(() => [] as string[]);
      const strays = names.filter((name) => !known.has(name) && !runtimes.has(name));
      await Promise.all(
        strays.map(async (name) => {
          const found = parseRuntimeId(await readFile(join(replicaDirectory(name), "runtime-id"), "utf8").catch(() => ""));
          if (found !== undefined && (await isSameProcessAlive(found.pid, found.startTime)) && signalProcessGroup(found.pid, "SIGTERM")) {
            if (!(await waitForProcessGroupExit(found.pid, graceMs))) {
              signalProcessGroup(found.pid, "SIGKILL");
              await waitForProcessGroupExit(found.pid, KILL_WAIT_MS);
            }
          }
          await rm(replicaDirectory(name), { recursive: true, force: true });
        }),
      );
      return strays;
    },

    replicaStatus(name) {
      const runtime = runtimes.get(name);
      return runtime && { ...runtime.status };
    },

    onReplicaChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async startReleaseTask(spec) {
      const directory = taskDirectory(spec.name);
      await rm(directory, { recursive: true, force: true });
      // The outer shell writes its own pid first and the command's exit code
      // last, so a restarted scheduler finds the task, or its result, even if
      // it died before recording anything: it never runs the task twice.
      const { child, pid, startTime } = await spawnInGroup(
        directory,
        ['echo $$ > "$3"; sh -c "$1"; echo $? > "$2"', "berth-release", spec.command, join(directory, "exit-code"), join(directory, "pid")],
        spec.workDir,
        spec.env,
      );
      systemLine({ app: spec.app, processType: "release", name: spec.name, releaseVersion: spec.releaseVersion }, `release task started: pid ${pid}`);
      return { runtimeId: runtimeIdOf({ pid, startTime, port: 0 }), result: awaitTask(spec, pid, startTime, childExit(child), new Date(Date.now() + spec.timeoutMs)) };
    },

    async resumeReleaseTask(spec, runtimeId, deadline) {
      const directory = taskDirectory(spec.name);
      let found = parseRuntimeId(runtimeId);
      if (found === undefined) {
        // The scheduler may have died between the spawn and the shell writing its pid: give it a moment.
        const waitUntil = Date.now() + TASK_PID_WAIT_MS;
        let pid = "";
        while ((pid = await readFile(join(directory, "pid"), "utf8").catch(() => "")) === "" && Date.now() < waitUntil) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        if (!/^\d+\s*$/.test(pid)) return undefined;
        found = { pid: Number(pid), startTime: (await processStartTime(Number(pid))) ?? -1, port: 0 };
      }
      return {
        runtimeId: runtimeIdOf(found),
        result: awaitTask(spec, found.pid, found.startTime, pollUntilGone(found.pid, found.startTime), deadline),
      };
    },

    async sampleCpuMillis(name) {
      const runtime = runtimes.get(name);
      const incarnation = runtime?.incarnation;
      if (runtime === undefined || incarnation === undefined) return undefined;
      const cpuMs = await processGroupCpuMs(incarnation.pid);
      const at = performance.now();
      const previous = runtime.cpuSample;
      runtime.cpuSample = { cpuMs, at };
      if (previous === undefined || at <= previous.at) return undefined;
      return Math.max(0, ((cpuMs - previous.cpuMs) / (at - previous.at)) * 1000);
    },

    logs: hub,

    async close(graceMs = 10_000) {
      await Promise.all([...runtimes.keys()].map((name) => this.stopReplica(name, graceMs)));
      for (const task of tasks) signalProcessGroup(task.pid, "SIGKILL");
    },
  };
}
